"""The architecture, checked: every import points down a floor, no two files import each other
(directly or around a circle), nothing edits ``sys.path``, and the core stays light.

Floors, bottom up (a file may import its own floor and the floors below):

1. ``prune_env.errors``, and the leaf helper ``prune_env.bisection``;
2. the task zoo, ``prune_env.zoo``;
3. network surgery, ``prune_env.surgery`` (groups, masking, export, the analytic estimate);
4. the ONNX runtime helpers, ``prune_env.deploy.onnx_runtime``;
5. what a mask is measured by: ``budgets`` and their ``limits``, ``scored``, ``cost_convention``;
6. the pruning instance, ``prune_env.problem``, and a table's (``prune_env.tabular.table``, ``.problem``);
7. the MDP: ``prune_env.env``, ``prune_env.wrappers`` and the tabulated env ``prune_env.tabular``;
8. reloading a run, ``prune_env.deploy.reload``, and the public face ``prune_env/__init__``;
9. ``agents`` (the cost convention, wrappers and errors only; never ``prune_env.env`` by name, though
   importing any ``prune_env`` module runs the package's ``__init__``, which loads it);
10. the application, ``prune_env.app`` (the only place that imports both the core and ``agents``);
11. the benchmark harness, ``benchmarks`` (the app's public names: ``prune_env.app``, never its modules).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = {"matplotlib", "onnx", "onnxruntime", "stable_baselines3", "sb3_contrib", "yaml", "tqdm", "ray"}
# Function-level imports that are allowed, and why: torchvision.datasets only downloads data
# that is not on disk, and importing it costs seconds at every `import prune_env`.
# onnxruntime is the optional `onnx` extra, needed only for ONNX Runtime checks and the ort-latency
# budget: the core imports it when one of those is asked for, never at `import prune_env`.
# Ray and Optuna are optional extras (`ray`, `tune`), imported by the scripts that use them when asked.
LAZY_ALLOWED = {
    ("prune_env/zoo/data.py", "torchvision.datasets"),
    ("prune_env/deploy/onnx_runtime.py", "onnxruntime"),
    ("benchmarks/leaderboard.py", "benchmarks.ray_grid"),
    ("benchmarks/tune_ppo_lag.py", "optuna"),
}
# The one sys.path edit: importing a user's ``--task FILE.py:FUNCTION`` lets that file import its
# own neighbours while it loads (as ``python FILE.py`` would), and takes the folder off again.
SYS_PATH_ALLOWED = {
    "prune_env/zoo/user_tasks.py",
    # the feature's test: a `package.module:FUNCTION` task and an entry point from a package that
    # a temporary folder on the path stands in for an installed one
    "tests/zoo/test_user_tasks.py",
}

FLOORS = [  # bottom up: (name, module prefixes); a module belongs to the floor of its longest prefix
    ("errors", ("prune_env.errors", "prune_env.bisection")),
    ("zoo", ("prune_env.zoo",)),
    ("surgery", ("prune_env.surgery",)),
    ("onnx runtime", ("prune_env.deploy.onnx_runtime",)),
    ("measures", ("prune_env.budgets", "prune_env.limits", "prune_env.scored", "prune_env.cost_convention")),
    ("problem", ("prune_env.problem", "prune_env.tabular.table", "prune_env.tabular.problem")),
    ("mdp", ("prune_env.env", "prune_env.wrappers", "prune_env.tabular")),
    ("public face", ("prune_env.deploy", "prune_env")),
    ("agents", ("agents",)),
    ("app", ("prune_env.app", "prune_env.__main__")),
    ("benchmarks", ("benchmarks",)),
]
NAMES = [name for name, _ in FLOORS]
# Agents know the env only through its conventions: the cost in info, the wrappers, the errors.
AGENTS_MAY_IMPORT = ("agents", "prune_env.cost_convention", "prune_env.errors", "prune_env.wrappers")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


FILES = sorted([*ROOT.glob("prune_env/**/*.py"), *ROOT.glob("agents/**/*.py")])
ALL_FILES = sorted([*FILES, *ROOT.glob("benchmarks/*.py")])
MODULES = {_module(p): p for p in ALL_FILES}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, imported at module level?) for every import in a file; ``from package
    import module`` names ``package.module``, so both checks below see the file it loads."""
    tree = ast.parse(path.read_text())
    # A module-level ``try: import x`` (a check for an optional dependency) is module level too.
    top = {id(n) for stmt in tree.body for n in (ast.walk(stmt) if isinstance(stmt, ast.Try) else [stmt])}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(ROOT)}: a relative import; name the module in full"
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                found.append((name if name in MODULES else node.module, id(node) in top))
    return found


