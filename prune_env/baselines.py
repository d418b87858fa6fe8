"""Classic, non-RL pruning baselines that meet the same budget through the same environment.

Every baseline returns a :class:`BaselineResult`: the chosen masks, their final-step ``info``
(from ``env.evaluate_masks``, so budgets and accuracy are measured exactly as for agents) and
the number of accuracy evaluations it spent.

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

from dataclasses import dataclass

import numpy as np

from prune_env.env import PruneEnv


@dataclass
class BaselineResult:
    masks: dict[str, list[int]]
    info: dict
    evaluations: int


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


def _bisect(env: PruneEnv, make_keep, steps: int) -> BaselineResult:
    """Largest x in (0, 1] whose ``make_keep(x)`` meets every budget; costs are monotone in x."""
    evaluations = 0
    best = None
    full = env.evaluate_masks(make_keep(1.0))
    evaluations += 1
    if full["constraint_satisfied"]:
        return BaselineResult(full["masks"], full, evaluations)
    low, high = 0.0, 1.0
    for _ in range(steps):
        mid = (low + high) / 2
        info = env.evaluate_masks(make_keep(mid))
        evaluations += 1
        if info["constraint_satisfied"]:
            low, best = mid, info
        else:
            high = mid
    if best is None:  # even the smallest tried network is over budget: try the minimum
        info = env.evaluate_masks(make_keep(0.0))
        evaluations += 1
        best = info
    return BaselineResult(best["masks"], best, evaluations)


def uniform_l1(env: PruneEnv, *, steps: int = 12) -> BaselineResult:
    """One keep ratio for every group, the largest that meets the budget."""
    return _bisect(env, lambda ratio: _uniform_keep(env, ratio), steps)


def global_l1(env: PruneEnv, *, steps: int = 12) -> BaselineResult:
    """Globally ranked (group-normalized) L1 magnitude, the largest kept share within budget."""
    return _bisect(env, lambda share: _global_keep(env, share), steps)


def random_search(env: PruneEnv, *, evaluations: int, seed: int = 0) -> BaselineResult:
    """The most accurate feasible of ``evaluations`` random masks (else the cheapest one)."""
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")
    rng = np.random.default_rng(seed)
    best, cheapest = None, None
    for _ in range(evaluations):
        keep = []
        for g in env.groups:
            kept = rng.random(g.width) < rng.uniform(0.02, 1.0)
            if not kept.any():
                kept[rng.integers(g.width)] = True
            keep.append(kept)
        info = env.evaluate_masks(keep)
        if info["constraint_satisfied"] and (best is None or info["accuracy"] > best["accuracy"]):
            best = info
        if cheapest is None or info["cost"] < cheapest["cost"]:
            cheapest = info
    chosen = best or cheapest
    return BaselineResult(chosen["masks"], chosen, evaluations)
