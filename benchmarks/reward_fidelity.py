"""Which scoring protocol predicts the final result? Reward fidelity of PruneEnv's protocols.

    python benchmarks/reward_fidelity.py [--task fashion-mnist-cnn] [--budget params] [--limit 0.1]
        [--masks 64] [--seed 0] [--threads 1] [--out benchmarks/results/reward_fidelity.jsonl]

Samples ``--masks`` random feasible masks (one keep-ratio per group, largest-L1 units, scaled to
the budget: the agents' action space), scores each under every protocol below, then gives each
the pipeline's final fine-tune (``--final-epochs``, default 1) and records its validation
accuracy. Per protocol: the Spearman rank correlation between its score and the final accuracy
(with a 95% bootstrap interval over masks) and the median seconds per evaluation. One JSON line
per mask, appended atomically: a killed run resumes where it stopped. ``--report`` only rewrites
the Markdown table from the JSONL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.entrypoint import run_script
from benchmarks.results_io import append_atomically, read_results
from prune_env.app import PruneConfig, finetune_network, sample_ratios
from prune_env.problem import PruneProblem
from prune_env.zoo.sources import task_dataset

ROW_KEYS = ("index", "scores", "final_val_accuracy")  # every row of its results file

# name -> (per-episode fine-tune steps, BatchNorm recalibration batches)
PROTOCOLS = {
    "none": (0, 0),
    "bn-4": (0, 4),
    "bn-16": (0, 16),
    "bn-64": (0, 64),
    "ft-32": (32, 0),
    "ft-32+bn-16": (32, 16),
    "ft-128": (128, 0),
}


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    result = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        result[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return result


def spearman(x, y) -> float:
    """Spearman's rank correlation (Pearson's on average ranks); nan if either side is constant."""
    rx, ry = ranks(np.asarray(x, dtype=float)), ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def bootstrap_interval(x, y, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of Spearman's rho over masks resampled with replacement."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), len(x))
        rho = spearman(x[idx], y[idx])
        if not np.isnan(rho):
            rhos.append(rho)
    return float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))


def picked_final(rows: list[dict], name: str, seconds: float, draws: int = 4000, seed: int = 0) -> float:
    """Mean final accuracy of the candidate a protocol ranks first when a search may spend
    ``seconds`` on scoring: ``seconds / (median s per evaluation)`` masks drawn from the study's
    masks with replacement, the best-scored one kept (a bootstrap; saturates near 64 draws)."""
    final = np.array([r["final_val_accuracy"] for r in rows])
    score = np.array([r["scores"][name]["accuracy"] for r in rows])
    count = max(1, int(seconds / statistics.median(r["scores"][name]["seconds"] for r in rows)))
    rng = np.random.default_rng(seed)
    picks = [final[idx[np.argmax(score[idx])]] for idx in rng.integers(0, len(rows), (draws, count))]
    return float(np.mean(picks))


def score_mask(problem: PruneProblem, ratios: np.ndarray, index: int) -> dict:
    """The mask's score and seconds under every protocol (each seeded by the mask's index)."""
    keep = problem.keep_from_ratios(ratios)
    scores = {}
    for name, (steps, batches) in PROTOCOLS.items():
        problem.set_scoring(finetune_steps=steps, bn_recalibration=batches)
        start = time.perf_counter()
        # the fine-tune's batches depend only on the mask's index
        record = problem.score(keep, source="random", rng=np.random.default_rng(index))
        scores[name] = {"accuracy": record.accuracy, "seconds": time.perf_counter() - start}
    return {"record": record, "scores": scores}


def run(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    problem = PruneProblem(
        args.task, budget=args.budget, budget_limit=args.limit, eval_samples=args.eval_samples
    )
    data = task_dataset(args.task)
    rng = np.random.default_rng(args.seed)
    planned = [sample_ratios(problem, rng) for _ in range(args.masks)]  # fixed up front: resumable
    out = Path(args.out)
    done = {row["index"] for row in read_results(out, require=ROW_KEYS, what="a row of reward_fidelity.py")}
    for index, ratios in enumerate(planned):
        if index in done:
            continue
        scored = score_mask(problem, ratios, index)
        record = scored["record"]
        pruned = problem.export(record.masks)
        start = time.perf_counter()
        cfg = PruneConfig(
            task=args.task, finetune_epochs=args.final_epochs, seed=args.seed + index, progress=False
        )
        final = finetune_network(pruned, data, cfg)
        row = {
            "index": index, "task": args.task, "budget": args.budget, "limit": args.limit, "seed": args.seed,
            "eval_samples": args.eval_samples, "ratios": ratios.tolist(), "widths": record.widths,
            "cost": record.cost, "satisfied": record.satisfied, "scores": scored["scores"],
            "final_epochs": args.final_epochs, "final_val_accuracy": final.best_accuracy,
            "final_seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0],
        }  # fmt: skip
        append_atomically(out, row)
        print(f"mask {index}: final {final.best_accuracy:.4f}, cost {record.cost:.4f}", file=sys.stderr)


def report(rows: list[dict], command: str) -> str:
    rows = [r for r in rows if r["satisfied"]]
    final = [r["final_val_accuracy"] for r in rows]
    lines = [
        "# Reward fidelity",
        "",
        "Produced by:",
        "",
        "```bash",
        command,
        "```",
        "",
        f"{len(rows)} random feasible masks of {rows[0]['task']} at {rows[0]['budget']} <= {rows[0]['limit']:g} "
        f"(one keep-ratio per group, largest-L1 units, scaled to the budget), each scored on "
        f"{rows[0]['eval_samples']} validation images under every protocol, then fine-tuned for "
        f"{rows[0]['final_epochs']} epoch(s) as the pipeline does; the target is the validation accuracy after that "
        f"fine-tune (mean {100 * statistics.mean(final):.2f}%, range {100 * min(final):.2f}-{100 * max(final):.2f}%).",
        "",
        "| protocol | fine-tune steps | BN recalibration batches | mean score | Spearman rho | 95% interval | "
        "median s / evaluation |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (steps, batches) in PROTOCOLS.items():
        if not all(name in r["scores"] for r in rows):
            continue
        score = [r["scores"][name]["accuracy"] for r in rows]
        low, high = bootstrap_interval(score, final)
        seconds = statistics.median(r["scores"][name]["seconds"] for r in rows)
        lines.append(
            f"| {name} | {steps} | {batches} | {100 * statistics.mean(score):.2f}% | {spearman(score, final):.3f} | "
            f"[{low:.2f}, {high:.2f}] | {seconds:.2f} |"
        )
    budgets = (30, 60, 120, 300)
    lines += [
        "",
        "What a search gets out of each protocol: the mean final accuracy (%) of the candidate it ranks first when it "
        "may spend this many seconds on scoring (as many masks as fit, drawn from the study's masks with replacement, "
        f"4000 draws; best of all {len(rows)}: {100 * max(final):.2f}%).",
        "",
        "| protocol | " + " | ".join(f"{b} s" for b in budgets) + " |",
        "|---|" + "---|" * len(budgets),
    ]
    for name in PROTOCOLS:
        if all(name in r["scores"] for r in rows):
            picks = " | ".join(f"{100 * picked_final(rows, name, b):.2f}" for b in budgets)
            lines.append(f"| {name} | {picks} |")
    loads = [r["load_average"] for r in rows]
    lines += [
        "",
        f"Seconds are wall time of `PruneProblem.score` (pruning, export proof, protocol, scoring) with "
        f"{rows[0]['threads']} torch thread(s); 1-minute load average during the run "
        f"{min(loads):.1f}-{max(loads):.1f} on a machine with {os.cpu_count()} cores.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--budget", default="params")
    parser.add_argument("--limit", type=float, default=0.1)
    parser.add_argument("--masks", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--final-epochs", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: timings robust to other work on the machine)",
    )
    parser.add_argument("--out", default="benchmarks/results/reward_fidelity.jsonl")
    parser.add_argument("--markdown", default="benchmarks/results/REWARD_FIDELITY.md")
    parser.add_argument("--report", action="store_true", help="only rewrite the Markdown from the JSONL")
    args = parser.parse_args(argv)
    if not args.report:
        run(args)
    rows = read_results(args.out, require=ROW_KEYS, what="a row of reward_fidelity.py")
    command = "python benchmarks/reward_fidelity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    Path(args.markdown).write_text(report(rows, command.replace(" --report", "")))
    print(f"wrote {args.markdown} from {len(rows)} masks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_script(main)
