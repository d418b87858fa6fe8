"""The one bisection that bounds keep-ratios and scale factors against a budget estimate.

A leaf module: the env (AMC's bound on an action), the wrappers (clipping and scaling actions)
and the searches (scaling a candidate to the budget) all ask the same question, the largest
value for which a monotone check still holds.
"""

from __future__ import annotations

from collections.abc import Callable


def largest_fitting_ratio(fits: Callable[[float], bool], steps: int = 20, upper: float = 1.0) -> float:
    """The largest value in [0, upper] for which ``fits`` holds (it must only fail above some
    point), by bisection: ``upper`` when it fits, else within ``upper * 2**-steps`` below the edge
    (0: nothing fits). A keep-ratio uses the default upper 1; a scale factor its own bound."""
    if fits(upper):
        return upper
    low, high = 0.0, upper
    for _ in range(steps):
        mid = (low + high) / 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low
