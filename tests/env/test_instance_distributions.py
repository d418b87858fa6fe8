"""Limits drawn per episode, task lists and the ratio mode's fixed-length observation."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from prune_env import PruneEnv
from prune_env.budgets import make_budget_list
from prune_env.env import DESCRIPTOR_NAMES, IMPORTANCE_QUANTILES, SUMMARY_NAMES
from prune_env.errors import BudgetError
from prune_env.limits import LimitDistribution, parse_limit_text, parse_limits

LIMIT = DESCRIPTOR_NAMES.index("budget_limit")
MLP, CNN = "fashion-mnist-mlp", "fashion-mnist-cnn"


def _episode(env, ratio=0.3, **reset):
    obs, info = env.reset(**reset)
    first, steps, done = obs, 0, False
    while not done:
        obs, _, done, _, final = env.step(np.array([ratio], dtype=np.float32))
        steps += 1
    return first, info, final, steps


@pytest.fixture(scope="module")
def drawn():
    return PruneEnv(MLP, action_mode="ratio", budget_limit=(0.05, 0.3), eval_samples=50)


def test_a_drawn_limit_is_in_the_observation_the_info_and_the_record(drawn):
    seen = []
    for seed in range(6):
        first, info, final, _ = _episode(drawn, seed=seed)
        (limit,) = info["budget_limits"]
        assert 0.05 <= limit <= 0.3
        assert first[LIMIT] == pytest.approx(limit)
        assert drawn.budget_limit == limit and final["budget_limits"] == [limit]
        scored = final["scored"]
        assert scored.limits == [limit]
        assert scored.satisfied == (scored.cost <= limit) == final["constraint_satisfied"]
        seen.append(limit)
    assert len(set(seen)) == 6  # a range, not one value
    # the env's seeded generator draws them: the same seed, the same limit
    assert _episode(drawn, seed=3)[1]["budget_limits"] == [seen[3]]


def test_a_reset_option_fixes_the_limit_for_one_episode_only(drawn):
    first, info, final, _ = _episode(drawn, seed=0, options={"budget_limit": 0.42})
    assert info["budget_limits"] == [0.42] and first[LIMIT] == pytest.approx(0.42)
    assert final["scored"].limits == [0.42]
    assert _episode(drawn)[1]["budget_limits"] != [0.42]  # the next episode draws again


def test_a_list_draws_its_values_and_a_fixed_limit_draws_nothing():
    env = PruneEnv(MLP, action_mode="ratio", budget_limit=[0.1, 0.2], eval_samples=50)
    limits = {env.reset(seed=s)[1]["budget_limits"][0] for s in range(12)}
    assert limits == {0.1, 0.2}
    fixed = PruneEnv(MLP, action_mode="ratio", budget_limit=0.1, eval_samples=50)
    fixed.reset(seed=7)
    before = fixed.np_random.bit_generator.state
    assert fixed.reset()[1]["budget_limits"] == [0.1]
    assert fixed.np_random.bit_generator.state == before  # no draw: old runs replay as they were
    assert not fixed.draws_limits and env.draws_limits


def test_bad_reset_options_change_nothing(drawn):
    drawn.reset(seed=0, options={"budget_limit": 0.2})
    with pytest.raises(BudgetError, match=r"\(0, 1\]"):
        drawn.reset(options={"budget_limit": 1.5})
    with pytest.raises(ValueError, match="not one of this env's tasks"):
        drawn.reset(options={"task": CNN})
    with pytest.raises(ValueError, match="unknown reset option"):
        drawn.reset(options={"limit": 0.2})
    assert drawn.budget_limits == [0.2] and drawn.problem.task == MLP


@pytest.mark.parametrize(
    ("spec", "match"),
    [((0.3, 0.1), "low < high"), ((0.1, 0.2, 0.3), r"\(low, high\)"), ([], "at least one"),
     ((0.0, 0.2), r"\(0, 1\]"), ({"lo": 0.1}, "mapping")],
)  # fmt: skip
def test_bad_limit_distributions_are_refused(spec, match):
    with pytest.raises(BudgetError, match=match):
        parse_limits(make_budget_list("params"), spec)


def test_limit_forms():
    params = make_budget_list("params")
    assert parse_limits(params, 0.1) == [LimitDistribution(0.1, 0.1, (0.1,))]
    assert parse_limits(params, {"low": 0.1, "high": 0.2})[0].to_json() == {"low": 0.1, "high": 0.2}
    assert parse_limits(params, {"choices": [0.2, 0.1]})[0].contains(0.2)
    two = parse_limits(make_budget_list(["params", "flops"]), [(0.1, 0.2), 0.5])
    assert [d.fixed for d in two] == [False, True]
    assert not parse_limits(params, (0.1, 0.2))[0].contains(0.25)
    assert parse_limit_text("0.05:0.3") == (0.05, 0.3) and parse_limit_text("0.1,0.2") == [0.1, 0.2]
    with pytest.raises(BudgetError):
        parse_limit_text("a:b")


def test_a_task_list_yields_episodes_of_each_with_one_observation_length():
    env = PruneEnv([MLP, CNN], action_mode="ratio", budget_limit=(0.1, 0.3), eval_samples=50)
    assert env.observation_space.shape == (len(DESCRIPTOR_NAMES) + len(SUMMARY_NAMES),)
    steps = {}
    for seed in range(8):
        first, info, final, n = _episode(env, seed=seed)
        assert first.shape == env.observation_space.shape and info["task"] == final["task"]
        assert final["scored"].widths.keys() == set(env.problems[info["task"]].group_names)
        steps[info["task"]] = n
    assert steps == {MLP: 2, CNN: 6}  # both drawn; each episode has its own network's length
    assert _episode(env, options={"task": CNN})[1]["task"] == CNN
    check_env(env, skip_render_check=True)


def test_task_lists_in_mask_mode_pad_to_the_widest_group():
    env = PruneEnv([MLP, CNN], action_mode="mask", eval_samples=50)
    assert env.max_units == 300 and env.action_space.n == 300  # LeNet-300-100's fc1
    obs, info = env.reset(seed=0, options={"task": CNN})
    assert obs.shape == (len(DESCRIPTOR_NAMES) + 300,)
    assert env.action_masks().reshape(300, 2)[16:, 1].sum() == 0  # the first CNN group has 16 units


def test_the_summary_observation_is_the_quantiles_of_the_groups_importance():
    env = PruneEnv(CNN, action_mode="ratio", budget="flops", eval_samples=50)
    obs, _ = env.reset(seed=0)
    tail = obs[len(DESCRIPTOR_NAMES) :]
    importance = env.problem.importance[0] / env.problem.importance[0].max()
    assert tail[0] == pytest.approx(np.log2(16) / 12)
    assert tail[1] == 1.0  # a FLOPs budget is estimated by MACs
    one_each = env.problem.keep_from_ratios([0.0] * env.num_groups)
    assert tail[2] == pytest.approx(env.problem.estimated_budget(one_each), abs=1e-6)
    expected = [*np.quantile(importance, IMPORTANCE_QUANTILES), importance.mean(), importance.std()]
    np.testing.assert_allclose(tail[3:], expected, atol=1e-6)
    units = PruneEnv(problem=env.problem, action_mode="ratio", observation="units")
    assert units.reset(seed=0)[0].shape == (len(DESCRIPTOR_NAMES) + env.max_units,)
