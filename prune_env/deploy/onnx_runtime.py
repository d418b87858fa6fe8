"""ONNX export and ONNX Runtime: the network people deploy, checked and timed where it runs.

A pruned network is usually shipped as ONNX, so its speed in PyTorch eager mode is not the
number that matters. Here: export a network to ONNX in memory, open it in ONNX Runtime on the
CPU, check that its outputs match PyTorch's, and time it. ``onnx`` and ``onnxruntime`` are the
optional ``onnx`` extra; ``onnxruntime`` is imported only when one of these functions is called,
so ``import prune_env`` never pays for it.
"""

from __future__ import annotations

import copy
import io
import statistics
import time
import warnings

import numpy as np
import torch
from torch import nn

from prune_env.errors import MissingDependencyError

# Largest |ONNX Runtime - PyTorch| on any logit that still counts as the same network. Both run
# float32; kernels differ in summation order, so exact equality is not expected (measured on
# the shipped tasks: below 1e-5 for the networks they export).
PARITY_TOLERANCE = 1e-4


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(
            "ONNX Runtime is not installed: pip install 'prune-env[onnx]' (onnx and onnxruntime)"
        ) from exc
    return onnxruntime


def onnx_bytes(model: nn.Module, example: torch.Tensor) -> bytes:
    """``model`` as an ONNX graph (TorchScript exporter, batch dimension dynamic), on the CPU.
    The model is exported from a CPU copy; the original is left where it was."""
    buffer = io.BytesIO()
    cpu = model if next(model.parameters()).device.type == "cpu" else copy.deepcopy(model).cpu()
    try:
        with warnings.catch_warnings():  # the TorchScript exporter on purpose: it needs no onnxscript
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                cpu.eval(), example.cpu(), buffer, input_names=["input"], output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
            )  # fmt: skip
    except ImportError as exc:  # torch's exporter needs the onnx package
        raise MissingDependencyError(
            f"ONNX export needs the onnx package: pip install 'prune-env[onnx]' ({exc})"
        ) from exc
    return buffer.getvalue()


def ort_session(graph: bytes, threads: int | None = None):
    """An ONNX Runtime CPU session on ``graph`` with ``threads`` intra-op threads (default:
    PyTorch's thread count, so the two runtimes are timed on the same cores)."""
    ort = _onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def ort_run(session, inputs: torch.Tensor) -> np.ndarray:
    return session.run(None, {"input": inputs.detach().cpu().numpy()})[0]


def ort_latency(session, inputs: torch.Tensor, *, warmup: int = 3, repeats: int = 15) -> float:
    """Median seconds of one ONNX Runtime run on ``inputs`` (wall clock)."""
    feed = {"input": inputs.detach().cpu().numpy()}
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parity(model: nn.Module, session, inputs: torch.Tensor, batch_size: int = 500) -> dict:
    """How far ONNX Runtime's logits are from PyTorch's on ``inputs``: the largest absolute
    difference, whether it is within :data:`PARITY_TOLERANCE`, and the share of inputs whose
    predicted class agrees."""
    model = model.eval()
    device = next(model.parameters()).device
    worst, agree = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            expected = model(batch.to(device)).float().cpu().numpy()
            got = ort_run(session, batch)
            worst = max(worst, float(np.abs(got - expected).max()))
            agree += int((got.argmax(1) == expected.argmax(1)).sum())
    return {
        "max_abs_diff": worst,
        "tolerance": PARITY_TOLERANCE,
        "matches": worst <= PARITY_TOLERANCE,
        "argmax_agreement": agree / max(len(inputs), 1),
        "inputs": len(inputs),
    }
