"""Classic baselines meet the budget through the problem, and spend what they say."""

from __future__ import annotations

import numpy as np
import pytest

import prune_env
from prune_env.app.baselines import global_l1, random_search, run_baseline_search, uniform_l1


@pytest.fixture(scope="module")
def problem():
    return prune_env.PruneProblem("fashion-mnist-mlp", budget="params", budget_limit=0.2, eval_samples=300)


def _mlp_params(w1, w2):
    return 784 * w1 + w1 + w1 * w2 + w2 + w2 * 10 + 10


def test_uniform_l1_is_the_largest_uniform_ratio_within_budget(problem):
    result = uniform_l1(problem)
    chosen = result.chosen
    assert chosen.satisfied and chosen.cost <= 0.2 and chosen.source == "uniform-l1"
    w1, w2 = chosen.widths["fc1"], chosen.widths["fc2"]
    assert w1 / 300 == pytest.approx(w2 / 100, abs=0.02)  # one ratio for both groups
    assert chosen.cost == pytest.approx(_mlp_params(w1, w2) / _mlp_params(300, 100))
    # one more unit per group at the same ratio would break the budget (bisection is tight)
    assert _mlp_params(w1 + 3, w2 + 1) / _mlp_params(300, 100) > 0.2
    l1 = problem.model.fc1.weight.detach().abs().sum(1).numpy()
    assert set(chosen.masks["fc1"]) == set(np.argsort(-l1)[:w1].tolist())
    assert result.evaluations == result.candidates == 13
    assert 1 <= result.feasible_candidates < 13  # the dense network (first try) is over budget


def test_global_l1_within_budget_and_keeps_the_largest_normalized_units(problem):
    chosen = global_l1(problem).chosen
    assert chosen.satisfied
    fc2 = problem.model.fc2.weight.detach().abs().sum(1).numpy()
    kept = set(chosen.masks["fc2"])
    dropped = set(range(100)) - kept
    if kept and dropped:
        assert min(fc2[list(kept)]) >= max(fc2[list(dropped)])


def test_random_search_spends_its_evaluations_and_keeps_the_best(problem):
    result = random_search(problem, evaluations=12, seed=0)
    assert result.evaluations == 12
    assert result.chosen.satisfied
    again = random_search(problem, evaluations=12, seed=0)
    assert again.chosen == result.chosen
    for first in range(1, 12):  # every shorter search (same seed, same first samples) is no better
        shorter = random_search(problem, evaluations=first, seed=0).chosen
        if shorter.satisfied:
            assert shorter.accuracy <= result.chosen.accuracy


def test_unknown_baseline_is_a_clear_error(problem):
    with pytest.raises(ValueError, match="unknown baseline 'magnitude'; known: uniform-l1"):
        run_baseline_search(problem, "magnitude")


def test_scoring_equals_an_episode_with_the_same_masks(problem):
    env = prune_env.PruneEnv(problem=problem)
    keep = np.zeros(300, dtype=np.int8)
    keep[:40] = 1
    env.reset(seed=0)
    env.step(keep)
    _, reward, _, _, info = env.step(keep)
    replay = problem.score(info["masks"])
    assert replay.accuracy == reward and replay.costs == info["costs"]
    assert replay == info["scored"].with_source("evaluated")
