"""LEADERBOARD.md and plots from a leaderboard's results.

    python benchmarks/report.py RESULTS.jsonl [MORE.jsonl ...] [--out DIR] [--command "..."]
        [--configs CONFIG.yaml ...]

Per task and budget: the dense test accuracy from the same pipeline and the cell's scoring
protocol on top, then every agent ranked by mean test accuracy over its seeds among entries that
satisfy the budget (mean +- std, ShrinkBench style), with the delta to dense, compression,
theoretical and measured speedup, and how many seeds met the budget. A cell whose entries were
scored under different protocols is refused (exit 2, naming them). Plots: test accuracy against
params ratio and against FLOPs ratio, one line per agent and budget kind.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import yaml  # noqa: E402

from benchmarks.entrypoint import run_script
from benchmarks.results_io import entry_key, read_board, run_settings, scoring_protocol  # noqa: E402


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} +- {100 * std:.2f}"


def _describe(protocol: dict) -> str:
    schedule = protocol["episode_finetune"]
    steps = ",".join(map(str, schedule)) if isinstance(schedule, list) else str(schedule)
    return (
        f"{protocol['eval_samples']} validation images, per-episode fine-tune {steps}, "
        f"BatchNorm recalibration {protocol.get('bn_recalibration', 0)}"
    )


def cell_protocol(cell: str, entries: list[dict]) -> dict:
    """The one scoring protocol of a cell's entries; an error naming them if they differ."""
    protocols: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        protocols[json.dumps(scoring_protocol(e), sort_keys=True)].append(f"{e['agent']} seed {e['seed']}")
    if len(protocols) > 1:
        listing = "; ".join(f"{_describe(json.loads(p))}: {', '.join(who)}" for p, who in protocols.items())
        raise ProtocolMismatch(
            f"{cell}: entries were scored under different protocols, not ranked ({listing})"
        )
    return json.loads(next(iter(protocols)))


class ProtocolMismatch(ValueError):
    """A cell whose entries were not scored alike: its ranking would compare unequal signals."""


def _settings(entries: list[dict], protocol: dict) -> str:
    """The scoring, search and fine-tune settings the cell's entries share, as sentences."""
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
    loads = [e["load_average"] for e in entries if "load_average" in e]
    text = f"Scoring protocol: {_describe(protocol)}. Final fine-tune: {', '.join(map(str, epochs))} epoch(s)"
    text += f"; RL agents trained for {', '.join(f'{t:,}' for t in steps)} timesteps" if steps else ""
    text += f"; latency measured at {', '.join(latency)}" if latency else ""
    text += f" (1-minute load average {min(loads):.1f}-{max(loads):.1f})" if loads else ""
    return text + "."


def _row(rank: int | None, agent: str, ok: list[dict], group: list[dict]) -> str:
    """One agent's line; compression and speedups are 1 / the mean pruned-to-dense ratio, so they
    agree with the ratio column."""

    if not ok:  # no entry within the budget: nothing to average (the errors are listed below)
        return f"| - | {agent} | - | - | - | - | - | - | 0/{len(group)} | - |"

    def mean(values) -> float:
        return statistics.mean(values)

    params = mean(e["params_ratio"] for e in ok)
    flops = mean(e["flops_ratio"] for e in ok)
    latency = mean(1 / e["latency_speedup"] for e in ok)
    return (
        f"| {rank or '-'} | {agent} | {_mean_std([e['test_accuracy'] for e in ok])} | "
        f"{100 * mean(e['delta'] for e in ok):+.2f} | {params:.3f} | {1 / params:.2f}x | {1 / flops:.2f}x | "
        f"{1 / latency:.2f}x | {len(ok)}/{len(group)} | {mean(e['evaluations'] for e in ok):.0f} |"
    )


def planned_entries(config_path: str | Path) -> set[tuple]:
    """The (task, budget, limit, agent, seed) keys a leaderboard config's grid holds."""
    config = yaml.safe_load(Path(config_path).read_text())
    return {
        (task, b["kind"], float(b["limit"]), agent, int(seed))
        for task in config["tasks"]
        for b in config["budgets"]
        for agent in config["agents"]
        for seed in config["seeds"]
    }


def progress_lines(entries: list[dict], configs: list[str]) -> list[str]:
    """How much of each config's grid has landed: a grid run across sessions says so."""
    landed = {entry_key(e) for e in entries}
    lines = ["| grid | entries landed | seeds complete |", "|---|---|---|"]
    for path in configs:
        planned = planned_entries(path)
        seeds = sorted({k[4] for k in planned})
        complete = [s for s in seeds if all(k in landed for k in planned if k[4] == s)]
        lines.append(
            f"| `{Path(path).name}` | {len(planned & landed)} of {len(planned)} | {', '.join(map(str, complete)) or 'none yet'} |"
        )
    return [*lines, ""]


