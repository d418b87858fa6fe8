"""How much accuracy a pruned network gets back: test accuracy after recovery against epochs.

    python benchmarks/recovery.py [--instance TASK:BUDGET:LIMIT ...] [--seeds 0 1 2]
        [--epochs 0 1 2 5 10 20 40] [--losses labels distill] [--threads 1]
        [--results benchmarks/results/recovery.jsonl] [--report-only]

For each instance the masks are the leaderboard's: the best RL agent's and the best search's
entries of that cell (best by mean test accuracy over the cell's seeds), one mask per seed, read
from the boards (``BOARDS``; a cell no board has comes from a study grid such as
``benchmarks/configs/studies/recovery-masks-cnn-0.17.yaml``). Each mask is pruned from the dense
weights and fine-tuned with the ``full`` recovery recipe (the task's own pretraining recipe:
``prune_env.app.recovery``) for each length of ``--epochs`` (a separate run per length: the
schedule spans the run), labels only and distilled from the dense network, and its test accuracy
recorded. Lengths are taken in order and stop growing for a (mask source, loss) once the mean
over seeds gains no more than 0.1 points. The control: the dense network trained for the same
total epochs (its pretraining plus the same recipe for each length). One JSON line per run,
appended atomically: a killed run resumes. The report (``RECOVERY.md`` + ``RECOVERY.png``) says
whether the paper's claim shape holds: after the full recipe, at least the dense network's test
accuracy at >= 83% of the CNN's parameters removed and >= 75% of ResNet-20's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents.registry import AGENTS  # noqa: E402
from benchmarks.entrypoint import run_script  # noqa: E402
from benchmarks.results_io import append_atomically, read_board, read_results  # noqa: E402
from prune_env.app import PruneConfig, finetune_network, split_accuracies  # noqa: E402
from prune_env.problem import PruneProblem  # noqa: E402
from prune_env.zoo import load_checkpoint  # noqa: E402
from prune_env.zoo.sources import task_dataset  # noqa: E402

RESULTS_DIR = Path(__file__).parent / "results"
RESULTS = RESULTS_DIR / "recovery.jsonl"
BOARDS = (
    RESULTS_DIR / "fmnist-cnn-cpu.jsonl",
    RESULTS_DIR / "fmnist-resnet-cpu.jsonl",
    RESULTS_DIR / "studies" / "recovery-masks-cnn-0.17.jsonl",
)
INSTANCES = (
    "fashion-mnist-cnn:params:0.17",  # >= 83% removed: the paper's VGG claim
    "fashion-mnist-cnn:params:0.1",
    "fashion-mnist-resnet20:params:0.25",  # >= 75% removed: the paper's ResNet-18 claim
    "fashion-mnist-resnet20:params:0.1",
)
CLAIMS = {"fashion-mnist-cnn": 0.17, "fashion-mnist-resnet20": 0.25}  # the limit each claim is checked at
EPOCHS = (0, 1, 2, 5, 10, 20, 40)
LOSSES = ("labels", "distill")
GAIN = 0.1  # points: a longer fine-tune that gains no more than this ends the lengths
ROW_KEYS = ("instance", "source", "loss", "epochs", "seed", "test_accuracy")


def parse_instance(text: str) -> tuple[str, str, float]:
    try:
        task, budget, limit = text.rsplit(":", 2)
        return task, budget, float(limit)
    except ValueError as exc:
        raise ValueError(f"an instance is TASK:BUDGET:LIMIT, got {text!r}") from exc


def board_masks(task: str, budget: str, limit: float, boards=None) -> dict[str, dict]:
    """The best RL agent's and the best search's entries of one cell: {source: {"method",
    "mean", "by_seed": {seed: masks}}} with source "rl" and "search"."""
    existing = [b for b in (boards or BOARDS) if Path(b).is_file()]  # a study grid not run yet has none
    entries = [
        e for e in read_board(*existing)
        if e["task"] == task and e["budget"] == budget and abs(e["limit"] - limit) < 1e-9 and e["satisfied"]
    ]  # fmt: skip
    if not entries:
        raise ValueError(
            f"no board has {task} {budget} <= {limit:g}: run its masks first (for the CNN at 0.17: "
            "python benchmarks/leaderboard.py --config benchmarks/configs/studies/recovery-masks-cnn-0.17.yaml)"
        )
    chosen = {}
    for source, is_rl in (("rl", True), ("search", False)):
        by_method: dict[str, list[dict]] = {}
        for e in entries:
            if (e["agent"] in AGENTS) == is_rl:
                by_method.setdefault(e["agent"], []).append(e)
        if not by_method:
            continue
        method = max(by_method, key=lambda m: statistics.mean(e["test_accuracy"] for e in by_method[m]))
        runs = by_method[method]
        chosen[source] = {
            "method": method,
            "board_test": statistics.mean(e["test_accuracy"] for e in runs),
            "by_seed": {e["seed"]: e["selected"]["masks"] for e in runs},
        }
    return chosen


def recover(problem: PruneProblem, data, masks, *, epochs: int, loss: str, seed: int) -> dict:
    """One recovery run from the dense weights: prune ``masks`` (None: the dense network itself,
    the control), fine-tune with the full recipe, measure test accuracy."""
    model = copy.deepcopy(problem.model) if masks is None else problem.export(masks)
    start = time.process_time()
    cfg = PruneConfig(task=problem.task, recipe="full", finetune_epochs=epochs, distill=loss == "distill",
                      seed=seed, progress=False)  # fmt: skip
    tuned = finetune_network(model, data, cfg, teacher=problem.model if loss == "distill" else None)
    acc = split_accuracies(model, data)
    return {"test_accuracy": acc["test_accuracy"], "val_accuracy": acc["val_accuracy"],
            "best_epoch": tuned.best_epoch, "cpu_seconds": round(time.process_time() - start, 1)}  # fmt: skip


def _mean(rows: list[dict], **match) -> float | None:
    values = [r["test_accuracy"] for r in rows if all(r[k] == v for k, v in match.items())]
    return statistics.mean(values) if values else None


def run(args) -> None:
    done = read_results(args.results, require=ROW_KEYS, what="a recovery result")
    key = lambda r: (r["instance"], r["source"], r["loss"], r["epochs"], r["seed"])  # noqa: E731
    seen = {key(r) for r in done}
    for text in args.instance or INSTANCES:
        task, budget, limit = parse_instance(text)
        sources = board_masks(task, budget, limit)
        problem = PruneProblem(task, budget=budget, budget_limit=limit)
        data = task_dataset(task)
        plans = [(s, loss) for s in sources for loss in args.losses] + [("dense", "labels")]
        for source, loss in plans:
            previous = None
            for epochs in args.epochs:
                if source == "dense" and epochs == 0:
                    continue  # the dense network itself: its checkpoint's test accuracy
                for seed in args.seeds:
                    if (text, source, loss, epochs, seed) in seen:
                        continue
                    masks = None if source == "dense" else sources[source]["by_seed"].get(seed)
                    if source != "dense" and masks is None:
                        continue  # the board has no entry of this seed
                    row = {"instance": text, "task": task, "budget": budget, "limit": limit, "source": source,
                           "method": sources[source]["method"] if source != "dense" else "dense",
                           "loss": loss, "epochs": epochs, "seed": seed, "recipe": "full", "threads": args.threads,
                           **recover(problem, data, masks, epochs=epochs, loss=loss, seed=seed)}  # fmt: skip
                    append_atomically(args.results, row)
                    done.append(row)
                    print(f"{text} {source} {loss} {epochs} epochs seed {seed}: test {100 * row['test_accuracy']:.2f}%",
                          flush=True)  # fmt: skip
                mean = _mean(done, instance=text, source=source, loss=loss, epochs=epochs)
                if previous is not None and mean is not None and 100 * (mean - previous) <= GAIN:
                    break  # it stopped improving
                previous = mean if mean is not None else previous


def report(rows: list[dict]) -> str:
    lines = [
        "# Recovery: test accuracy after fine-tuning the pruned network",
        "",
        "Produced by (resumable; `--report-only` rewrites this page):",
        "",
        "```bash",
        "python benchmarks/leaderboard.py --config benchmarks/configs/studies/recovery-masks-cnn-0.17.yaml",
        "python benchmarks/recovery.py",
        "```",
        "",
        "Masks: the leaderboard's best RL agent and best search of each cell (by mean test accuracy), one "
        "per seed. Recovery: the `full` recipe (the task's pretraining recipe: optimizer, learning rate, "
        "weight decay, batch, one-cycle schedule, augmentation), one run per length from the pruned "
        "weights, labels only or distilled from the dense network (T = 4, weight 0.9). Control: the dense "
        "network trained the same total epochs (its pretraining, then the same recipe for that length). "
        "Cells: mean test accuracy (%) over seeds (n).",
    ]
    for text in sorted(
        {r["instance"] for r in rows}, key=lambda t: INSTANCES.index(t) if t in INSTANCES else 99
    ):
        mine = [r for r in rows if r["instance"] == text]
        task, budget, limit = parse_instance(text)
        dense = load_checkpoint(task)[1]["test_accuracy"]  # the shipped dense network's
        columns = sorted(
            {(r["source"], r["method"], r["loss"]) for r in mine}, key=lambda c: (c[0] == "dense", c)
        )
        epochs = sorted({r["epochs"] for r in mine})
        lines += [
            "",
            f"## {task}, {budget} <= {limit:g} ({100 * (1 - limit):.0f}% of the parameters removed or more)",
            "",
        ]
        lines.append("| epochs | " + " | ".join(f"{s}: {m}, {loss}" for s, m, loss in columns) + " |")
        lines.append("|---|" + "---|" * len(columns))
        for e in epochs:
            cells = []
            for source, _method, loss in columns:
                values = [
                    r["test_accuracy"]
                    for r in mine
                    if (r["source"], r["loss"], r["epochs"]) == (source, loss, e)
                ]
                cells.append(f"{100 * statistics.mean(values):.2f} ({len(values)})" if values else "")
            lines.append(f"| {e} | " + " | ".join(cells) + " |")
        best = max(
            (statistics.mean(vs), s, loss, e)
            for (s, loss, e) in {(r["source"], r["loss"], r["epochs"]) for r in mine if r["source"] != "dense"}
            for vs in [[r["test_accuracy"] for r in mine if (r["source"], r["loss"], r["epochs"]) == (s, loss, e)]]
        ) if any(r["source"] != "dense" for r in mine) else None  # fmt: skip
        if best is not None:
            verdict = (
                "at least the dense network's"
                if best[0] >= dense
                else f"{100 * (dense - best[0]):.2f} points below the dense network's"
            )
            lines += [
                "",
                f"Best: {100 * best[0]:.2f}% ({best[1]}, {best[2]}, {best[3]} epochs): {verdict} ({100 * dense:.2f}%).",
            ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    instances = sorted({r["instance"] for r in rows})
    fig, axes = plt.subplots(1, len(instances), figsize=(5 * len(instances), 4), squeeze=False)
    for ax, text in zip(axes[0], instances):
        mine = [r for r in rows if r["instance"] == text]
        for source, loss in sorted({(r["source"], r["loss"]) for r in mine}):
            points = sorted({r["epochs"] for r in mine if (r["source"], r["loss"]) == (source, loss)})
            ys = [100 * _mean(mine, source=source, loss=loss, epochs=e) for e in points]
            ax.plot(points, ys, marker="o", label=f"{source}, {loss}", ls="--" if source == "dense" else "-")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("recovery epochs")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(text, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instance", action="append", default=None, help="TASK:BUDGET:LIMIT (repeat)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=list(EPOCHS))
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if sorted(args.epochs) != args.epochs or min(args.epochs) < 0:
        raise ValueError("--epochs must be increasing lengths >= 0")
    torch.set_num_threads(args.threads)
    if not args.report_only:
        run(args)
    rows = read_results(args.results, require=ROW_KEYS, what="a recovery result")
    if rows:
        out = args.results.with_name("RECOVERY.md")
        out.write_text(report(rows))
        plot(rows, args.results.with_name("RECOVERY.png"))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_script(main)
