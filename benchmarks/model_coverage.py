"""Which torchvision classifiers can PruneEnv prune exactly? One episode per model, isolated.

    python benchmarks/model_coverage.py [--max-params 140] [--size 224] [--timeout 300]
        [--memory-gb 12] [--models NAME ...] [--redo] [--out benchmarks/results/model_coverage.jsonl]

Every classification model of ``torchvision.models.list_models(module=torchvision.models)`` with
at most ``--max-params`` million parameters (10 classes, random weights) is given to
``PruneEnv(model=...)`` with two random ``--size`` x ``--size`` inputs (Inception-v3: 299), then
one ratio-mode episode keeps half of every group, and the exported network must run (every
export is proven equal to the masked network by the environment). Each model runs in its own
process with ``--timeout`` seconds and ``--memory-gb`` of address space, so a model that hangs or
exhausts memory is recorded as such instead of taking the machine down. Outcomes: ``pruned``
(exactly), ``refused`` (a typed PruneEnv error: the reason), ``crashed`` (any other error),
``timeout``, ``out of memory``. One JSON line per model, appended atomically (resumable);
``MODEL_COVERAGE.md`` is rewritten from the JSONL after every model. ``--redo`` measures the
``--models`` again and replaces their rows (after a change that affects them); the table keeps
the command that covers every model and lists the re-measuring commands under it.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torchvision

from benchmarks.entrypoint import run_script
from benchmarks.results_io import append_atomically, read_results, replace_atomically
from prune_env.env import PruneEnv
from prune_env.errors import PruneEnvError

ROW_KEYS = ("model", "outcome")  # every row of its results file

INPUT_SIZE = {"inception_v3": 299}


def classification_models(max_params_m: float, names: list[str] | None = None) -> list[tuple[str, float]]:
    """(name, millions of parameters) of every torchvision classifier up to the size (of
    ``names`` only, when given)."""
    found = []
    for name in torchvision.models.list_models(module=torchvision.models):
        if names and name not in names:
            continue
        model = torchvision.models.get_model(name, weights=None, num_classes=10)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        if params <= max_params_m:
            found.append((name, params))
    return found


def probe(name: str, size: int) -> dict:
    """One model, in this process: construction, one episode at keep 0.5, a forward of the export."""
    torch.manual_seed(0)
    size = INPUT_SIZE.get(name, size)
    model = torchvision.models.get_model(name, weights=None, num_classes=10).eval()
    x, y = torch.randn(2, 3, size, size), torch.tensor([0, 1])
    start = time.perf_counter()
    try:
        env = PruneEnv(model=model, eval_data=(x, y), eval_samples=2, action_mode="ratio", budget_limit=1.0)
    except PruneEnvError as exc:
        return {"outcome": "refused", "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                "construction_s": time.perf_counter() - start}  # fmt: skip
    built = time.perf_counter() - start
    start = time.perf_counter()
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, info = env.step([0.5])
    episode = time.perf_counter() - start
    with torch.no_grad():
        out = env.export()(x)
    assert out.shape == (2, 10)
    row = {"outcome": "pruned", "groups": env.num_groups, "left_whole": len(env.skipped_groups),
           "params_ratio": info["params_ratio"], "construction_s": built, "episode_s": episode}  # fmt: skip
    if env.skipped_groups:  # the first reason, shortened: what keeps the rest whole
        row["reason"] = next(iter(env.skipped_groups.values())).split(":")[0][:160]
    return row


def run_isolated(name: str, size: int, timeout: float, memory_gb: float) -> dict:
    """:func:`probe` in a child process with a time and address-space limit."""

    def limit_memory():
        limit = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    command = [sys.executable, __file__, "--probe", name, "--size", str(size)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, preexec_fn=limit_memory,
                              cwd=Path(__file__).parent)  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout", "reason": f"no result in {timeout:g} s"}
    if done.returncode == 0 and done.stdout.strip():
        return json.loads(done.stdout.strip().splitlines()[-1])
    last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
    if "MemoryError" in done.stderr or "DefaultCPUAllocator" in done.stderr or done.returncode == -9:
        return {"outcome": "out of memory", "reason": f"over {memory_gb:g} GB: {last[:200]}"}
    return {"outcome": "crashed", "reason": last[:300]}


def write_table(out: Path, command: str, redone: list[str] = ()) -> Path:
    rows = read_results(out, require=ROW_KEYS, what="a row of model_coverage.py")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    partial = sum(1 for r in rows if r["outcome"] == "pruned" and r.get("left_whole"))
    if partial:
        summary += f" ({counts['pruned'] - partial} in every group, {partial} with some groups left whole)"
    lines = [
        "# torchvision classifiers in PruneEnv",
        "",
        f"{len(rows)} models: {summary}. Random weights, 10 classes, two random inputs, one ratio episode at keep 0.5, "
        "every export proven equal to the masked network.",
        "",
        "A pruned model's groups that cannot be pruned exactly stay whole (`left whole`, the first reason shown); "
        "`params ratio` is the exported network's parameters over the dense ones after keeping half of every pruned group.",
        "",
        "| model | M params | outcome | groups | left whole | params ratio | construction (s) | episode (s) | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: r["model"]):
        ratio = f"{r['params_ratio']:.3f}" if "params_ratio" in r else ""
        lines.append(
            f"| {r['model']} | {r['params_m']:.1f} | {r['outcome']} | {r.get('groups', '')} | {r.get('left_whole', '')} | "
            f"{ratio} | {r.get('construction_s', 0):.1f} | {r.get('episode_s', 0):.1f} | {r.get('reason', '')} |"
        )
    lines += ["", f"Command: `{command}`", ""]
    lines += [f"Re-measured: `{c}`" for c in redone]
    if redone:
        lines.append("")
    table = out.with_name("MODEL_COVERAGE.md")
    table.write_text("\n".join(lines))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-params", type=float, default=140.0, help="millions of parameters")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--memory-gb", type=float, default=12.0)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument(
        "--redo", action="store_true", help="measure the --models again, replacing their rows"
    )
    parser.add_argument("--out", default="benchmarks/results/model_coverage.jsonl")
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)  # the child's entry
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(args.probe, args.size)))
        return 0
    out = Path(args.out)
    if args.redo and not args.models:
        parser.error("--redo needs --models: the models to measure again")
    done = (
        set()
        if args.redo
        else {r["model"] for r in read_results(out, require=ROW_KEYS, what="a row of model_coverage.py")}
    )
    models = classification_models(args.max_params, args.models)
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/model_coverage.py " + " ".join(given)
    redone = _redo_commands(out)
    if args.redo:
        redone = [c for c in redone if c != command.strip()] + [command.strip()]
        command = _recorded_command(out) or command
    for name, params in models:
        if name in done:
            continue
        row = {"model": name, "params_m": params, "size": INPUT_SIZE.get(name, args.size),
               **run_isolated(name, args.size, args.timeout, args.memory_gb)}  # fmt: skip
        if args.redo:
            replace_atomically(out, row, lambda old, name=name: old["model"] == name)
        else:
            append_atomically(out, row)
        print(f"{name}: {row['outcome']} {row.get('reason', '')}", flush=True)
        write_table(out, command.strip(), redone)
    return 0


def _recorded_command(out: Path) -> str | None:
    """The full command the committed table names (kept when some models are re-measured)."""
    table = out.with_name("MODEL_COVERAGE.md")
    if not table.is_file():
        return None
    for line in table.read_text().splitlines():
        if line.startswith("Command: `"):
            return line[len("Command: `") : -1]
    return None


def _redo_commands(out: Path) -> list[str]:
    table = out.with_name("MODEL_COVERAGE.md")
    if not table.is_file():
        return []
    return [
        line[len("Re-measured: `") : -1]
        for line in table.read_text().splitlines()
        if line.startswith("Re-measured: `")
    ]


if __name__ == "__main__":
    run_script(main)
