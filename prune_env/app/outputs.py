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

from prune_env.app.report import markdown_report, plot_widths


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> str | None:
    """ONNX export (TorchScript exporter); returns an error note instead of failing the run."""
    try:
        torch.onnx.export(model.cpu().eval(), example.cpu(), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)  # fmt: skip
        return None
    except Exception as exc:  # optional output: report, don't lose the run
        return f"{type(exc).__name__}: {exc}"


def masks_document(metrics: dict) -> dict:
    """``masks.json``: what was pruned (the scored record) and from what (task, checkpoint)."""
    provenance = {k: metrics[k] for k in ("task", "checkpoint_sha256", "seed", "agent")}
    budget = {"budget": metrics["budget"]["name"], "limit": metrics["budget"]["limit"]}
    return {**provenance, **budget, **metrics["selected"]}


def write_run(out: Path, pruned: nn.Module, example: torch.Tensor, metrics: dict) -> None:
    """Write every output of a finished run into ``out`` (which exists and is writable).
    Adds ``metrics["onnx"]``: the ONNX file's name, or why it was not exported."""
    torch.save(pruned.state_dict(), out / "pruned_state_dict.pt")
    torch.save(pruned, out / "pruned_model.pt")
    onnx_error = export_onnx(pruned, example, out / "pruned_model.onnx")
    metrics["onnx"] = "pruned_model.onnx" if onnx_error is None else f"not exported: {onnx_error}"
    (out / "masks.json").write_text(json.dumps(masks_document(metrics), indent=1) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_widths(metrics["groups"], metrics["dense_widths"], metrics["pruned_widths"], out / "widths.png")
    (out / "report.md").write_text(markdown_report(metrics))
