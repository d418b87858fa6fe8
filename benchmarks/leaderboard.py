"""Run a leaderboard grid: agents x tasks x budgets x seeds, each entry the whole pipeline.

    python benchmarks/leaderboard.py --config benchmarks/configs/NAME.yaml [--workers N] [--max-entries N]

Every entry is `prune-env prune`'s pipeline (search, physical pruning, the same fine-tune for
everyone, test evaluation); classic baselines (uniform-l1, global-l1, random-search) run through
the same pipeline at the same budget, random search spending as many accuracy evaluations as the
grid's first RL agent did on the same task, budget and seed. Results are appended to a JSONL file
one entry at a time, atomically (a killed run leaves no partial line); a rerun skips finished
entries. Entries keep everything needed to replay them (benchmarks/validate.py). ``--workers N``
runs N entries at a time in separate processes, the cores shared evenly between them (the file
is still written by one process only).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
import yaml
from tqdm import tqdm

from prune_env.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE
from prune_env.errors import PruneEnvError
from prune_env.pipeline import LATENCY_BATCH, PruneConfig, run_baseline, run_prune

BASELINES = ("uniform-l1", "global-l1", "random-search")
DEFAULTS = dict(
    timesteps=3000, finetune_epochs=2, episode_finetune=[0, 32], eval_samples=1000, sampled_episodes=32,
    data_dir=None, val_size=DEFAULT_VAL_SIZE, latency_batch=LATENCY_BATCH,
)  # fmt: skip


def load_config(path: str | Path) -> dict:
    config = yaml.safe_load(Path(path).read_text())
    missing = [k for k in ("tasks", "budgets", "agents", "seeds") if k not in config]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    for budget in config["budgets"]:
        if set(budget) != {"kind", "limit"}:
            raise ValueError(f"{path}: every budget needs exactly 'kind' and 'limit', got {budget}")
    config.setdefault("results", str(Path(path).with_suffix(".jsonl")))
    return {**DEFAULTS, **config}


def entry_key(entry: dict) -> tuple:
    return (entry["task"], entry["budget"], float(entry["limit"]), entry["agent"], int(entry["seed"]))


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_atomically(path: Path, entry: dict) -> None:
    """Rewrite the file with one more line through a temporary file and an atomic rename."""
    lines = path.read_text() if path.is_file() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(lines + json.dumps(entry, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def run_entry(config: dict, key: tuple, done: list[dict], runs_dir: Path) -> dict:
    task, budget, limit, agent, seed = key
    out = runs_dir / f"{task}__{budget}-{limit:g}__{agent}__{seed}"
    cfg = PruneConfig(
        task=task, budget=budget, limit=limit, agent=agent, seed=seed, out=str(out), progress=False,
        timesteps=config["timesteps"], finetune_epochs=config["finetune_epochs"],
        episode_finetune=list(config["episode_finetune"]), eval_samples=config["eval_samples"],
        sampled_episodes=config["sampled_episodes"], data_dir=config["data_dir"], val_size=config["val_size"],
        latency_batch=config["latency_batch"],
    )  # fmt: skip
    start = time.time()
    hyperparameters: dict = {}
    try:
        if agent in BASELINES:
            matched = [
                e for e in done
                if e["agent"] not in BASELINES and "evaluations" in e and entry_key(e)[:3] == key[:3] and e["seed"] == seed
            ]  # fmt: skip
            evaluations = matched[0]["evaluations"] if matched else config["timesteps"]
            hyperparameters = (
                {"evaluations": evaluations} if agent == "random-search" else {"bisection_steps": 12}
            )
            metrics = run_baseline(cfg, agent, evaluations=evaluations)
        else:
            from agents.registry import AGENTS

            hyperparameters = {k: repr(v) for k, v in AGENTS[agent].defaults.items()}
            metrics = run_prune(cfg)
    except PruneEnvError as exc:
        return {"task": task, "budget": budget, "limit": limit, "agent": agent, "seed": seed, "satisfied": False,
                "error": str(exc), "wall_seconds": time.time() - start, "hyperparameters": hyperparameters}  # fmt: skip
    d, p = metrics["dense"], metrics["pruned"]
    masks = json.loads((out / "masks.json").read_text())
    return {
        "task": task,
        "checkpoint_sha256": metrics["checkpoint_sha256"],
        "split_seed": DEFAULT_SPLIT_SEED,
        "val_size": config["val_size"],
        "device": metrics["device"],
        "latency_batch": metrics["latency_batch"],
        "threads": torch.get_num_threads(),
        "budget": budget,
        "limit": limit,
        "agent": agent,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "masks": masks["masks"],
        "widths": masks["widths"],
        "timesteps": config["timesteps"] if agent not in BASELINES else 0,
        "evaluations": metrics["evaluations"],
        "eval_samples": config["eval_samples"],
        "finetune_epochs": config["finetune_epochs"],
        "wall_seconds": time.time() - start,
        "val_accuracy_before_finetune": p["val_accuracy_before_finetune"],
        "val_accuracy_after_finetune": p["val_accuracy_after_finetune"],
        "test_accuracy_before_finetune": p["test_accuracy_before_finetune"],
        "test_accuracy": p["test_accuracy"],
        "dense_test_accuracy": d["test_accuracy"],
        "delta": p["test_accuracy"] - d["test_accuracy"],
        "budget_value": metrics["budget"]["value"],
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
        "--workers", type=int, default=1, help="entries run at a time, each in its own process"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    config = load_config(args.config)
    results = Path(config["results"])
    done = read_results(results)
    finished = {entry_key(e) for e in done}
    todo = [k for k in grid(config) if k not in finished]
    if args.max_entries is not None:
        todo = todo[: args.max_entries]
    print(f"{len(finished)} entries done, {len(todo)} to run -> {results}", file=sys.stderr)
    if args.workers == 1:
        for key in tqdm(todo, desc="leaderboard", unit="entry"):
            entry = run_entry(config, key, done, results.parent / "runs")
            append_atomically(results, entry)
            done.append(entry)
    else:
        run_in_workers(config, todo, done, results, args.workers)
    return 0


def run_in_workers(config: dict, todo: list[tuple], done: list[dict], results: Path, workers: int) -> None:
    """Entries in worker processes, results appended here as they finish. Random search waits
    for the other entries, since it matches the RL agents' evaluation counts."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    phases = [[k for k in todo if k[3] != "random-search"], [k for k in todo if k[3] == "random-search"]]
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=torch.set_num_threads,
        initargs=(threads,),
    )
    with pool, tqdm(total=len(todo), desc="leaderboard", unit="entry") as bar:
        for phase in phases:
            runs = results.parent / "runs"
            futures = [pool.submit(run_entry, config, key, list(done), runs) for key in phase]
            for future in as_completed(futures):
                entry = future.result()
                append_atomically(results, entry)
                done.append(entry)
                bar.update()


if __name__ == "__main__":
    sys.exit(main())
