"""CPO's step against an independent solver, its recovery on a CMDP where reward and cost rise
together, and a degenerate step rejected without ending training."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch as th
from scipy.optimize import minimize
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from toy_envs import GreedyBreaksLimitEnv

import agents
from agents.cpo import cpo as cpo_module
from agents.cpo.cpo import cpo_direction


def _solver_step(g, b, H, c, delta):
    """SLSQP on the linearised problem: maximise g.d s.t. c + b.d <= 0 and 0.5 d'Hd <= delta; when
    no point of the trust region is feasible, minimise b.d in it (CPO's recovery)."""
    region = {"type": "ineq", "fun": lambda d: delta - 0.5 * d @ H @ d, "jac": lambda d: -(H @ d)}
    options = {"ftol": 1e-14, "maxiter": 500}
    if c - np.sqrt(2 * delta * b @ np.linalg.solve(H, b)) > 0:
        result = minimize(lambda d: b @ d, np.zeros(len(g)), jac=lambda d: b, constraints=[region],
                          method="SLSQP", options=options)  # fmt: skip
    else:
        constraint = {"type": "ineq", "fun": lambda d: -(c + b @ d), "jac": lambda d: -b}
        result = minimize(lambda d: -(g @ d), np.zeros(len(g)), jac=lambda d: -g, method="SLSQP",
                          constraints=[region, constraint], options=options)  # fmt: skip
    return result.x  # (at this tolerance SLSQP may report a line-search stall; the step is checked)


def test_the_closed_form_step_equals_an_independent_solver_in_every_case():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        m = rng.normal(size=(3, 3))
        H = m @ m.T + 0.5 * np.eye(3)
        g, b = rng.normal(size=3), rng.normal(size=3)
        c, delta = rng.uniform(-2, 2), rng.uniform(0.05, 1.0)
        step, case = cpo_direction(g, b, np.linalg.solve(H, g), np.linalg.solve(H, b), c, delta)
        seen.add(case)
        np.testing.assert_allclose(step, _solver_step(g, b, H, c, delta), atol=1e-4)
        if case in (1, 2):  # the linearised constraint holds, and the trust region
            assert c + b @ step <= 1e-6 and 0.5 * step @ H @ step <= delta + 1e-6
    assert seen == {0, 1, 2, 3}  # infeasible, recoverable, binding, whole region feasible


def test_edge_cases_reach_the_solver_optimum():
    """c at or next to 0, reward and cost gradients parallel or opposite, a tangent trust region:
    the optimum may not be unique there, so the objective and the constraints are compared."""
    rng = np.random.default_rng(2)
    for i in range(150):
        m = rng.normal(size=(3, 3))
        H = m @ m.T + 0.5 * np.eye(3)
        g, b = rng.normal(size=3), rng.normal(size=3)
        c, delta = rng.choice([rng.uniform(-2, 2), 0.0, -1e-12, 1e-12]), rng.uniform(0.05, 1.0)
        if i % 3 == 0:
            b = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 2.0) * g  # parallel or opposite
        step, case = cpo_direction(g, b, np.linalg.solve(H, g), np.linalg.solve(H, b), c, delta)
        reference = _solver_step(g, b, H, c, delta)
        assert step is not None and 0.5 * step @ H @ step <= delta * (1 + 1e-6), (i, case)
        if case == 0:
            assert b @ step <= b @ reference + 1e-5
        else:
            assert g @ step >= g @ reference - 1e-5, (i, case, step, reference)
            assert case == 3 or c + b @ step <= 1e-6


def test_parallel_gradients_step_to_the_boundary():
    """b = 2 g: the constraint's boundary is a level set of the objective, the dual's optimum sits
    at lambda = 0, and the textbook form (x - nu y) / lambda divides by it. The step is the
    shortest one to the boundary, -(c/s) y: forward with slack (c < 0), back when over (c > 0)."""
    g = np.array([1.0, -0.5, 0.25])
    b, s = 2 * g, 4 * g @ g  # H = I: x = g, y = b
    for c in (-0.1, 0.3):
        step, case = cpo_direction(g, b, g.copy(), b.copy(), c=c, delta=0.5)
        np.testing.assert_allclose(step, -(c / s) * b)
        assert c + b @ step == pytest.approx(0.0, abs=1e-12) and case == (2 if c < 0 else 1)


class EpisodeCosts(BaseCallback):
    def __init__(self):
        super().__init__()
        self.episodes: list[float] = []
        self._cost = 0.0

    def _on_step(self) -> bool:
        self._cost += self.locals["infos"][0]["cost"]
        if self.locals["dones"][0]:
            self.episodes.append(self._cost)
            self._cost = 0.0
        return True


def _logged(tmp_path, key: str) -> list[float]:
    """One value per update (the first dump comes before any update)."""
    rows = list(csv.DictReader((tmp_path / "progress.csv").open()))
    return [float(r[key]) for r in rows if r.get(key)]


def test_cpo_recovers_where_reward_and_cost_rise_together(tmp_path):
    """Reward = cost = the fraction used: a step that lowers the cost lowers the reward, so a
    recovery step (case 1: over the limit, a feasible policy within reach) that also had to
    raise the reward would never be taken (before the fix: 0 of 11 taken on this run). CPO takes
    them and ends inside the limit (1.5 per episode; the random start costs about 2.4)."""
    env = GreedyBreaksLimitEnv(action="box", horizon=5)
    model = agents.make_agent(
        "cpo", env, seed=0, n_steps=200, batch_size=100, policy_kwargs=dict(net_arch=[16])
    )
    model.set_logger(configure(str(tmp_path), ["csv"]))
    costs = EpisodeCosts()
    model.learn(6_000, callback=costs)
    cases, accepted = _logged(tmp_path, "train/cpo_case"), _logged(tmp_path, "train/line_search_accepted")
    recoveries = [a for c, a in zip(cases, accepted) if c == 1]
    assert len(recoveries) >= 5 and np.mean(recoveries) >= 0.8, (cases, accepted)
    assert np.mean(costs.episodes[:40]) > 2.0  # it started over the limit
    assert np.mean(costs.episodes[-200:]) <= 1.1 * env.budget_limit, np.mean(costs.episodes[-200:])


@pytest.mark.parametrize("direction", ["none", "huge"])
def test_a_degenerate_step_is_rejected_and_training_goes_on(monkeypatch, tmp_path, direction):
    def degenerate(g, b, x, y, c, delta):
        return (None, 2) if direction == "none" else (th.full_like(x, 1e30), 2)

    monkeypatch.setattr(cpo_module, "cpo_direction", degenerate)
    env = GreedyBreaksLimitEnv(action="box", horizon=5)
    model = agents.make_agent("cpo", env, seed=0, n_steps=50, batch_size=50, policy_kwargs=dict(net_arch=[8]))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    actor = [p for n, p in model.policy.named_parameters() if "value" not in n]  # every actor parameter
    before = [p.detach().clone() for p in actor]
    model.learn(300)  # six updates; every one after the first finished episode is degenerate
    assert all(th.equal(a, b) for a, b in zip(before, actor))  # no step was taken
    rejected, accepted = (
        _logged(tmp_path, "train/step_rejected"),
        _logged(tmp_path, "train/line_search_accepted"),
    )
    assert len(accepted) == 5 and not any(accepted)  # six updates, the last one not dumped
    assert all(rejected) if direction == "none" else not any(rejected)  # a huge step fails the line search
