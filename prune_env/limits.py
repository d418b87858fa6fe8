"""Budget limits drawn per episode: a fixed value, a range or a list, one per budget.

A policy meant to answer any budget is trained over a distribution of them. ``budget_limit``
may therefore be, for one budget, a number (fixed), a ``(low, high)`` tuple (drawn uniformly),
a list of numbers (one drawn), or the JSON forms ``{"low": a, "high": b}`` and
``{"choices": [...]}``; with several budgets, a list with one such form per budget. A fixed
limit draws nothing, so environments with fixed limits consume exactly the random numbers
they always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from prune_env.budgets import Budget, make_budgets
from prune_env.errors import BudgetError


@dataclass(frozen=True)
class LimitDistribution:
    """One budget's limit: ``choices`` (one value: fixed) or a uniform ``low``..``high`` range."""

    low: float
    high: float
    choices: tuple[float, ...] = ()

    @property
    def fixed(self) -> bool:
        return len(self.choices) == 1

    def draw(self, rng: np.random.Generator) -> float:
        if self.fixed:
            return self.choices[0]
        if self.choices:
            return float(self.choices[int(rng.integers(len(self.choices)))])
        # the arithmetic of Generator.uniform (the same draws, bitwise), without its overhead
        return self.low + (self.high - self.low) * rng.random()

    def contains(self, value: float) -> bool:
        """Whether ``value`` can be drawn (a held-out limit is one that cannot)."""
        if self.choices:
            return any(abs(value - c) <= 1e-9 for c in self.choices)
        return self.low - 1e-9 <= value <= self.high + 1e-9

    def to_json(self) -> float | dict:
        if self.fixed:
            return self.choices[0]
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high}


def _one(spec, budget: Budget) -> LimitDistribution:
    """One budget's form, each value checked as a fixed ``budget_limit`` is."""

    def check(value) -> float:
        return make_budgets(budget, value)[1][0]

    if isinstance(spec, Mapping):
        if set(spec) == {"low", "high"}:
            spec = (spec["low"], spec["high"])
        elif set(spec) == {"choices"}:
            spec = list(spec["choices"])
        else:
            raise BudgetError(
                f"a budget_limit mapping is {{'low': a, 'high': b}} or {{'choices': [...]}}, got keys {sorted(spec)}"
            )
    if isinstance(spec, tuple):
        if len(spec) != 2:
            raise BudgetError(f"a budget_limit range is (low, high), got {len(spec)} values: {spec!r}")
        low, high = check(spec[0]), check(spec[1])
        if not low < high:
            raise BudgetError(f"a budget_limit range needs low < high, got ({low}, {high})")
        return LimitDistribution(low, high)
    if isinstance(spec, list):
        if not spec:
            raise BudgetError("a budget_limit list needs at least one value")
        values = tuple(check(v) for v in spec)
        return LimitDistribution(min(values), max(values), values)
    value = check(spec)
    return LimitDistribution(value, value, (value,))


def parse_limits(budgets: Sequence[Budget], spec) -> list[LimitDistribution]:
    """One :class:`LimitDistribution` per budget from a ``budget_limit`` argument.

    Raises:
        BudgetError: a value out of its budget's range, a range with low >= high, an empty
            list, or (with several budgets) not one form per budget.
    """
    if len(budgets) == 1:
        return [_one(spec, budgets[0])]
    if not isinstance(spec, (list, tuple)) or len(spec) != len(budgets):
        raise BudgetError(
            f"got {len(budgets)} budgets: give budget_limit as a list with one limit per budget (a number, a "
            f"(low, high) range or a list of values), got {spec!r}"
        )
    return [_one(s, b) for s, b in zip(spec, budgets)]


def parse_limit_text(text: str) -> float | tuple[float, float] | list[float]:
    """The command line's form: ``0.1`` (fixed), ``0.05:0.3`` (a range), ``0.1,0.2`` (a list)."""
    try:
        if ":" in text:
            low, high = text.split(":")
            return (float(low), float(high))
        if "," in text:
            return [float(v) for v in text.split(",")]
        return float(text)
    except ValueError as exc:
        raise BudgetError(f"a limit is 0.1, LOW:HIGH or A,B,C; got {text!r}") from exc
