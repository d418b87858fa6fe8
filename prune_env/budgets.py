"""Budget functions: the cost signal of the pruning CMDP.

A budget is a black box over the *physically pruned* network. The built-ins report pruned /
dense ratios (so a limit of 0.1 means "at most 10% of the dense network's parameters");
a user callable ``f(pruned_model) -> float`` is used as it is. Values depend only on the kept
widths, so :class:`BudgetCache` computes each width vector once.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence

import torch
import torch_pruning as tp
from torch import nn

from prune_env.deploy.onnx_runtime import onnx_bytes, ort_latency, ort_session
from prune_env.errors import BudgetError
from prune_env.surgery.layers import call_model, single_example


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example_inputs) -> float:
    """Multiply-accumulates of one forward pass on ``example_inputs`` (Torch-Pruning's counter)."""
    macs, _ = tp.utils.count_ops_and_params(model, example_inputs)
    return float(macs)


def measure_latency(model: nn.Module, inputs, *, warmup: int = 3, repeats: int = 15) -> float:
    """Median seconds of one forward pass; CUDA events on a GPU, a wall clock elsewhere."""
    model.eval()
    first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
    on_cuda = first.is_cuda
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            call_model(model, inputs)
        for _ in range(repeats):
            if on_cuda:
                start, end = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
                start.record()
                call_model(model, inputs)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1000.0)
            else:
                t0 = time.perf_counter()
                call_model(model, inputs)
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Budget:
    """A cost over the pruned network. ``relative`` budgets report pruned / dense ratios."""

    name = "budget"
    relative = True

    def bind(self, dense: nn.Module, example_inputs) -> None:
        """Measure whatever reference the budget needs from the dense network."""

    def measure(self, pruned: nn.Module) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Params(Budget):
    """Parameters kept, as a fraction of the dense network's."""

    name = "params"

    def bind(self, dense, example_inputs):
        self._dense = count_params(dense)

    def measure(self, pruned):
        return count_params(pruned) / self._dense


class Flops(Budget):
    """Multiply-accumulates of one forward pass, as a fraction of the dense network's."""

    name = "flops"

    def bind(self, dense, example_inputs):
        self._inputs = single_example(example_inputs)  # MACs of one example, whatever the batch
        self._dense = count_macs(dense, self._inputs)

    def measure(self, pruned):
        return count_macs(pruned, self._inputs) / self._dense


class Latency(Budget):
    """Median forward latency on the env's device, as a fraction of the dense network's.

    Args:
        batch_size: rows of the timed batch (taken by repeating the example inputs).
        repeats: timed runs; the median is reported.
    """

    name = "latency"

    def __init__(self, batch_size: int = 64, repeats: int = 15, warmup: int = 3):
        if batch_size < 1 or repeats < 1 or warmup < 0:
            raise BudgetError("Latency needs batch_size >= 1, repeats >= 1 and warmup >= 0")
        self.batch_size, self.repeats, self.warmup = int(batch_size), int(repeats), int(warmup)

    def bind(self, dense, example_inputs):
        first = example_inputs[0] if isinstance(example_inputs, (tuple, list)) else example_inputs
        reps = math.ceil(self.batch_size / first.shape[0])
        self._inputs = first.repeat(reps, *([1] * (first.dim() - 1)))[: self.batch_size]
        self._dense = self._time(dense)

    def _time(self, model):
        return measure_latency(model, self._inputs, warmup=self.warmup, repeats=self.repeats)

    def measure(self, pruned):
        return self._time(pruned) / self._dense

    def __repr__(self):
        return f"Latency(batch_size={self.batch_size}, repeats={self.repeats})"


class OrtLatency(Latency):
    """Median latency of the exported ONNX graph in ONNX Runtime on the CPU (the network as it is
    deployed), as a fraction of the dense network's. Needs the ``onnx`` extra. Each kept-width
    vector is exported and timed once (:class:`BudgetCache`)."""

    name = "ort-latency"

    def bind(self, dense, example_inputs):
        if isinstance(example_inputs, (tuple, list)):
            raise BudgetError("the ort-latency budget supports models with one input tensor")
        super().bind(dense, example_inputs)

    def _time(self, model):
        session = ort_session(onnx_bytes(model, self._inputs[:1]))
        return ort_latency(session, self._inputs, warmup=self.warmup, repeats=self.repeats)

    def __repr__(self):
        return f"OrtLatency(batch_size={self.batch_size}, repeats={self.repeats})"


class CallableBudget(Budget):
    """A user's black box ``f(pruned_model) -> float``; its value is used as it is."""

    relative = False

    def __init__(self, fn: Callable[[nn.Module], float], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def measure(self, pruned):
        return _finite_float(self.fn(pruned), f"the value returned by budget {self.name!r}")

    def __repr__(self):
        return f"CallableBudget({self.name})"


def _finite_float(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise BudgetError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(value):
        raise BudgetError(f"{what} must be finite, got {value}")
    return value


BUILTIN_BUDGETS = {"params": Params, "flops": Flops, "latency": Latency, "ort-latency": OrtLatency}


def make_budget(spec) -> Budget:
    """A budget from a name (``"params"``, ``"flops"``, ``"latency"``, ``"ort-latency"``), a
    Budget or a callable."""
    if isinstance(spec, Budget):
        return spec
    if isinstance(spec, str):
        if spec not in BUILTIN_BUDGETS:
            raise BudgetError(
                f"unknown budget {spec!r}; expected one of {sorted(BUILTIN_BUDGETS)}, a Budget or a callable"
            )
        return BUILTIN_BUDGETS[spec]()
    if callable(spec):
        return CallableBudget(spec)
    raise BudgetError(f"a budget must be a name, a Budget or a callable, got {type(spec).__name__}")


def make_budget_list(spec) -> list[Budget]:
    """The ``budget`` argument (one budget or a list) as a list of budgets."""
    specs = list(spec) if isinstance(spec, (list, tuple)) else [spec]
    if not specs:
        raise BudgetError("budget must name at least one budget")
    return [make_budget(s) for s in specs]


def make_budgets(spec, limit) -> tuple[list[Budget], list[float]]:
    """Normalize ``budget`` / ``budget_limit`` arguments to two lists of equal length."""
    budgets = make_budget_list(spec)
    limits = list(limit) if isinstance(limit, (list, tuple)) else [limit]
    if len(limits) != len(budgets):
        raise BudgetError(
            f"got {len(budgets)} budget(s) but {len(limits)} budget_limit value(s); give one limit per budget"
        )
    checked = []
    for budget, value in zip(budgets, limits):
        value = _finite_float(value, f"budget_limit for {budget.name!r}")
        if budget.relative and not 0.0 < value <= 1.0:
            raise BudgetError(
                f"budget_limit for {budget.name!r} is a pruned/dense ratio and must be in (0, 1], got {value}"
            )
        checked.append(value)
    return budgets, checked


class BudgetCache:
    """Budget values by kept-width vector: each architecture is measured once."""

    def __init__(self, budgets: Sequence[Budget]):
        self.budgets = list(budgets)
        self._values: dict[tuple[int, ...], list[float]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, widths: Sequence[int], pruned: nn.Module) -> list[float]:
        key = tuple(int(w) for w in widths)
        if key in self._values:
            self.hits += 1
            return list(self._values[key])
        self.misses += 1
        values = [b.measure(pruned) for b in self.budgets]
        self._values[key] = values
        return list(values)

    def __len__(self) -> int:
        return len(self._values)
