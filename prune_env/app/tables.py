"""Building and checking pruning tables: ``prune-env table build | verify | show``.

``build`` scores every cell of a task's keep-level grid with the live :class:`PruneProblem`
under two protocols (the boards' 32 fine-tune steps, seeded by the cell's number, and none),
measures its costs, and gives a stratified sample of cells the boards' final fine-tune so the
table says how well its score predicts the test accuracy a user gets. Work is split over
``--workers`` processes, each appending one JSON line per cell to its own file in the work
folder: a killed build resumes where it stopped. When every cell and sample is in, the table
is written (:class:`prune_env.tabular.Table`).

``verify`` re-scores random cells live and fails loudly on any difference.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

import prune_env
from prune_env.app.config import PruneConfig
from prune_env.app.pipeline import finetune_network, split_accuracies
from prune_env.budgets import measure_latency
from prune_env.env import PruneEnv, _importance_summaries
from prune_env.errors import TableError, TableMismatchError
from prune_env.problem import PruneProblem
from prune_env.tabular.table import FORMAT, Table, prefix_offsets
from prune_env.zoo.sources import task_dataset
from prune_env.zoo.tasks import checkpoint_path, file_sha256

FINETUNE_STEPS, EVAL_SAMPLES = 32, 1000  # the boards' scoring protocol
LEVELS = {"fashion-mnist-mlp": 32}  # levels per group where not DEFAULT_LEVELS
DEFAULT_LEVELS = 5
FINAL_EPOCHS = {"fashion-mnist-mlp": 2}  # the boards' final fine-tune (fmnist-*-cpu.yaml); default 1
FINAL_SAMPLE, STRATA = 200, 10
LATENCY_REPEATS = 15


def checkpoint_sha256(task: str) -> str | None:
    """The digest of the task's shipped weights (what a table's cells were pruned from)."""
    path = checkpoint_path(task)
    return file_sha256(path) if path.is_file() else None


def level_grid(count: int) -> list[float]:
    """``count`` keep levels spread evenly up to the dense network: 1/count, 2/count, ..., 1."""
    if count < 2:
        raise TableError(f"a table needs at least 2 levels per group, got {count}")
    return [(i + 1) / count for i in range(count)]


def cell_seed(cell: int) -> int:
    """The fine-tune seed of a cell: its number (so a live re-score replays it)."""
    return int(cell)


def table_problem(task: str, data_dir=None) -> PruneProblem:
    """The live problem a table is scored with (its limit is irrelevant: costs are recorded)."""
    return PruneProblem(
        task, budget="params", budget_limit=1.0, finetune_steps=FINETUNE_STEPS,
        eval_samples=EVAL_SAMPLES, data_dir=data_dir,
    )  # fmt: skip


def cell_keep(problem: PruneProblem, levels: list[float], cell_levels) -> list[np.ndarray]:
    """The keep-arrays of a cell: each group's largest-L1 units at its level (a ratio action)."""
    return [problem.keep_largest(g, levels[j]) for g, j in zip(problem.groups, cell_levels)]


def score_cell(problem: PruneProblem, levels: list[float], cell: int, cell_levels) -> dict:
    """One cell under both protocols, its exact ratios and a CPU latency."""
    start = time.process_time()
    keep = cell_keep(problem, levels, cell_levels)
    problem.set_scoring(finetune_steps=0)
    raw = problem.score(keep, source="table", seed=cell_seed(cell))
    example = problem.example_inputs
    first = example[0] if isinstance(example, tuple) else example
    latency = measure_latency(problem.last_model, first[:1], repeats=LATENCY_REPEATS)
    problem.set_scoring(finetune_steps=FINETUNE_STEPS)
    tuned = problem.score(keep, source="table", seed=cell_seed(cell))
    return {
        "cell": int(cell),
        "correct_finetuned": int(round(tuned.accuracy * EVAL_SAMPLES)),
        "correct_raw": int(round(raw.accuracy * EVAL_SAMPLES)),
        "params_ratio": raw.params_ratio,
        "flops_ratio": raw.flops_ratio,
        "latency_ms": 1000 * latency,
        "cpu_seconds": time.process_time() - start,
    }


