"""Classic, non-RL pruning baselines that meet the same budget through the same problem.

Every baseline returns a :class:`~prune_env.app.selection.Selection`, as the agents' search
does: the chosen :class:`~prune_env.ScoredMask` (from ``PruneProblem.score``, so budgets and
accuracy are measured under the problem's scoring protocol, exactly as for agents) and the accuracy
evaluations it spent.

One-shot criteria, each the largest network within the budget by bisection:

- ``uniform-l1``: one keep ratio for every group (largest-L1 units; the paper's authors'
  baseline, ShrinkBench's "layerwise magnitude").
- ``global-l1``: one threshold on L1 magnitudes (ShrinkBench's "global magnitude").
- ``taylor``: one threshold on group Taylor scores (Molchanov et al., CVPR 2019).
- ``bn-scale``: one threshold on BatchNorm |gamma| (network slimming); groups without BatchNorm
  keep the same share of their units, by L1.

The three global criteria divide each group's scores by the group's mean, as Torch-Pruning's
importance classes do by default: raw scores, compared across layers in one shot, empty whole
layers (measured on fashion-mnist-cnn at params <= 0.1: raw Taylor kept 1 of the 128 fc units,
raw |gamma| kept 1 channel in four of the five convolutions).

Searches that spend an RL agent's number of evaluations (:data:`MATCHED`), over the agents'
action space (one keep-ratio per group, scaled to the budget, :mod:`prune_env.app.sampling`):

- ``random-search``: independent random candidates.
- ``evolution``: regularized (aging) evolution, Real et al. (AAAI 2019).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from prune_env.app.importance import bn_scale_importance, taylor_importance
from prune_env.app.sampling import MIN_RATIO, sample_ratios, scale_to_budget
from prune_env.app.selection import Selection, best_feasible
from prune_env.problem import PruneProblem
from prune_env.scored import ScoredMask

BISECTION_STEPS = 12
MATCHED = ("random-search", "evolution")  # spend as many evaluations as the cell's RL agent


def _by_group_mean(scores: list[np.ndarray | None]) -> list[np.ndarray | None]:
    return [None if s is None else s / max(float(s.mean()), 1e-30) for s in scores]


def _global_keep(problem: PruneProblem, scores: list[np.ndarray | None], share: float) -> list[np.ndarray]:
    """Keep the top ``share`` of all scored units under one threshold (at least one unit per
    group); a group without scores keeps ``share`` of its units by L1."""
    everything = np.concatenate([s for s in scores if s is not None])
    threshold = np.sort(everything)[::-1][max(int(round(share * everything.size)), 1) - 1]
    by_l1 = problem.keep_from_ratios([share] * problem.num_groups)
    keep = []
    for group, group_scores in zip(problem.groups, scores):
        if group_scores is None:
            keep.append(by_l1[group.index])
            continue
        kept = group_scores >= threshold
        if not kept.any():
            kept[int(np.argmax(group_scores))] = True
        keep.append(kept)
    return keep


def _bisect(problem: PruneProblem, make_keep: Callable[[float], list[np.ndarray]], name: str) -> Selection:
    """Largest x in (0, 1] whose ``make_keep(x)`` meets every budget; costs are monotone in x."""
    tried: list[ScoredMask] = []

    def score(x: float) -> ScoredMask:
        tried.append(problem.score(make_keep(x), source=name))
        return tried[-1]

    best = score(1.0)
    if not best.satisfied:
        best = None
        low, high = 0.0, 1.0
        for _ in range(BISECTION_STEPS):
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
    return Selection(chosen, len(tried), len(tried), sum(r.satisfied for r in tried), history=tuple(tried))


def uniform_l1(problem: PruneProblem) -> Selection:
    """One keep ratio for every group, the largest that meets the budget."""
    return _bisect(
        problem, lambda ratio: problem.keep_from_ratios([ratio] * problem.num_groups), "uniform-l1"
    )


def global_l1(problem: PruneProblem) -> Selection:
    """Globally ranked (group-normalized) L1 magnitude, the largest kept share within budget."""
    scores = _by_group_mean(problem.importance)
    return _bisect(problem, lambda share: _global_keep(problem, scores, share), "global-l1")


def taylor(problem: PruneProblem, *, seed: int = 0) -> Selection:
    """Globally ranked group Taylor scores, the largest kept share within budget."""
    scores = _by_group_mean(taylor_importance(problem, seed=seed))
    return _bisect(problem, lambda share: _global_keep(problem, scores, share), "taylor")


def bn_scale(problem: PruneProblem) -> Selection:
    """Globally ranked BatchNorm |gamma|, the largest kept share within budget."""
    scores = _by_group_mean(bn_scale_importance(problem))
    return _bisect(problem, lambda share: _global_keep(problem, scores, share), "bn-scale")


def _check_evaluations(evaluations: int) -> None:
    if evaluations < 1:
        raise ValueError(f"evaluations must be >= 1, got {evaluations}")


def random_search(problem: PruneProblem, *, evaluations: int, seed: int = 0) -> Selection:
    """The most accurate feasible of ``evaluations`` random candidates, else the cheapest one."""
    _check_evaluations(evaluations)
    rng = np.random.default_rng(seed)
    tried = [
        problem.score_ratios(sample_ratios(problem, rng), source="random-search") for _ in range(evaluations)
    ]
    return _selection(best_feasible(tried) or min(tried, key=lambda r: r.cost), tried)


def _fitness(record: ScoredMask) -> float:
    """Accuracy within the budget; below every feasible candidate when over it."""
    return record.accuracy if record.satisfied else record.accuracy - 2.0


def evolution(
    problem: PruneProblem,
    *,
    evaluations: int,
    seed: int = 0,
    population: int = 16,
    sample: int = 4,
    sigma: float = 0.5,
) -> Selection:
    """Regularized evolution over keep-ratio vectors: a population of random candidates; each
    cycle, the fittest of ``sample`` random members is the parent, its child changes one group's
    ratio by a log-normal factor (``sigma``) and is scaled to the budget, and the oldest member
    dies. Spends exactly ``evaluations`` scores; returns the most accurate feasible one."""
    _check_evaluations(evaluations)
    rng = np.random.default_rng(seed)
    members: deque[tuple[np.ndarray, ScoredMask]] = deque()
    tried: list[ScoredMask] = []
    for step in range(evaluations):
        if step < population:
            ratios = sample_ratios(problem, rng)
        else:
            contenders = rng.choice(len(members), size=min(sample, len(members)), replace=False)
            parent = max((members[i] for i in contenders), key=lambda m: _fitness(m[1]))[0]
            ratios = parent.copy()
            group = rng.integers(problem.num_groups)
            ratios[group] = np.clip(ratios[group] * np.exp(sigma * rng.normal()), MIN_RATIO, 1.0)
            ratios = scale_to_budget(problem, ratios)
        record = problem.score_ratios(ratios, source="evolution")
        tried.append(record)
        members.append((ratios, record))
        if len(members) > population:
            members.popleft()  # aging: the oldest dies, however fit
    return _selection(best_feasible(tried) or min(tried, key=lambda r: r.cost), tried)


BASELINES: dict[str, Callable[..., Selection]] = {
    "uniform-l1": lambda problem, evaluations, seed: uniform_l1(problem),
    "global-l1": lambda problem, evaluations, seed: global_l1(problem),
    "taylor": lambda problem, evaluations, seed: taylor(problem, seed=seed),
    "bn-scale": lambda problem, evaluations, seed: bn_scale(problem),
    "random-search": lambda problem, evaluations, seed: random_search(
        problem, evaluations=evaluations, seed=seed
    ),
    "evolution": lambda problem, evaluations, seed: evolution(problem, evaluations=evaluations, seed=seed),
}


# kind and a line per searcher, for `prune-env agents` (BASELINES is the registry itself)
SEARCHER_INFO: dict[str, tuple[str, str]] = {
    "uniform-l1": ("criterion", "one keep ratio for every group, largest-L1 units, bisected to the budget"),
    "global-l1": (
        "criterion",
        "one threshold on group-normalized L1 magnitudes (ShrinkBench's global magnitude)",
    ),
    "taylor": ("criterion", "one threshold on group Taylor scores (Molchanov et al., CVPR 2019)"),
    "bn-scale": ("criterion", "one threshold on BatchNorm |gamma| (network slimming, Liu et al., ICCV 2017)"),
    "random-search": (
        "search",
        "independent random keep-ratio vectors scaled to the budget; the best feasible",
    ),
    "evolution": ("search", "regularized (aging) evolution over keep-ratio vectors (Real et al., AAAI 2019)"),
}


def run_baseline_search(
    problem: PruneProblem, method: str, *, evaluations: int = 0, seed: int = 0
) -> Selection:
    """The named baseline on ``problem`` (``evaluations``: what the searches of :data:`MATCHED` spend)."""
    if method not in BASELINES:
        raise ValueError(f"unknown baseline {method!r}; known: {', '.join(BASELINES)}")
    return BASELINES[method](problem, evaluations, seed)
