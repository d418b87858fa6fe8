"""How RL agents trained in a leaderboard or study: their per-rollout curves, by quarter of training.

    python benchmarks/learning_curves.py RESULTS.jsonl [MORE.jsonl ...] --out DIR

For every agent (and training length) with recorded curves (entries' ``training``: mean
validation accuracy of the rollout's episodes, mean cost, share within the budget, the Lagrange
multiplier, the policy's entropy), the mean over seeds in each quarter of training, and where the
selected mask came from (training episodes, the final policy's deterministic or sampled episodes):
the measurements behind "does the agent learn, or does it harvest what it stumbled on". Writes
DIR/CURVES.md and DIR/curves.png.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.entrypoint import run_script
from benchmarks.results_io import read_board  # noqa: E402

CURVES = ("reward", "cost", "inside_budget", "multiplier", "entropy")
LABELS = {
    "reward": "accuracy",
    "cost": "cost",
    "inside_budget": "within budget",
    "multiplier": "multiplier",
    "entropy": "entropy",
}


def quarters(values: list[float]) -> list[float]:
    """Means of four equal parts of a curve (NaN where a part is empty or undefined)."""
    parts = np.array_split(np.asarray(values, dtype=float), 4)
    return [float(np.nanmean(p)) if p.size and not np.all(np.isnan(p)) else math.nan for p in parts]


def runs_by_agent(entries: list[dict]) -> dict[tuple, list[dict]]:
    """(task, budget, limit, agent, timesteps, schedule) -> its entries with curves."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in entries:
        if e.get("training", {}).get("timesteps"):
            schedule = ",".join(map(str, e.get("config", {}).get("episode_finetune", [])))
            groups[(e["task"], e["budget"], e["limit"], e["agent"], e["timesteps"], schedule)].append(e)
    return groups


def table(groups: dict[tuple, list[dict]]) -> list[str]:
    lines = [
        "| task | budget | agent | timesteps | episode fine-tune | seeds | curve | Q1 | Q2 | Q3 | Q4 | selected from |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (task, budget, limit, agent, steps, schedule), runs in sorted(groups.items()):
        sources = Counter(e["selected"].get("source", "?") for e in runs)
        where = ", ".join(f"{k} {v}" for k, v in sorted(sources.items()))
        for i, curve in enumerate(CURVES):
            per_seed = np.array([quarters(e["training"][curve]) for e in runs])
            means = [np.nanmean(col) if not np.all(np.isnan(col)) else math.nan for col in per_seed.T]
            cells = " | ".join("-" if math.isnan(m) else f"{m:.3f}" for m in means)
            head = (
                f"{task} | {budget} <= {limit:g} | {agent} | {steps} | {schedule} | {len(runs)}"
                if i == 0
                else " | | | | |"
            )
            lines.append(f"| {head} | {LABELS[curve]} | {cells} | {where if i == 0 else ''} |")
    return lines


def plot(groups: dict[tuple, list[dict]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(CURVES), figsize=(4 * len(CURVES), 3.6))
    for key, runs in sorted(groups.items()):
        label = f"{key[3]} {key[4]} [{key[5]}] ({key[1]}<={key[2]:g})"
        for ax, curve in zip(axes, CURVES):
            length = min(len(e["training"]["timesteps"]) for e in runs)
            x = runs[0]["training"]["timesteps"][:length]
            y = np.nanmean([e["training"][curve][:length] for e in runs], axis=0)
            if not np.all(np.isnan(y)):
                ax.plot(x, y, ".-", label=label)
    for ax, curve in zip(axes, CURVES):
        ax.set_title(f"{LABELS[curve]} (mean over seeds)")
        ax.set_xlabel("timesteps")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    groups = runs_by_agent(read_board(*args.results))
    if not groups:
        print("no entry with training curves (entries record them since issue 16)", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = " ".join(
        ["python", "benchmarks/learning_curves.py", *(argv if argv is not None else sys.argv[1:])]
    )
    lines = [
        "# Learning curves by quarter of training",
        "",
        f"`{command}`",
        "",
        "Per rollout: mean validation accuracy (the reward) and cost of its finished episodes, the share "
        "within the budget, the Lagrange multiplier, the policy's entropy on its observations; here "
        "the mean over each quarter of training, then over seeds. Under a per-episode fine-tune "
        "schedule the accuracy of the first part is scored with fewer fine-tune steps. "
        "'selected from': where each seed's chosen mask came from (train: a training episode; "
        "deterministic / sampled: the final policy).",
        "",
        *table(groups),
        "",
        "![curves](curves.png)",
    ]
    (out / "CURVES.md").write_text("\n".join(lines) + "\n")
    plot(groups, out / "curves.png")
    print(f"wrote {out / 'CURVES.md'} ({len(groups)} agents)")
    return 0


if __name__ == "__main__":
    run_script(main)