def _floor(module: str) -> int:
    """Index in :data:`FLOORS` of the floor with the longest matching prefix (the bare package
    ``prune_env`` matches only its ``__init__``: a new core module must be given a floor)."""
    best, length = None, -1
    for index, (_, prefixes) in enumerate(FLOORS):
        for prefix in prefixes:
            covers = module == prefix or (module.startswith(prefix + ".") and prefix != "prune_env")
            if covers and len(prefix) > length:
                best, length = index, len(prefix)
    assert best is not None, f"{module} is on no floor of tests/test_layout.py: add it to FLOORS"
    return best


def _ours(name: str) -> bool:
    return name.split(".")[0] in ("prune_env", "agents", "benchmarks")


def _resolve(name: str) -> str | None:
    """The file-module an import loads: itself, or the package whose ``__init__`` holds the name."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges(path: Path) -> set[str]:
    """The project's modules this file imports."""
    found = {_resolve(name) for name, _ in _imports(path) if _ours(name)}
    return {m for m in found if m is not None and m != _module(path)}


def test_every_module_has_a_floor():
    for module in MODULES:
        _floor(module)


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down_and_sit_at_module_level(path):
    module, rel = _module(path), str(path.relative_to(ROOT))
    floor = _floor(module)
    for name, at_top in _imports(path):
        if not at_top:
            assert (rel, name) in LAZY_ALLOWED, f"{rel}: function-level import of {name}"
        if _ours(name):
            target = _resolve(name) or name
            assert _floor(target) <= floor, (
                f"{rel} ({NAMES[floor]}) imports {name} ({NAMES[_floor(target)]}): up a floor"
            )
            if NAMES[floor] == "agents":
                assert name.startswith(AGENTS_MAY_IMPORT), (
                    f"{rel} imports {name}: agents use the conventions only"
                )
            if NAMES[floor] == "benchmarks":
                assert not name.startswith("prune_env.app."), (
                    f"{rel} imports {name}: use prune_env.app's __all__"
                )
        elif NAMES[floor] not in ("app", "agents", "benchmarks") and (rel, name) not in LAZY_ALLOWED:
            assert name.split(".")[0] not in OPTIONAL, (
                f"{rel} ({NAMES[floor]}) needs optional dependency {name}"
            )


def test_no_import_cycle_between_any_two_files():
    graph = {module: _edges(path) for module, path in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module], _ = 1, stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        state[module], _ = 2, stack.pop()

    for module in sorted(graph):
        if module not in state:
            visit(module)


@pytest.mark.parametrize("path", sorted([*ALL_FILES, *ROOT.glob("tests/**/*.py"), *ROOT.glob("examples/*.py")]),
                         ids=lambda p: str(p.relative_to(ROOT)))  # fmt: skip
def test_nothing_edits_sys_path_or_pythonpath(path):
    rel = str(path.relative_to(ROOT))
    if rel in SYS_PATH_ALLOWED or path.name == "test_layout.py":
        return
    text = path.read_text()
    for edit in ("sys.path", "PYTHONPATH", "syspath_prepend", "addsitedir", "from sys import path"):
        assert edit not in text, f"{rel} edits the import path ({edit})"


# tqdm is left out: torch-pruning, a base dependency, imports it.
HEAVY = {
    "matplotlib",
    "onnx",
    "onnxruntime",
    "stable_baselines3",
    "sb3_contrib",
    "yaml",
    "ray",
    "agents",
    "prune_env.app",
}


def test_the_core_imports_with_base_dependencies_only():
    code = (
        "import sys, gymnasium as gym, prune_env\n"
        "env = gym.make('PruneEnv-v0', task='fashion-mnist-mlp', eval_samples=10)\n"
        "loaded = sorted(m for m in " + repr(sorted(HEAVY)) + " if m in sys.modules)\n"
        "print(loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"


def test_readme_layout_names_every_package_file():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    for path in ALL_FILES:
        if path.name != "__init__.py" and path.parent.name not in ("hyperparams",):
            assert path.name in layout, f"README's layout does not mention {path.relative_to(ROOT)}"