def final_cell(problem: PruneProblem, levels, cell: int, cell_levels, data, epochs: int) -> dict:
    """The boards' final fine-tune of one cell, from the dense weights: test and validation accuracy."""
    start = time.process_time()
    pruned = problem.export(cell_keep(problem, levels, cell_levels))
    cfg = PruneConfig(task=problem.task, finetune_epochs=epochs, seed=cell_seed(cell), progress=False)
    finetune_network(pruned, data, cfg)
    acc = split_accuracies(pruned, data)
    return {"cell": int(cell), "test_accuracy": acc["test_accuracy"], "val_accuracy": acc["val_accuracy"],
            "cpu_seconds": time.process_time() - start}  # fmt: skip


# --- the plan of a build ---------------------------------------------------------------------


class Plan:
    """What a build scores: the levels, every cell's level digits, the prefix estimates and the
    stratified final sample (all decided up front, so workers and resumes agree)."""

    def __init__(self, problem: PruneProblem, levels: list[float], final_sample: int, seed: int = 0):
        for g in problem.groups:
            units = [max(int(round(v * g.width)), 1) for v in levels]
            if len(set(units)) != len(units):
                raise TableError(
                    f"group {g.name!r} (width {g.width}) keeps the same number of units at two of the "
                    f"{len(levels)} levels ({units}): use fewer --levels"
                )
        self.levels = levels
        self.num_groups, self.num_levels = problem.num_groups, len(levels)
        self.num_cells = self.num_levels**self.num_groups
        self.estimates = prefix_estimates(problem, levels)
        offsets = prefix_offsets(self.num_groups, self.num_levels)
        params = self.estimates["estimate_params_used"][offsets[-2] :]  # full cells: exact params ratios
        self.final_cells = stratified_sample(params, final_sample, seed)

    def digits(self, cell: int) -> tuple[int, ...]:
        L, G = self.num_levels, self.num_groups
        return tuple(cell // L ** (G - 1 - g) % L for g in range(G))


def prefix_estimates(problem: PruneProblem, levels: list[float]) -> dict[str, np.ndarray]:
    """For every prefix of decided groups, PruneEnv's analytic params and FLOPs estimates with
    the rest dense ("used") and with the rest keeping one unit ("floor"), as its observation
    computes them."""
    G, L = problem.num_groups, len(levels)
    dense = [np.ones(g.width, dtype=bool) for g in problem.groups]
    one = [problem.keep_largest(g, 0.0) for g in problem.groups]
    at = [[problem.keep_largest(g, level) for level in levels] for g in problem.groups]
    out = {f"estimate_{k}_{w}": [] for k in ("params", "flops") for w in ("used", "floor")}
    for t in range(G + 1):
        for number in range(L**t):
            digits = [number // L ** (t - 1 - s) % L for s in range(t)]
            decided = [at[g][j] for g, j in enumerate(digits)]
            used = problem.estimate.ratios(decided + dense[t:])
            floor = problem.estimate.ratios(decided + one[t:]) if t < G else used
            for kind, u, f in zip(("params", "flops"), used, floor):
                out[f"estimate_{kind}_used"].append(u)
                out[f"estimate_{kind}_floor"].append(f)
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def stratified_sample(ratios: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` cells spread over :data:`STRATA` equal-count strata of the parameter ratio."""
    if size <= 0:
        return np.zeros(0, dtype=np.int64)
    size = min(size, len(ratios))
    order = np.argsort(ratios, kind="stable")
    rng = np.random.default_rng(seed)
    picks = []
    for s, stratum in enumerate(np.array_split(order, STRATA)):
        want = size // STRATA + (1 if s < size % STRATA else 0)
        picks.extend(rng.choice(stratum, size=min(want, len(stratum)), replace=False).tolist())
    return np.sort(np.asarray(picks, dtype=np.int64))


# --- the work folder -------------------------------------------------------------------------


def read_rows(folder: Path, prefix: str) -> dict[int, dict]:
    """Rows of every worker's file (a torn last line from a killed worker is skipped)."""
    rows: dict[int, dict] = {}
    for path in sorted(folder.glob(f"{prefix}.*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[int(row["cell"])] = row
    return rows


def _append(path: Path, row: dict) -> None:
    torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
    with path.open("a") as fh:
        fh.write(("\n" if torn else "") + json.dumps(row) + "\n")  # a killed writer's torn line stays alone
        fh.flush()
        os.fsync(fh.fileno())


def _worker(
    task: str, levels, work: Path, worker: int, workers: int, final_sample: int, data_dir, progress: bool
) -> None:
    torch.set_num_threads(1)  # bitwise replay needs the same kernels as `table verify`
    problem = table_problem(task, data_dir)
    plan = Plan(problem, levels, final_sample)
    done = read_rows(work, "cells")
    todo = [c for c in range(worker, plan.num_cells, workers) if c not in done]
    out = work / f"cells.{worker}.jsonl"
    for i, cell in enumerate(todo):
        _append(out, score_cell(problem, levels, cell, plan.digits(cell)))
        if progress and (i + 1) % 100 == 0:
            print(f"worker {worker}: {i + 1}/{len(todo)} cells", file=sys.stderr, flush=True)
    finals = read_rows(work, "final")
    todo = [c for c in plan.final_cells.tolist()[worker::workers] if c not in finals]
    if todo:
        data = task_dataset(task, data_dir)
        epochs = FINAL_EPOCHS.get(task, 1)
        out = work / f"final.{worker}.jsonl"
        for cell in todo:
            _append(out, final_cell(problem, levels, cell, plan.digits(cell), data, epochs))


def build_table(
    task: str,
    *,
    levels: int | None = None,
    out=None,
    work=None,
    workers: int = 1,
    final_sample: int = FINAL_SAMPLE,
    data_dir=None,
    progress: bool = True,
) -> Table | None:
    """Score every missing cell and sample (``workers`` processes), then write the table to
    ``out`` (default ``tables/TASK.npz``) and return it; ``None`` if work remains (a worker died)."""
    grid = level_grid(levels or LEVELS.get(task, DEFAULT_LEVELS))
    out = Path(out or Path("tables") / f"{task}.npz")
    work = Path(work or out.with_suffix(".work"))
    work.mkdir(parents=True, exist_ok=True)
    _check_work(work, task, grid, final_sample)
    args = (task, grid, work)
    if workers == 1:
        _worker(*args, 0, 1, final_sample, data_dir, progress)
    else:
        ctx = multiprocessing.get_context("fork")
        procs = [
            ctx.Process(target=_worker, args=(*args, k, workers, final_sample, data_dir, progress))
            for k in range(workers)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    return finalize(task, grid, work, out, final_sample, data_dir)


def _check_work(work: Path, task: str, levels: list[float], final_sample: int) -> None:
    """A work folder belongs to one build recipe (grid, protocol, checkpoint, torch): refuse to
    mix rows scored another way."""
    recipe = {"task": task, "levels": levels, "final_sample": final_sample, "finetune_steps": FINETUNE_STEPS,
              "eval_samples": EVAL_SAMPLES, "format": FORMAT, "final_epochs": FINAL_EPOCHS.get(task, 1),
              "checkpoint_sha256": checkpoint_sha256(task), "torch": torch.__version__}  # fmt: skip
    path = work / "recipe.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != recipe:
            raise TableError(f"{work} holds a build of another recipe ({old}); use another --work folder")
    else:
        path.write_text(json.dumps(recipe, indent=1))


def finalize(task: str, levels, work: Path, out: Path, final_sample: int, data_dir=None) -> Table | None:
    """Assemble the table from a complete work folder (``None`` while cells are missing)."""
    problem = table_problem(task, data_dir)
    plan = Plan(problem, levels, final_sample)
    cells, finals = read_rows(work, "cells"), read_rows(work, "final")
    missing = plan.num_cells - len(cells)
    missing_final = [c for c in plan.final_cells.tolist() if c not in finals]
    if missing or missing_final:
        print(
            f"{task}: {missing} cells and {len(missing_final)} final fine-tunes still to do; run the same command again"
        )
        return None
    rows = [cells[c] for c in range(plan.num_cells)]
    dense = next(r for r in rows if r["cell"] == plan.num_cells - 1)  # every group at level 1
    env = PruneEnv(problem=problem, action_mode="ratio")
    arrays = {
        "correct_finetuned": np.asarray([r["correct_finetuned"] for r in rows], dtype=np.int32),
        "correct_raw": np.asarray([r["correct_raw"] for r in rows], dtype=np.int32),
        "params_ratio": np.asarray([r["params_ratio"] for r in rows], dtype=np.float64),
        "flops_ratio": np.asarray([r["flops_ratio"] for r in rows], dtype=np.float64),
        "latency_ms": np.asarray([r["latency_ms"] for r in rows], dtype=np.float64),
        **plan.estimates,
        "descriptors": env._static_descriptors(problem),
        "summaries": _importance_summaries(problem),
        "importance": np.concatenate(problem.importance),
        "importance_offsets": np.concatenate([[0], np.cumsum([len(i) for i in problem.importance])]).astype(
            np.int64
        ),
        "final_cells": plan.final_cells,
        "final_test_accuracy": np.asarray(
            [finals[c]["test_accuracy"] for c in plan.final_cells], dtype=np.float64
        ),
        "final_val_accuracy": np.asarray(
            [finals[c]["val_accuracy"] for c in plan.final_cells], dtype=np.float64
        ),
    }
    problem.set_scoring(finetune_steps=FINETUNE_STEPS)
    tuned = asdict(problem.protocol)
    meta = {
        "format": FORMAT,
        "task": task,
        "levels": levels,
        "groups": [{"name": g.name, "width": g.width} for g in problem.groups],
        "protocols": {"finetuned": tuned, "raw": {**tuned, "finetune_steps": 0}},
        "seed_rule": "each cell's fine-tune seed is its number (cell = sum(level[g] * L ** (G - 1 - g)))",
        "checkpoint_sha256": problem.checkpoint.get("sha256"),
        "dense_latency_ms": dense["latency_ms"],
        "latency": f"median of {LATENCY_REPEATS} single-image CPU forward passes, 1 torch thread, on the build machine",
        "final": {"epochs": FINAL_EPOCHS.get(task, 1), "cells": len(plan.final_cells), "strata": STRATA,
                  "stratified_by": "params ratio", "recipe": "prune_env.app.pipeline.finetune_network"},
        "build": build_info(sum(r["cpu_seconds"] for r in rows), sum(finals[c]["cpu_seconds"] for c in plan.final_cells)),
    }  # fmt: skip
    table = Table(meta, arrays)
    table.save(out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {plan.num_cells} cells)")
    return table


def build_info(cell_seconds: float, final_seconds: float) -> dict:
    """The code and machine that built a table."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "prune_env": prune_env.__version__, "commit": commit, "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "processor": platform.processor(),
        "threads": 1, "cell_cpu_seconds": round(cell_seconds, 1), "final_cpu_seconds": round(final_seconds, 1),
        "date": time.strftime("%Y-%m-%d"),
    }  # fmt: skip


# --- checking a table against the live env -----------------------------------------------------


def verify_table(table: Table, *, cells: int = 20, seed: int = 0, data_dir=None) -> list[dict]:
    """Re-score ``cells`` random cells with the live problem (1 torch thread, each cell's own
    fine-tune seed) and return every difference from the table (empty: the table replays)."""
    torch.set_num_threads(1)
    problem = table_problem(table.task, data_dir)
    if problem.checkpoint.get("sha256") != table.meta.get("checkpoint_sha256"):
        raise TableMismatchError(
            f"{table.task}'s checkpoint ({problem.checkpoint.get('sha256')}) is not the one the table was built "
            f"from ({table.meta.get('checkpoint_sha256')}): rebuild the table"
        )
    levels = table.levels.tolist()
    chosen = np.random.default_rng(seed).choice(
        table.num_cells, size=min(cells, table.num_cells), replace=False
    )
    differences = []
    for cell in sorted(chosen.tolist()):
        digits = table.cell_levels(cell)
        live = score_cell(problem, levels, cell, digits)
        for key in ("correct_finetuned", "correct_raw", "params_ratio", "flops_ratio"):
            stored = table.arrays[key][cell].item()
            if live[key] != stored:
                differences.append({"cell": cell, "value": key, "table": stored, "live": live[key]})
        keep = cell_keep(problem, levels, digits)
        if problem.masks_to_dict(keep) != table.masks(cell):
            differences.append(
                {
                    "cell": cell,
                    "value": "masks",
                    "table": table.masks(cell),
                    "live": problem.masks_to_dict(keep),
                }
            )
        # what the observation reads along the cell's episode: the estimates of each prefix
        dense = [np.ones(g.width, dtype=bool) for g in problem.groups]
        one = [problem.keep_largest(g, 0.0) for g in problem.groups]
        for t in range(table.num_groups + 1):
            prefix = table.prefix(digits[:t])
            used = problem.estimate.ratios(keep[:t] + dense[t:])
            floor = problem.estimate.ratios(keep[:t] + one[t:]) if t < table.num_groups else used
            for kind, u, f in zip(("params", "flops"), used, floor):
                for which, value in (("used", u), ("floor", f)):
                    stored = table.estimate(kind, which)[prefix].item()
                    if value != stored:
                        differences.append(
                            {
                                "cell": cell,
                                "value": f"estimate_{kind}_{which}[{t}]",
                                "table": stored,
                                "live": value,
                            }
                        )
    return differences


def describe(table: Table) -> str:
    """A short account of a table: size, protocol, optima at the boards' limits, fidelity."""
    build = table.meta["build"]
    lines = [
        f"{table.task}: {table.num_groups} groups x {table.num_levels} levels = {table.num_cells} cells "
        f"(levels {_levels_text(table.levels)})",
        f"protocol: {table.protocol('finetuned')}; built {build['date']} by prune-env {build['prune_env']} "
        f"({build['commit'][:12]}), torch {build['torch']}, {build['cell_cpu_seconds'] / 3600:.2f} core-hours of cells",
    ]
    for budget, limit in (("params", 0.1), ("params", 0.25), ("flops", 0.3)):
        try:
            best = table.optimum(budget, limit)
        except TableError as exc:
            lines.append(f"{budget} <= {limit:g}: {exc}")
            continue
        lines.append(
            f"optimum {budget} <= {limit:g}: {100 * best.accuracy:.1f}% at {budget} {best.cost:.3f}, "
            f"keep {', '.join(f'{k:g}' for k in best.keep)} (cell {best.cell})"
        )
    if table.arrays["final_cells"].size >= 3:
        fid = table.fidelity()
        lines.append(f"score vs test accuracy after the final fine-tune: Spearman {fid['rho']:.3f} "
                     f"[{fid['low']:.3f}, {fid['high']:.3f}] over {fid['cells']} cells")  # fmt: skip
    return "\n".join(lines)


def _levels_text(levels) -> str:
    if len(levels) <= 8:
        return ", ".join(f"{v:g}" for v in levels)
    return f"{levels[0]:g}, {levels[1]:g}, ..., {levels[-1]:g}"
