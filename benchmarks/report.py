"""LEADERBOARD.md and plots from a leaderboard's results.

    python benchmarks/report.py RESULTS.jsonl [MORE.jsonl ...] [--out DIR] [--command "..."]

Per task and budget: the dense test accuracy from the same pipeline on top, then every agent
ranked by mean test accuracy over its seeds among entries that satisfy the budget (mean +- std,
ShrinkBench style), with the delta to dense, compression, theoretical and measured speedup, and
how many seeds met the budget. Plots: test accuracy against params ratio and against FLOPs
ratio, one line per agent (a point per budget).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from results_io import read_results, run_settings  # noqa: E402


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} +- {100 * std:.2f}"


def _settings(by_agent: dict[str, list[dict]]) -> str:
    """The search and fine-tune settings the cell's entries share, as a sentence."""
    entries = [e for group in by_agent.values() for e in group if "masks" in e]
    epochs = sorted({run_settings(e)["finetune_epochs"] for e in entries})
    steps = sorted({e["timesteps"] for e in entries if e["timesteps"]})
    latency = sorted(
        {
            f"batch {run_settings(e)['latency_batch']} on {e['device']}"
            + (f" ({e['threads']} thread(s))" if "threads" in e else "")
            for e in entries
            if "latency_batch" in run_settings(e)
        }
    )
    text = f"Final fine-tune: {', '.join(map(str, epochs))} epoch(s) for every agent"
    text += f"; RL agents trained for {', '.join(f'{t:,}' for t in steps)} timesteps" if steps else ""
    return text + (f"; latency measured at {', '.join(latency)}." if latency else ".")


def leaderboard_markdown(entries: list[dict], command: str | None = None) -> str:
    lines = ["# Leaderboard", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    lines += [
        "Test accuracy in %, mean +- std over seeds, counting only entries within the budget; every entry is the whole "
        "pipeline (search, physical pruning, the same fine-tune, test evaluation) and is re-checked by "
        "`benchmarks/validate.py`.",
        "",
    ]
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        cells[(e["task"], e["budget"], float(e["limit"]))][e["agent"]].append(e)
    for (task, budget, limit), by_agent in sorted(cells.items()):
        dense = [
            e["dense_test_accuracy"]
            for group in by_agent.values()
            for e in group
            if "dense_test_accuracy" in e
        ]
        lines += [f"## {task}, {budget} <= {limit:g}", ""]
        if dense:
            lines += [f"Dense test accuracy: {100 * statistics.mean(dense):.2f}%. {_settings(by_agent)}", ""]
        lines += [
            "| rank | agent | test acc. | delta | params ratio | compression | theor. speedup | latency speedup | within budget | evaluations |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = []
        for agent, group in by_agent.items():
            ok = [e for e in group if e.get("satisfied")]
            acc = [e["test_accuracy"] for e in ok]
            rows.append((statistics.mean(acc) if acc else -1.0, agent, ok, group))
        for rank, (_, agent, ok, group) in enumerate(sorted(rows, key=lambda r: -r[0]), start=1):

            def mean(key, ok=ok):
                return statistics.mean(e[key] for e in ok) if ok else float("nan")

            lines.append(
                f"| {rank if ok else '-'} | {agent} | {_mean_std([e['test_accuracy'] for e in ok])} | "
                f"{100 * mean('delta'):+.2f} | {mean('params_ratio'):.3f} | {mean('compression'):.2f}x | "
                f"{mean('theoretical_speedup'):.2f}x | {mean('latency_speedup'):.2f}x | {len(ok)}/{len(group)} | "
                f"{mean('evaluations'):.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot_tradeoff(entries: list[dict], out_dir: Path) -> list[Path]:
    paths = []
    for ratio, label in (
        ("params_ratio", "params ratio (pruned / dense)"),
        ("flops_ratio", "FLOPs ratio (pruned / dense)"),
    ):
        for task in sorted({e["task"] for e in entries}):
            fig, ax = plt.subplots(figsize=(6, 4))
            by_agent: dict[str, dict[tuple, list[dict]]] = defaultdict(lambda: defaultdict(list))
            for e in entries:
                if e["task"] == task and e.get("satisfied"):
                    by_agent[e["agent"]][(e["budget"], e["limit"])].append(e)
            for agent, cells in sorted(by_agent.items()):
                points = sorted(
                    (
                        statistics.mean(e[ratio] for e in group),
                        100 * statistics.mean(e["test_accuracy"] for e in group),
                    )
                    for group in cells.values()
                )
                ax.plot(*zip(*points), "o-", label=agent)
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(task)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            path = out_dir / f"{task}__accuracy_vs_{ratio}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="one or more JSONL files, reported together")
    parser.add_argument(
        "--out", default=None, help="folder for LEADERBOARD.md and plots (default: beside the results)"
    )
    parser.add_argument(
        "--command", default=None, help="the command that produced the results, quoted in the report"
    )
    args = parser.parse_args(argv)
    entries = read_results(*args.results)
    out = Path(args.out) if args.out else Path(args.results[0]).parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "LEADERBOARD.md").write_text(leaderboard_markdown(entries, args.command))
    plots = plot_tradeoff(entries, out)
    print(f"wrote {out / 'LEADERBOARD.md'} and {len(plots)} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
