"""What a person looks at after a pruning run: the report table and PNG plots."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

from prune_env.app.deployment import deployment_summary

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt  # noqa: E402


def plot_training(log, path: Path, budget_name: str, limit: float) -> None:
    """Reward (validation accuracy), cost and Lagrange multiplier per rollout."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    x = log.timesteps
    axes[0].plot(x, log.reward, ".-", color="tab:blue")
    axes[0].set_title("reward: validation accuracy")
    axes[1].plot(x, log.cost, ".-", color="tab:red", label="mean episode cost")
    axes[1].axhline(limit, color="black", linestyle="--", label=f"limit {limit:g}")
    axes[1].set_title(f"cost: {budget_name}")
    axes[1].legend(loc="best", fontsize=8)
    multipliers = [m for m in log.multiplier if not math.isnan(m)]
    if multipliers:
        axes[2].plot(x, log.multiplier, ".-", color="tab:green")
        axes[2].set_title("Lagrange multiplier")
    else:
        axes[2].plot(x, log.inside_budget, ".-", color="tab:green")
        axes[2].set_title("share of episodes within budget")
    for ax in axes:
        ax.set_xlabel("timesteps")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_widths(names: list[str], dense: list[int], pruned: list[int], path: Path) -> None:
    """Kept width per prunable group, dense against pruned."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 3.8))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], dense, width=0.4, label="dense", color="lightgray")
    ax.bar([x + 0.2 for x in xs], pruned, width=0.4, label="pruned", color="tab:blue")
    ax.set_xticks(list(xs), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("units (channels / neurons)")
    ax.set_title("width per prunable group")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt_int(n: float) -> str:
    return f"{int(n):,}"


def _recipe(m: dict) -> str:
    r = m.get("recovery")
    if r is None:  # runs written before recipes had names
        return ""
    extra = ", augmented" if r["augment"] else ""
    return (f"recipe `{r['name']}` ({r['optimizer']}, lr {r['lr']:g}, weight decay {r['weight_decay']:g}, "
            f"batch {r['batch_size']}, {r['schedule']} schedule{extra}), ")  # fmt: skip


def _distilled(config: dict) -> str:
    if not config.get("distill"):
        return ""
    return (
        f", distilled from the dense network (temperature {config['distill_temperature']:g}, "
        f"weight {config['distill_weight']:g})"
    )


def markdown_report(m: dict) -> str:
    """``report.md`` from the metrics dict written by the pipeline."""
    d, p = m["dense"], m["pruned"]
    rows = [
        ("test accuracy", f"{d['test_accuracy']:.2%}", f"{p['test_accuracy']:.2%}",
         f"{(p['test_accuracy'] - d['test_accuracy']) * 100:+.2f} pts"),
        ("validation accuracy (pruned: before fine-tune)", f"{d['val_accuracy']:.2%}", f"{p['val_accuracy_before_finetune']:.2%}", ""),
        ("parameters", _fmt_int(d["params"]), _fmt_int(p["params"]), f"compression {d['params'] / p['params']:.2f}x"),
        ("FLOPs (MACs, one image)", _fmt_int(d["macs"]), _fmt_int(p["macs"]), f"theoretical speedup {d['macs'] / p['macs']:.2f}x"),
        (f"latency (batch {m['latency_batch']}, {m['device']}, median)", f"{d['latency_ms']:.3f} ms", f"{p['latency_ms']:.3f} ms",
         f"measured speedup {d['latency_ms'] / p['latency_ms']:.2f}x"),
    ]  # fmt: skip
    budget, search = m["budget"], m["search"]
    status = "satisfied" if budget["satisfied"] else "VIOLATED"
    lines = [
        f"# Pruning report: {m['task']}",
        "",
        f"Agent `{m['agent']}`, seed {m['seed']}, {m['timesteps']:,} timesteps, {search['episodes']:,} training episodes, "
        f"wall time {m['wall_seconds']:.0f} s on {m['device']}.",
        "",
        "| | dense | pruned | change |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows],
        f"| budget: {budget['name']} <= {budget['limit']:g} | 1.000 | {budget['value']:.4f} | {status} |",
        f"| agent timesteps / wall time | | {m['timesteps']:,} | {m['wall_seconds']:.0f} s |",
        "",
        f"Fine-tune of the pruned network: {_recipe(m)}{m['finetune_epochs']} epoch(s) on the train split{_distilled(m['config'])}, "
        f"best epoch by validation "
        f"accuracy ({p['val_accuracy_after_finetune']:.2%}). The mask was chosen among "
        f"{search['candidates']} candidate masks ({search['feasible_candidates']} within the budget) by validation "
        f"accuracy on {m['selected']['protocol']['eval_samples']} images after "
        f"{m['selected']['protocol']['finetune_steps']} fine-tune steps.",
        "",
        deployment_summary(m["onnx_runtime"]) if "onnx_runtime" in m else "",
        "",
        "| group | dense width | kept |",
        "|---|---|---|",
        *[f"| {g} | {dw} | {kw} |" for g, dw, kw in zip(m["groups"], m["dense_widths"], m["pruned_widths"])],
        "",
        "![training curves](training_curves.png)",
        "",
        "![widths](widths.png)",
        "",
        f"Checkpoint sha256 `{m['checkpoint_sha256']}`; masks in `masks.json`; re-check with "
        f"`prune-env evaluate {m['out']}`.",
        "",
    ]
    return "\n".join(lines)