def leaderboard_markdown(
    entries: list[dict], command: str | None = None, configs: list[str] | None = None
) -> str:
    """The ranked tables. Raises :class:`ProtocolMismatch` for a cell scored under several protocols."""
    lines = ["# Leaderboard", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    if configs:
        lines += progress_lines(entries, configs)
    lines += [
        "Test accuracy in %, mean +- std over seeds, counting only entries within the budget; every entry is the whole "
        "pipeline (search, physical pruning, the same fine-tune, test evaluation) and is re-checked by "
        "`benchmarks/validate.py`. Every searcher of a cell scores its candidates under the same protocol. "
        "Compression and speedups are 1 / the mean pruned-to-dense ratio over seeds.",
        "",
    ]
    cells: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for e in entries:
        cells[(e["task"], e["budget"], float(e["limit"]))][e["agent"]].append(e)
    mismatches = []
    for (task, budget, limit), by_agent in sorted(cells.items()):
        name = f"{task}, {budget} <= {limit:g}"
        finished = [e for group in by_agent.values() for e in group if "error" not in e]
        try:
            protocol = cell_protocol(name, finished)
        except ProtocolMismatch as exc:
            mismatches.append(str(exc))
            continue
        dense = [e["dense_test_accuracy"] for e in finished]
        lines += [f"## {name}", ""]
        if dense:
            lines += [
                f"Dense test accuracy: {100 * statistics.mean(dense):.2f}%. {_settings(finished, protocol)}",
                "",
            ]
        lines += [
            "| rank | agent | test acc. | delta | params ratio | compression | theor. speedup | latency speedup | within budget | evaluations |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = []
        for agent, group in by_agent.items():
            ok = [e for e in group if e.get("satisfied")]
            rows.append((statistics.mean(e["test_accuracy"] for e in ok) if ok else -1.0, agent, ok, group))
        ranked = sorted(rows, key=lambda r: -r[0])
        for rank, (_, agent, ok, group) in enumerate(ranked, start=1):
            lines.append(_row(rank if ok else None, agent, ok, group))
        errors = sorted({e["error"] for group in by_agent.values() for e in group if "error" in e})
        lines += [f"- not ranked: {error}" for error in errors]
        lines.append("")
    if mismatches:
        raise ProtocolMismatch("\n".join(mismatches))
    return "\n".join(lines)


MARKERS = {"params": "o", "flops": "s", "latency": "^"}


def plot_tradeoff(entries: list[dict], out_dir: Path) -> list[Path]:
    """Test accuracy against the params and FLOPs ratios, per task: one line per agent and budget
    kind (a point per limit), since points of different budget kinds do not lie on one curve."""
    paths = []
    for ratio, label in (
        ("params_ratio", "params ratio (pruned / dense)"),
        ("flops_ratio", "FLOPs ratio (pruned / dense)"),
    ):
        for task in sorted({e["task"] for e in entries}):
            fig, ax = plt.subplots(figsize=(8.5, 4.2))
            lines: dict[tuple, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
            for e in entries:
                if e["task"] == task and e.get("satisfied"):
                    lines[(e["agent"], e["budget"])][e["limit"]].append(e)
            colors = {a: f"C{i}" for i, a in enumerate(sorted({a for a, _ in lines}))}
            for (agent, kind), by_limit in sorted(lines.items()):
                points = sorted(
                    (
                        statistics.mean(e[ratio] for e in group),
                        100 * statistics.mean(e["test_accuracy"] for e in group),
                    )
                    for group in by_limit.values()
                )
                ax.plot(
                    *zip(*points),
                    marker=MARKERS.get(kind, "x"),
                    color=colors[agent],
                    label=f"{agent} ({kind})",
                )
            ax.set_xlabel(label)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(task)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
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
    parser.add_argument(
        "--configs",
        nargs="+",
        default=None,
        help="the grids' configs: the report says how much of each has landed",
    )
    args = parser.parse_args(argv)
    entries = read_board(*args.results)
    out = Path(args.out) if args.out else Path(args.results[0]).parent
    out.mkdir(parents=True, exist_ok=True)
    try:
        markdown = leaderboard_markdown(entries, args.command, args.configs)
    except ProtocolMismatch as exc:
        print(f"report.py: error: {exc}", file=sys.stderr)
        return 2
    (out / "LEADERBOARD.md").write_text(markdown)
    plots = plot_tradeoff(entries, out)
    print(f"wrote {out / 'LEADERBOARD.md'} and {len(plots)} plots")
    return 0


if __name__ == "__main__":
    run_script(main)
