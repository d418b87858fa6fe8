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
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.entrypoint import run_script
from benchmarks.grid import failed_entry, grid, load_config, phases, run_entry
from benchmarks.results_io import BOARD_KEYS, append_atomically, entry_key, read_results


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
            from benchmarks import ray_grid  # Ray is an optional extra, imported only when asked for
        except ImportError as exc:
            parser.error(f"--ray needs Ray: pip install -e '.[ray]' ({exc})")
    config = load_config(args.config)
    results = Path(config["results"])
    done = read_results(results, require=BOARD_KEYS, what="a leaderboard entry")
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
    run_script(main)
