"""Does distillation help the final fine-tune? The same masks fine-tuned with and without it.

    python benchmarks/distillation.py [--results benchmarks/results/fmnist-cnn-cpu.jsonl]
        [--task fashion-mnist-cnn] [--budget params] [--limit 0.1] [--agent ppo-lag]
        [--epochs 1] [--temperature 4] [--weight 0.9] [--threads 1]
        [--out benchmarks/results/distillation.jsonl]

Takes the masks a leaderboard chose (one entry per seed of ``--agent`` in the cell), rebuilds each
pruned network from the dense checkpoint, and gives it the pipeline's final fine-tune
(``prune_env.app.pipeline.finetune_network``: Adam, cosine schedule, best epoch by validation
accuracy, the entry's seed) twice: on the labels alone, and distilled from the dense network
(``PruneConfig``'s temperature and weight unless given). Reports test accuracy per seed and the
mean difference, for every setting run so far. The plain run replays the leaderboard's own fine-tune when ``--epochs`` equals the
entry's, so its number is checked against the entry's recorded test accuracy. One JSON line per
(seed, variant), appended atomically: a killed run resumes. Table: ``DISTILLATION.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from benchmarks.entrypoint import run_script
from benchmarks.results_io import append_atomically, read_board, read_results, recorded_mask
from prune_env.app import PruneConfig, finetune_network, split_accuracies
from prune_env.problem import PruneProblem
from prune_env.zoo.sources import task_dataset

ROW_KEYS = ("agent", "seed", "distill", "test_accuracy")  # every row of its results file


def cell_entries(args) -> list[dict]:
    entries = [
        e
        for e in read_board(args.results)
        if (e["task"], e["budget"], float(e["limit"]), e["agent"])
        == (args.task, args.budget, args.limit, args.agent)
        and "error" not in e
    ]
    if not entries:
        sys.exit(f"no {args.agent} entries for {args.task} {args.budget}<={args.limit:g} in {args.results}")
    return sorted(entries, key=lambda e: e["seed"])


def _key(row: dict) -> tuple:
    """A labels-only fine-tune does not depend on the distillation settings."""
    if not row["distill"]:
        return (row["seed"], False, row["epochs"])
    return (row["seed"], True, row["epochs"], row["temperature"], row["weight"])


def run(args) -> Path:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    done = {_key(r) for r in read_results(out, require=ROW_KEYS, what="a row of distillation.py")}
    problem = PruneProblem(args.task, budget=args.budget, budget_limit=args.limit, eval_samples=10)
    data = task_dataset(args.task)
    for entry in cell_entries(args):
        for distill in (False, True):
            cfg = replace(
                PruneConfig(), seed=entry["seed"], finetune_epochs=args.epochs, distill=distill, progress=False,
                distill_temperature=args.temperature, distill_weight=args.weight,
            )  # fmt: skip
            settings = {"epochs": args.epochs, "temperature": args.temperature, "weight": args.weight}
            if _key({"seed": entry["seed"], "distill": distill, **settings}) in done:
                continue
            pruned = problem.export(recorded_mask(entry)["masks"])
            start = time.time()
            tuned = finetune_network(pruned, data, cfg, teacher=problem.model)
            row = {
                "task": args.task, "budget": args.budget, "limit": args.limit, "agent": args.agent,
                "seed": entry["seed"], "distill": distill, **settings,
                "test_accuracy": split_accuracies(pruned, data)["test_accuracy"],
                "val_accuracy": tuned.best_accuracy, "best_epoch": tuned.best_epoch,
                "leaderboard_test_accuracy": entry["test_accuracy"],
                "leaderboard_finetune_epochs": entry["config"]["finetune_epochs"],
                "threads": args.threads, "seconds": time.time() - start,
            }  # fmt: skip
            append_atomically(out, row)
            print(
                f"seed {row['seed']} distill={distill}: test {row['test_accuracy']:.4f} ({row['seconds']:.0f} s)"
            )
    return write_table(out)


def write_table(out: Path) -> Path:
    rows = read_results(out, require=ROW_KEYS, what="a row of distillation.py")
    first = rows[0]
    lines = [
        "# Distillation in the final fine-tune",
        "",
        f"Task `{first['task']}`, {first['budget']} <= {first['limit']:g}, the masks `{first['agent']}` chose in the "
        f"leaderboard (one per seed). Each pruned network is fine-tuned by the pipeline's final fine-tune (Adam "
        f"1e-3, cosine schedule, batch 128, best epoch by validation accuracy, the entry's seed) on the labels alone "
        f"and distilled from the dense network (loss = weight * T^2 * KL(teacher_T || student_T) + (1 - weight) * "
        f"cross-entropy). Test accuracy on the full test split.",
        "",
        "| fine-tune epochs | T | weight | seed | labels only | distilled | difference (pts) | "
        "labels-only run vs the leaderboard entry |",
        "|---|---|---|---|---|---|---|---|",
    ]
    plain_runs = {(r["seed"], r["epochs"]): r for r in rows if not r["distill"]}
    for epochs, temperature, weight in sorted(
        {(r["epochs"], r["temperature"], r["weight"]) for r in rows if r["distill"]}
    ):
        distilled = [
            r
            for r in rows
            if r["distill"] and (r["epochs"], r["temperature"], r["weight"]) == (epochs, temperature, weight)
        ]
        diffs = []
        for kd in sorted(distilled, key=lambda r: r["seed"]):
            plain = plain_runs.get((kd["seed"], epochs))
            if plain is None:
                continue
            diffs.append(100 * (kd["test_accuracy"] - plain["test_accuracy"]))
            replay = (
                f"{abs(plain['test_accuracy'] - plain['leaderboard_test_accuracy']) * 100:.2f} pts apart"
                if plain["leaderboard_finetune_epochs"] == epochs
                else "other epochs"
            )
            lines.append(
                f"| {epochs} | {temperature:g} | {weight:g} | {kd['seed']} | {plain['test_accuracy']:.2%} | "
                f"{kd['test_accuracy']:.2%} | {diffs[-1]:+.2f} | {replay} |"
            )
        if diffs:
            spread = f" +- {statistics.stdev(diffs):.2f}" if len(diffs) > 1 else ""
            lines.append(
                f"| {epochs} | {temperature:g} | {weight:g} | mean | | | **{statistics.mean(diffs):+.2f}{spread}** | |"
            )
    lines += [
        "",
        f"Commands: `python benchmarks/distillation.py [--epochs E] [--temperature T] [--weight W]` (threads "
        f"{first['threads']}); rows in `{out.name}`.",
        "",
    ]
    table = out.with_name("DISTILLATION.md")
    table.write_text("\n".join(lines))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="benchmarks/results/fmnist-cnn-cpu.jsonl")
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--budget", default="params")
    parser.add_argument("--limit", type=float, default=0.1)
    parser.add_argument("--agent", default="ppo-lag")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=PruneConfig.distill_temperature)
    parser.add_argument("--weight", type=float, default=PruneConfig.distill_weight)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/distillation.jsonl")
    args = parser.parse_args(argv)
    print(f"table: {run(args)}")
    return 0


if __name__ == "__main__":
    run_script(main)
