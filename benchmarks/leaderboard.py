"""Run a leaderboard grid: agents x tasks x budgets x seeds, each entry the whole pipeline.

    python benchmarks/leaderboard.py --config benchmarks/configs/NAME.yaml [--workers N] [--max-entries N]
        [--seeds S ...] [--ray | --ray-address ADDRESS]

Every entry is `prune-env prune`'s pipeline (search, physical pruning, the same fine-tune for
everyone, test evaluation); classic baselines (uniform-l1, global-l1, taylor, bn-scale,
random-search, evolution) run through the same pipeline at the same budget and under the same
scoring protocol, the searches (random-search, evolution) spending as many accuracy evaluations
as the grid's first RL agent did on the same task, budget and seed. Results are appended to a JSONL file
one entry at a time, atomically (a killed run leaves no partial line); a rerun skips finished
entries. Entries keep everything needed to replay them (benchmarks/validate.py). ``--workers N``
runs N entries at a time in separate processes, the cores shared evenly between them (the file
is still written by one process only); ``--ray`` runs them as tasks on a local Ray cluster of N
CPUs and ``--ray-address ADDRESS`` on a running cluster (benchmarks/ray_grid.py). A cell whose
run crashes is recorded with its error and the grid goes on.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import torch
import yaml
from results_io import FORMAT, append_atomically, entry_key, read_results
from tqdm import tqdm

from agents.registry import AGENTS
from prune_env.app.baselines import BASELINES, BISECTION_STEPS, MATCHED
from prune_env.app.config import GRID_FIELDS, PruneConfig
from prune_env.app.pipeline import run_baseline, run_prune
from prune_env.errors import NoFeasibleMaskError, PruneEnvError
from prune_env.zoo.data import DEFAULT_SPLIT_SEED
from prune_env.zoo.tasks import file_sha256

GRID_KEYS = ("tasks", "budgets", "agents", "seeds")


def load_config(path: str | Path) -> dict:
    """The grid (tasks, budgets, agents, seeds), the results path, and the run settings every
    entry shares: any field of :data:`GRID_FIELDS`, the rest from ``PruneConfig``'s defaults."""
    config = yaml.safe_load(Path(path).read_text())
    missing = [k for k in GRID_KEYS if k not in config]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    unknown = sorted(set(config) - {*GRID_KEYS, "results", "resources", *GRID_FIELDS})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; run settings are {list(GRID_FIELDS)}")
    resources = config.get("resources", {})
    if (
        not isinstance(resources, dict)
        or set(resources) - {"cpus", "gpus"}
        or any(not isinstance(v, (int, float)) or v < 0 for v in resources.values())
    ):
        raise ValueError(f"{path}: resources must be {{cpus: N, gpus: F}} with numbers >= 0, got {resources}")
    for budget in config["budgets"]:
        if set(budget) != {"kind", "limit"}:
            raise ValueError(f"{path}: every budget needs exactly 'kind' and 'limit', got {budget}")
    config.setdefault("results", str(Path(path).with_suffix(".jsonl")))
    defaults = {f: getattr(PruneConfig(), f) for f in GRID_FIELDS}
    return {**defaults, **config}


def grid(config: dict) -> list[tuple]:
    """RL agents before baselines, so that random search knows the evaluations to match."""
    agents = sorted(config["agents"], key=lambda a: a in BASELINES)
    return [
        (task, b["kind"], float(b["limit"]), agent, int(seed))
        for task in config["tasks"]
        for b in config["budgets"]
        for agent in agents
        for seed in config["seeds"]
    ]


def matched_evaluations(done: list[dict], key: tuple) -> int:
    """The accuracy evaluations the grid's first RL agent spent on the same task, budget and seed
    (what random search is given); 0 if no RL entry of the cell exists."""
    for e in done:
        if (
            e["agent"] not in BASELINES
            and "evaluations" in e
            and entry_key(e)[:3] == key[:3]
            and e["seed"] == key[4]
        ):
            return int(e["evaluations"])
    return 0


def task_label(task: str) -> str:
    """A task's name as it can appear in a file name: a zoo or entry-point name as it is, a
    reference ``path/to/file.py:FUNCTION`` or ``package.module:FUNCTION`` as ``file-FUNCTION``."""
    if ":" not in task:
        return task
    target, _, function = task.rpartition(":")
    stem = Path(target).stem if target.endswith(".py") else target.rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{stem}-{function}")


def keep_weights(results: Path, name: str, run_dir: Path) -> dict:
    """Copy a run's fine-tuned weights beside the results (``weights/<results stem>/``) and return
    where they are (relative to the results file) and their hash, so that validate.py can reload
    the very network an entry's test accuracy was measured on."""
    folder = results.parent / "weights" / results.stem
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.pt"
    shutil.copyfile(run_dir / "pruned_state_dict.pt", target)
    return {"path": str(target.relative_to(results.parent)), "sha256": file_sha256(target)}


