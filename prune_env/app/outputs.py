"""Stage 5 of the pipeline: everything a run leaves in its output directory.

``pruned_state_dict.pt`` and ``pruned_model.pt`` (the smaller network), ``pruned_model.onnx``,
``masks.json`` (the chosen :class:`~prune_env.ScoredMask` with the run's provenance),
``metrics.json``, ``report.md`` and ``widths.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from prune_env.app.deployment import Deployment
from prune_env.app.report import markdown_report, plot_widths


def masks_document(metrics: dict) -> dict:
    """``masks.json``: what was pruned (the scored record) and from what (task, checkpoint)."""
    provenance = {k: metrics[k] for k in ("task", "checkpoint_sha256", "seed", "agent")}
    budget = {"budget": metrics["budget"]["name"], "limit": metrics["budget"]["limit"]}
    return {**provenance, **budget, **metrics["selected"]}


def write_run(out: Path, pruned: nn.Module, deployment: Deployment, metrics: dict) -> None:
    """Write every output of a finished run into ``out`` (which exists and is writable).
    Adds ``metrics["onnx"]``: the ONNX file's name, or why it was not exported."""
    torch.save(pruned.state_dict(), out / "pruned_state_dict.pt")
    torch.save(pruned, out / "pruned_model.pt")
    if deployment.graph is not None:
        (out / "pruned_model.onnx").write_bytes(deployment.graph)
        metrics["onnx"] = "pruned_model.onnx"
    else:
        metrics["onnx"] = (
            f"not exported: {deployment.metrics.get('skipped') or deployment.metrics.get('error')}"
        )
    (out / "masks.json").write_text(json.dumps(masks_document(metrics), indent=1) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_widths(metrics["groups"], metrics["dense_widths"], metrics["pruned_widths"], out / "widths.png")
    (out / "report.md").write_text(markdown_report(metrics))
