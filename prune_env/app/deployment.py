"""Stage 4b of the pipeline: the network as it is deployed.

The pruned network is exported to ONNX once; those same bytes are checked against PyTorch on
the test images (largest logit difference within ``prune_env.deploy.onnx_runtime.PARITY_TOLERANCE``,
predicted classes agreeing), timed in ONNX Runtime on the CPU next to the dense network's graph,
and written as ``pruned_model.onnx``. Without the ``onnx`` extra the run still finishes and says
what was skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from prune_env.deploy.onnx_runtime import onnx_bytes, ort_latency, ort_session, parity
from prune_env.errors import MissingDependencyError

LATENCY_REPEATS = 30


@dataclass
class Deployment:
    """The exported graph (``None`` if export failed) and what was measured on it."""

    graph: bytes | None
    metrics: dict


def check_deployment(
    dense: nn.Module, pruned: nn.Module, test_inputs: torch.Tensor, latency_batch: int
) -> Deployment:
    """Export ``pruned``, check it in ONNX Runtime on ``test_inputs`` and time both networks there
    on a batch of ``latency_batch`` (the first test image repeated, as PyTorch's latency)."""
    example = test_inputs[:1].cpu()
    try:
        graph = onnx_bytes(pruned, example)
    except MissingDependencyError as exc:
        return Deployment(None, {"skipped": str(exc)})
    except Exception as exc:  # an optional output: report it, don't lose the run
        return Deployment(None, {"error": f"ONNX export failed: {type(exc).__name__}: {exc}"})
    try:
        session = ort_session(graph)
    except MissingDependencyError as exc:
        return Deployment(graph, {"skipped": str(exc)})
    batch = example.repeat(latency_batch, *([1] * (example.dim() - 1)))
    dense_session = ort_session(onnx_bytes(dense, example))
    return Deployment(
        graph,
        {
            "parity": parity(pruned, session, test_inputs),
            "latency_batch": latency_batch,
            "threads": torch.get_num_threads(),
            "dense_latency_ms": 1000 * ort_latency(dense_session, batch, repeats=LATENCY_REPEATS),
            "pruned_latency_ms": 1000 * ort_latency(session, batch, repeats=LATENCY_REPEATS),
        },
    )


def deployment_summary(ort: dict) -> str:
    """One line of ``report.md`` about the ONNX graph in ONNX Runtime."""
    if "parity" not in ort:
        return f"ONNX Runtime: not checked ({ort.get('skipped') or ort.get('error')})."
    p = ort["parity"]
    verdict = "matches PyTorch" if p["matches"] else "DOES NOT MATCH PyTorch"
    return (
        f"ONNX Runtime (CPU, {ort['threads']} thread(s)): `pruned_model.onnx` {verdict} on {p['inputs']:,} test "
        f"images (largest logit difference {p['max_abs_diff']:.1e}, tolerance {p['tolerance']:.0e}; "
        f"{p['argmax_agreement']:.2%} same predicted class); latency at batch {ort['latency_batch']} "
        f"{ort['dense_latency_ms']:.3f} ms dense -> {ort['pruned_latency_ms']:.3f} ms pruned "
        f"({ort['dense_latency_ms'] / ort['pruned_latency_ms']:.2f}x)."
    )
