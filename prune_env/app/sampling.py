"""Random masks in the agents' action space that fit the budget.

A candidate is one keep-ratio per group, keeping each group's largest-L1 units, exactly what a
ratio-mode agent chooses. Sampled ratios are scaled by one common factor (each capped at 1) to
the largest that the analytic estimate of the first budget allows (AMC's way of keeping every
episode within the budget, He et al., ECCV 2018), so that searches spend their evaluations on
feasible candidates that use the budget instead of wasting it.
The estimate is exact for parameters, and for FLOPs on sequential and residual networks; for
latency and callable budgets it is the FLOPs ratio, so a scaled candidate can still be over
budget when it is scored; scoring always measures the real cost.
"""

from __future__ import annotations

import numpy as np

from prune_env.bisection import largest_fitting_ratio
from prune_env.problem import PruneProblem

MIN_RATIO = 0.02  # smallest sampled keep-ratio (a group keeps at least one unit anyway)


def fits(problem: PruneProblem, ratios: np.ndarray) -> bool:
    """Whether the estimated first budget of these ratios is within its limit."""
    return problem.fits_estimate(problem.keep_from_ratios(ratios))


def scale_to_budget(problem: PruneProblem, ratios: np.ndarray, steps: int = 30) -> np.ndarray:
    """``min(1, s * ratios)`` with the largest common factor ``s`` that fits, by bisection
    (costs only grow with ``s``). All ones when the dense network fits."""
    ratios = np.clip(np.asarray(ratios, dtype=np.float64), 1e-6, 1.0)

    def scaled(s: float) -> np.ndarray:
        return np.minimum(1.0, s * ratios)

    # upper: every ratio capped at 1, the dense network
    s = largest_fitting_ratio(lambda s: fits(problem, scaled(s)), steps=steps, upper=1.0 / ratios.min())
    return scaled(s)


def sample_ratios(problem: PruneProblem, rng: np.random.Generator) -> np.ndarray:
    """One keep-ratio per group, uniform in [MIN_RATIO, 1], scaled to fit the budget."""
    return scale_to_budget(problem, rng.uniform(MIN_RATIO, 1.0, problem.num_groups))