def run_entry(config: dict, key: tuple, done: list[dict], results: Path) -> dict:
    task, budget, limit, agent, seed = key
    name = f"{task_label(task)}__{budget}-{limit:g}__{agent}__{seed}"
    out = results.parent / "runs" / results.stem / name  # per results file: studies share a folder
    settings = {f: config[f] for f in GRID_FIELDS}
    cfg = PruneConfig(task=task, budget=budget, limit=limit, agent=agent, seed=seed, out=str(out), progress=False,
                      **settings)  # fmt: skip
    start = time.time()
    hyperparameters: dict = {}
    try:
        if agent in BASELINES:
            evaluations = matched_evaluations(done, key)
            if agent in MATCHED and evaluations == 0:
                raise NoFeasibleMaskError(
                    f"{agent} spends the evaluations of the cell's RL agent, and the grid has no RL entry for "
                    f"{task} {budget}<={limit:g} seed {seed}: add an RL agent to the config"
                )
            hyperparameters = (
                {"evaluations": evaluations} if agent in MATCHED else {"bisection_steps": BISECTION_STEPS}
            )
            metrics = run_baseline(cfg, agent, evaluations=evaluations)
        else:
            hyperparameters = {k: repr(v) for k, v in AGENTS[agent].defaults.items()}
            metrics = run_prune(cfg)
    except PruneEnvError as exc:
        return {"task": task, "budget": budget, "limit": limit, "agent": agent, "seed": seed, "satisfied": False,
                "error": str(exc), "wall_seconds": time.time() - start, "hyperparameters": hyperparameters}  # fmt: skip
    d, p = metrics["dense"], metrics["pruned"]
    return {
        "format": FORMAT,
        "task": task,
        "checkpoint_sha256": metrics["checkpoint_sha256"],
        "split_seed": DEFAULT_SPLIT_SEED,
        "device": metrics["device"],
        "threads": torch.get_num_threads(),
        "budget": budget,
        "limit": limit,
        "agent": agent,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "config": {f: v for f, v in asdict(cfg).items() if f in GRID_FIELDS},
        "protocol": cfg.protocol(),
        "load_average": os.getloadavg()[0],  # at the end of the entry, when its latency was measured
        "weights": keep_weights(results, name, out),
        "dense_latency_ms": d["latency_ms"],
        "latency_ms": p["latency_ms"],
        "selected": metrics["selected"],
        **(
            {"training": metrics["training"]} if "training" in metrics else {}
        ),  # an agent's per-rollout curves
        **metrics["search"],
        "timesteps": cfg.timesteps if agent not in BASELINES else 0,
        "wall_seconds": time.time() - start,
        "val_accuracy_before_finetune": p["val_accuracy_before_finetune"],
        "val_accuracy_after_finetune": p["val_accuracy_after_finetune"],
        "test_accuracy_before_finetune": p["test_accuracy_before_finetune"],
        "test_accuracy": p["test_accuracy"],
        "dense_test_accuracy": d["test_accuracy"],
        "delta": p["test_accuracy"] - d["test_accuracy"],
        "params_ratio": p["params"] / d["params"],
        "flops_ratio": p["macs"] / d["macs"],
        "compression": d["params"] / p["params"],
        "theoretical_speedup": d["macs"] / p["macs"],
        "latency_speedup": d["latency_ms"] / p["latency_ms"],
        "satisfied": metrics["budget"]["satisfied"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--max-entries", type=int, default=None, help="stop after this many new entries")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None,
        help="run only these of the config's seeds now (a long grid, a seed at a time; the rest stay to do)",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, default=1, help="entries run at a time, each in its own process"
    )
    parser.add_argument(
        "--ray", action="store_true", help="run entries as tasks on a local Ray cluster of --workers CPUs"
    )
    parser.add_argument(
        "--ray-address", default=None, help="join this Ray cluster (`ray start --head` prints it)"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if args.ray or args.ray_address:
        try:
            import ray_grid  # Ray is an optional extra, imported only when asked for
        except ImportError as exc:
            parser.error(f"--ray needs Ray: pip install -e '.[ray]' ({exc})")
    config = load_config(args.config)
    results = Path(config["results"])
    done = read_results(results)
    finished = {entry_key(e) for e in done}
    if args.seeds is not None and not set(args.seeds) <= set(config["seeds"]):
        parser.error(f"--seeds {args.seeds}: the config's seeds are {config['seeds']}")
    todo = [k for k in grid(config) if k not in finished and (args.seeds is None or k[4] in args.seeds)]
    if args.max_entries is not None:
        todo = todo[: args.max_entries]
    print(f"{len(finished)} entries done, {len(todo)} to run -> {results}", file=sys.stderr)
    if args.ray or args.ray_address:
        ray_grid.run_on_ray(config, phases(todo), done, results, args.workers, args.ray_address)
    elif args.workers == 1:
        for key in tqdm(todo, desc="leaderboard", unit="entry"):
            entry = run_entry(config, key, done, results)
            append_atomically(results, entry)
            done.append(entry)
    else:
        run_in_workers(config, todo, done, results, args.workers)
    return 0


def phases(todo: list[tuple]) -> list[list[tuple]]:
    """The entries in two waves: the matched searches wait for the RL entries they match."""
    return [[k for k in todo if k[3] not in MATCHED], [k for k in todo if k[3] in MATCHED]]


def failed_entry(key: tuple, error: BaseException) -> dict:
    """The entry of a cell whose run crashed (not a PruneEnvError, which run_entry records itself)."""
    task, budget, limit, agent, seed = key
    return {"task": task, "budget": budget, "limit": limit, "agent": agent, "seed": seed, "satisfied": False,
            "error": f"run crashed: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[-1]}"}  # fmt: skip


def run_in_workers(config: dict, todo: list[tuple], done: list[dict], results: Path, workers: int) -> None:
    """Entries in worker processes, results appended here as they finish. The matched searches
    wait for the other entries, since they spend the RL agents' evaluation counts."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(threads,),
    )
    with pool, tqdm(total=len(todo), desc="leaderboard", unit="entry") as bar:
        for phase in phases(todo):
            futures = {pool.submit(run_entry, config, key, list(done), results): key for key in phase}
            for future in as_completed(futures):
                try:
                    entry = future.result()
                except Exception as exc:  # a crashed entry is recorded, the grid goes on
                    entry = failed_entry(futures[future], exc)
                append_atomically(results, entry)
                done.append(entry)
                bar.update()


if __name__ == "__main__":
    sys.exit(main())
