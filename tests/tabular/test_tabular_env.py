"""PruneEnv-Tabular-v0: the live env's observation and cost conventions, rewards looked up, the
checkers, every ratio-mode agent and the searches."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

import agents
from agents.registry import AGENTS, known_hyperparameters
from prune_env import PruneEnv, TabularPruneEnv
from prune_env.app import EpisodeRecorder
from prune_env.app.baselines import evolution, random_search
from prune_env.errors import InvalidActionError, TableError
from prune_env.tabular import TabularProblem


@pytest.mark.parametrize("observation", ["summary", "units"])
@pytest.mark.parametrize(("budget", "limit"), [("params", 0.3), ("flops", (0.2, 0.6))])
def test_observations_costs_and_limits_equal_the_live_env(mlp_table, observation, budget, limit):
    tab = TabularPruneEnv(table=mlp_table, budget=budget, budget_limit=limit, observation=observation)
    live = PruneEnv(
        "fashion-mnist-mlp", action_mode="ratio", observation=observation, budget=budget,
        budget_limit=limit, finetune_steps=32,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    for episode in range(3):
        (o1, i1), (o2, i2) = tab.reset(seed=episode), live.reset(seed=episode)
        assert np.array_equal(o1, o2) and i1["budget_limits"] == i2["budget_limits"]
        for _ in range(mlp_table.num_groups):
            action = np.array([mlp_table.levels[rng.integers(mlp_table.num_levels)]], np.float32)
            o1, r1, d1, _, i1 = tab.step(action)
            o2, r2, d2, _, i2 = live.step(action)
            assert np.array_equal(o1, o2) and d1 == d2 and i1["cost"] == i2["cost"]
        for key in ("costs", "params_ratio", "flops_ratio", "constraint_satisfied", "masks", "widths"):
            assert i1[key] == i2[key], key
        # the reward is the table's; the live score of that cell with the cell's own seed equals it
        assert r1 == mlp_table.accuracy()[i1["cell"]]
        assert live.problem.score(i1["masks"], seed=i1["cell"]).accuracy == r1


def test_limits_drawn_after_one_seeded_reset_stay_equal_to_the_live_envs(mlp_table):
    tab = TabularPruneEnv(table=mlp_table, budget_limit=(0.2, 0.6))
    live = PruneEnv(
        "fashion-mnist-mlp", action_mode="ratio", budget_limit=(0.2, 0.6), finetune_steps=32, eval_samples=50
    )
    tab.reset(seed=3)
    live.reset(seed=3)
    for _ in range(4):  # the live env draws each episode's fine-tune seed from the same generator
        for _ in range(mlp_table.num_groups):
            o1, *_ = tab.step(np.array([0.5], np.float32))
            o2, *_ = live.step(np.array([0.5], np.float32))
        (o1, i1), (o2, i2) = tab.reset(), live.reset()
        assert i1["budget_limits"] == i2["budget_limits"] and np.array_equal(o1, o2)


def test_records_do_not_share_the_tables_lists(mlp_table):
    env = TabularPruneEnv(table=mlp_table)
    for _ in range(2):
        env.reset(seed=0)
        env.step(np.array([1.0], np.float32))
        info = env.step(np.array([1.0], np.float32))[4]
        name = mlp_table.group_names[0]
        assert len(info["masks"][name]) == mlp_table.widths[0]
        info["masks"][name].append(-1)  # a caller changing its record changes nothing else


def test_gymnasium_and_sb3_checkers_pass(mlp_table):
    for mode in ("ratio", "discrete"):
        check_env(
            TabularPruneEnv(table=mlp_table, action_mode=mode, budget_limit=(0.3, 0.6)),
            skip_render_check=True,
        )
        sb3_check_env(TabularPruneEnv(table=mlp_table, action_mode=mode), warn=False)
    env = gym.make("PruneEnv-Tabular-v0", table=mlp_table, budget="flops", budget_limit=0.4)
    env.reset(seed=0)
    assert env.unwrapped.budget_limit == 0.4


def test_ratio_actions_snap_to_the_nearest_level_and_discrete_actions_pick_one(mlp_table):
    env = TabularPruneEnv(table=mlp_table)
    for ratio, level in ((0.0, 0), (0.37, 0), (0.375, 0), (0.38, 1), (0.9, 3), (1.0, 3)):
        env.reset(seed=0)
        assert env.step(np.array([ratio], np.float32))[4]["level"] == level  # 0.375: tie -> lower
    disc = TabularPruneEnv(table=mlp_table, action_mode="discrete")
    disc.reset(seed=0)
    disc.step(2)
    info = disc.step(np.int64(1))[4]
    assert info["levels"] == [2, 1] and info["cell"] == 2 * 4 + 1


@pytest.mark.parametrize("action", [np.array([1.5]), np.array([np.nan]), np.array([0.2, 0.3]), "half"])
def test_bad_actions_raise_and_leave_the_episode_unchanged(mlp_table, action):
    env = TabularPruneEnv(table=mlp_table)
    env.reset(seed=0)
    env.step(np.array([0.5], np.float32))  # the last step is the one that scores
    with pytest.raises(InvalidActionError):
        env.step(action)
    assert env._step_index == 1 and env._chosen == [1] and env._number == 1
    reward = env.step(np.array([1.0], np.float32))[1]  # the episode goes on as if nothing happened
    assert reward == mlp_table.accuracy()[mlp_table.cell([1, 3])]
    disc = TabularPruneEnv(table=mlp_table, action_mode="discrete")
    disc.reset(seed=0)
    with pytest.raises(InvalidActionError):
        disc.step(4)


def test_max_keep_ratio_is_the_largest_level_that_can_still_fit(mlp_table):
    # brute force over the table: the largest level of the current group for which the cell with
    # every later group at the lowest level is within the limit (params estimates are exact)
    cost = mlp_table.cost("params")
    for limit in (0.06, 0.1, 0.3, 0.7):
        env = TabularPruneEnv(table=mlp_table, budget_limit=limit)
        env.reset(seed=0)
        first = [j for j in range(4) if cost[mlp_table.cell([j, 0])] <= limit]
        assert env.max_keep_ratio() == (mlp_table.levels[max(first)] if first else 0.0)
        env.step(np.array([0.25], np.float32))
        second = [j for j in range(4) if cost[mlp_table.cell([0, j])] <= limit]
        assert env.max_keep_ratio() == (mlp_table.levels[max(second)] if second else 0.0)


@pytest.mark.parametrize("agent_wrapper", ["clip", "scale"])
def test_clipped_and_scaled_actions_always_meet_the_budget_when_any_cell_does(mlp_table, agent_wrapper):
    from prune_env.wrappers import ClipToBudget, ScaleToBudget

    env = TabularPruneEnv(table=mlp_table, budget_limit=(0.25, 0.6))
    wrapped = ClipToBudget(env) if agent_wrapper == "clip" else ScaleToBudget(env)
    rng = np.random.default_rng(0)
    for episode in range(40):
        wrapped.reset(seed=episode)
        for _ in range(mlp_table.num_groups):
            _, _, done, _, info = wrapped.step(rng.uniform(0, 1, 1).astype(np.float32))
        assert done and info["constraint_satisfied"], info["budget_limits"]


def test_the_optimum_is_the_regret_reference(mlp_table):
    env = TabularPruneEnv(table=mlp_table, budget_limit=0.5)
    env.reset(seed=0, options={"budget_limit": 0.4})
    best = env.optimum()
    assert best.limit == 0.4 and best == mlp_table.optimum("params", 0.4)
    env.reset(seed=0)
    for level in best.levels:
        _, reward, done, _, info = env.step(np.array([mlp_table.levels[level]], np.float32))
    assert done and info["cell"] == best.cell and reward == best.accuracy


def test_searches_run_on_the_table_and_their_records_are_its_cells(mlp_table):
    problem = TabularProblem(table=mlp_table, budget="params", budget_limit=0.5)
    for search in (random_search, evolution):
        selection = search(problem, evaluations=24, seed=0)
        chosen = selection.chosen
        cell = mlp_table.cell(problem.levels_of(problem.parse_masks(chosen.masks)))
        assert chosen.accuracy == mlp_table.accuracy()[cell] and chosen.satisfied
        assert chosen.accuracy <= problem.optimum().accuracy
    assert problem.evaluations == 48
    off_grid = [np.ones(g.width, dtype=bool) for g in problem.groups]
    off_grid[0][0] = False  # one unit fewer than the dense level
    with pytest.raises(TableError, match="not one of the table's levels"):
        problem.score(off_grid)


def test_budgets_outside_the_table_and_protocols_it_lacks_are_refused(mlp_table):
    with pytest.raises(TableError, match="budgets"):
        TabularPruneEnv(table=mlp_table, budget="ort-latency")
    env = TabularPruneEnv(table=mlp_table)
    env.set_scoring(finetune_steps=0)
    assert env.problem.scoring == "raw"
    with pytest.raises(TableError, match="0 fine-tune steps"):
        env.set_scoring(finetune_steps=128)
    with pytest.raises(TableError, match="does not match"):
        TabularPruneEnv("fashion-mnist-cnn", table=mlp_table)


RATIO_AGENTS = [n for n, s in AGENTS.items() if s.action_space in (None, gym.spaces.Box)]


@pytest.mark.parametrize("name", RATIO_AGENTS)
def test_every_ratio_mode_agent_learns_on_the_table(mlp_table, name):
    spec = AGENTS[name]
    env = TabularPruneEnv(table=mlp_table, budget_limit=(0.3, 0.7))
    short = (
        dict(learning_starts=8, buffer_size=500, batch_size=8)
        if issubclass(spec.cls, OffPolicyAlgorithm)
        else dict(n_steps=16, batch_size=16, n_epochs=1)
    )
    short = {k: v for k, v in short.items() if k in known_hyperparameters(spec.cls)}
    env.reset(seed=0)
    model = agents.make_agent(name, env, seed=0, **short)
    recorder = EpisodeRecorder(env)
    model.learn(64, callback=recorder)
    assert len(recorder.episodes) >= 30
    assert all(e.accuracy == mlp_table.accuracy()[mlp_table.cell(env.problem.levels_of(env.problem.parse_masks(e.masks)))]
               for e in recorder.episodes)  # fmt: skip
