"""The leaderboard's entries as Ray tasks: a local cluster, or one that spans machines.

``leaderboard.py --ray`` starts a local cluster of ``--workers`` CPUs; ``--ray-address ADDRESS``
joins a running one (``ray start --head`` on one machine, ``ray start --address=HEAD:6379`` on the
others). Each entry is one task with the resources the config's ``resources`` key asks for
(``{cpus: 1, gpus: 0.25}``: fractions of a GPU allowed), and runs with that many torch threads.

The driver stays the only writer of the results: a task returns its entry and the bytes of its
fine-tuned weights, and the driver appends the entry atomically and writes the weights beside
the results file, so the results directory needs no shared filesystem (a task's run directory
stays on the node that ran it). A failing task is recorded as an entry with its error and the
grid goes on; a killed driver loses only the entries in flight, and a rerun resumes. Random
search and evolution still wait for the RL entries whose evaluation counts they match.
"""

from __future__ import annotations

from pathlib import Path

import ray
import torch
from tqdm import tqdm

from benchmarks.grid import failed_entry, run_entry
from benchmarks.results_io import append_atomically


def _run_task(
    config: dict, key: tuple, done: list[dict], results: str, threads: int
) -> tuple[dict, bytes | None]:
    """One entry, on whichever node Ray chose: the entry and its weights file's bytes."""
    torch.set_num_threads(threads)
    entry = run_entry(config, key, done, Path(results))
    weights = Path(results).parent / entry["weights"]["path"] if "weights" in entry else None
    return entry, (weights.read_bytes() if weights is not None else None)


def run_on_ray(
    config: dict,
    phases: list[list[tuple]],
    done: list[dict],
    results: Path,
    workers: int,
    address: str | None,
) -> None:
    """Run each phase's entries as Ray tasks, appending each entry as it finishes."""
    resources = config.get("resources") or {}
    cpus, gpus = float(resources.get("cpus", 1)), float(resources.get("gpus", 0))
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    # Workers import the harness as the installed package ``benchmarks`` (pip install -e .).
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(
        _run_task
    )  # a crash is recorded, not retried
    threads = max(1, int(cpus))
    try:
        with tqdm(total=sum(map(len, phases)), desc="leaderboard (ray)", unit="entry") as bar:
            for phase in phases:
                pending = {task.remote(config, key, list(done), str(results), threads): key for key in phase}
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    key = pending.pop(ready[0])
                    try:
                        entry, weights = ray.get(ready[0])
                    except Exception as exc:  # a crashed task is one failed entry, not a failed grid
                        entry, weights = failed_entry(key, exc), None
                    if weights is not None:
                        target = results.parent / entry["weights"]["path"]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(weights)
                    append_atomically(results, entry)
                    done.append(entry)
                    bar.update()
    finally:
        ray.shutdown()
