"""Classic, non-RL pruning baselines that meet the same budget through the same environment.

Every baseline returns a :class:`~prune_env.app.selection.Selection`, as the agents' search
does: the chosen :class:`~prune_env.ScoredMask` (from ``env.evaluate_masks``, so budgets and
accuracy are measured exactly as for agents) and the accuracy evaluations it spent.

- :func:`uniform_l1`: one keep ratio for every group (largest-L1 units), the largest ratio whose
  network meets the budget, found by bisection (the paper's authors' baseline, and ShrinkBench's
  "layerwise magnitude").
- :func:`global_l1`: units ranked across all groups by their L1 magnitude, normalized by the
  mean of their group (raw magnitudes are not comparable between layers of different fan-in);
  the largest kept share that meets the budget, by bisection (ShrinkBench's "global magnitude").
- :func:`random_search`: random keep ratios per group with random units, ``evaluations``
  times; the most accurate feasible one (matches an RL agent's evaluation count).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from prune_env.app.selection import Selection, best_feasible
from prune_env.env import PruneEnv
from prune_env.scored import ScoredMask


def _top_units(scores: np.ndarray, count: int) -> np.ndarray:
    keep = np.zeros(len(scores), dtype=bool)
    keep[np.argsort(-scores, kind="stable")[: max(1, count)]] = True
    return keep


def _uniform_keep(env: PruneEnv, ratio: float) -> list[np.ndarray]:
    return [_top_units(env.importance[g.index], int(round(ratio * g.width))) for g in env.groups]


def _global_keep(env: PruneEnv, share: float) -> list[np.ndarray]:
    normalized = [env.importance[g.index] / max(env.importance[g.index].mean(), 1e-12) for g in env.groups]
    everything = np.concatenate(normalized)
    count = int(round(share * everything.size))
    threshold = np.sort(everything)[::-1][max(count, 1) - 1]
    keep = []
    for scores in normalized:
        kept = scores >= threshold
        if not kept.any():
            kept = _top_units(scores, 1)
        keep.append(kept)
    return keep


def _bisect(env: PruneEnv, make_keep, steps: int, name: str) -> Selection:
    """Largest x in (0, 1] whose ``make_keep(x)`` meets every budget; costs are monotone in x."""
    tried: list[ScoredMask] = []

    def score(x: float) -> ScoredMask:
        tried.append(env.evaluate_masks(make_keep(x), source=name))
        return tried[-1]

    best = score(1.0)
    if not best.satisfied:
        best = None
        low, high = 0.0, 1.0
        for _ in range(steps):
            mid = (low + high) / 2
            record = score(mid)
            if record.satisfied:
                low, best = mid, record
            else:
                high = mid
        if best is None:  # even the smallest tried network is over budget: try the minimum
            best = score(0.0)
    return _selection(best, tried)


def _selection(chosen: ScoredMask, tried: list[ScoredMask]) -> Selection:
    return Selection(chosen, len(tried), len(tried), sum(r.satisfied for r in tried))


def uniform_l1(env: PruneEnv, *, steps: int = 12) -> Selection:
    """One keep ratio for every group, the largest that meets the budget."""
    return _bisect(env, lambda ratio: _uniform_keep(env, ratio), steps, "uniform-l1")


def global_l1(env: PruneEnv, *, steps: int = 12) -> Selection:
    """Globally ranked (group-normalized) L1 magnitude, the largest kept share within budget."""
    return _bisect(env, lambda share: _global_keep(env, share), steps, "global-l1")


def random_search(env: PruneEnv, *, evaluations: int, seed: int = 0) -> Selection:
    """The most accurate feasible of ``evaluations`` random masks (else the cheapest one)."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    rng = np.random.default_rng(seed)
    tried: list[ScoredMask] = []
    for _ in range(evaluations):
        keep = []
        for g in env.groups:
            kept = rng.random(g.width) < rng.uniform(0.02, 1.0)
            if not kept.any():
                kept[rng.integers(g.width)] = True
            keep.append(kept)
        tried.append(env.evaluate_masks(keep, source="random-search"))
    chosen = best_feasible(tried) or min(tried, key=lambda r: r.cost)
    return _selection(chosen, tried)


BASELINES: dict[str, Callable[..., Selection]] = {
    "uniform-l1": lambda env, evaluations, seed: uniform_l1(env),
    "global-l1": lambda env, evaluations, seed: global_l1(env),
    "random-search": lambda env, evaluations, seed: random_search(env, evaluations=evaluations, seed=seed),
}


def run_baseline_search(env: PruneEnv, method: str, *, evaluations: int = 0, seed: int = 0) -> Selection:
    """The named baseline on ``env`` (``evaluations``: random search's budget of evaluations)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; known: {', '.join(BASELINES)}")
    return BASELINES[method](env, evaluations, seed)
