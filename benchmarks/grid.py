"""One leaderboard entry and the grid it belongs to: the harness shared by the local runner
(``leaderboard.py``) and the Ray runner (``ray_grid.py``).

An entry is `prune-env prune`'s pipeline for one (task, budget, limit, agent, seed): an RL agent's
search or a classic baseline, then the same fine-tune, test evaluation and latency for everyone,
recorded with everything validate.py needs to replay it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from agents.registry import AGENTS
from benchmarks.results_io import FORMAT, entry_key
from prune_env.app import (
    BASELINES,
    BISECTION_STEPS,
    GRID_FIELDS,
    MATCHED,
    PruneConfig,
    run_baseline,
    run_prune,
)
from prune_env.errors import NoFeasibleMaskError, PruneEnvError
from prune_env.zoo.data import DEFAULT_SPLIT_SEED
from prune_env.zoo.tasks import file_sha256

GRID_KEYS = ("tasks", "budgets", "agents", "seeds")


def load_config(path: str | Path) -> dict:
    """The grid (tasks, budgets, agents, seeds), the results path, and the run settings every
    entry shares: any field of :data:`GRID_FIELDS`, the rest from ``PruneConfig``'s defaults."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not a YAML file ({getattr(exc, 'problem', None) or exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: a leaderboard config is a YAML mapping with keys {list(GRID_KEYS)}")
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


def phases(todo: list[tuple]) -> list[list[tuple]]:
    """The entries in two waves: the matched searches wait for the RL entries they match."""
    return [[k for k in todo if k[3] not in MATCHED], [k for k in todo if k[3] in MATCHED]]


def failed_entry(key: tuple, error: BaseException) -> dict:
    """The entry of a cell whose run crashed (not a PruneEnvError, which run_entry records itself)."""
    task, budget, limit, agent, seed = key
    return {"task": task, "budget": budget, "limit": limit, "agent": agent, "seed": seed, "satisfied": False,
            "error": f"run crashed: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[-1]}"}  # fmt: skip
