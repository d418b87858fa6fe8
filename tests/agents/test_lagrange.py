"""Lagrange multipliers: direction, projection, optimizers, PID terms, state round-trip."""

from __future__ import annotations

import numpy as np
import pytest

from agents.common.lagrange import GradientLagrange, PIDLagrange, make_lagrange


def test_gradient_multiplier_rises_while_violated_and_falls_when_satisfied():
    lag = GradientLagrange(cost_limit=0.5, initial_value=1.0, lr=0.1)
    lag.update(0.9)
    assert lag.value == pytest.approx(1.0 + 0.1 * 0.4)
    lag.update(0.2)
    assert lag.value == pytest.approx(1.04 - 0.1 * 0.3)
    for _ in range(100):
        lag.update(0.0)
    assert lag.value == 0.0  # projected onto lambda >= 0


def test_upper_bound_and_multiple_constraints():
    lag = GradientLagrange(cost_limit=[0.1, 0.5], initial_value=0.0, lr=1.0, upper_bound=2.0)
    values = lag.update([5.0, 0.7])
    np.testing.assert_allclose(values, [2.0, 0.2])
    assert isinstance(lag.value, np.ndarray) and lag.n_constraints == 2
    with pytest.raises(ValueError, match="2 finite numbers"):
        lag.update([1.0, 2.0, 3.0])


def test_adam_multiplier_moves_lr_per_step_in_the_violation_direction():
    lag = GradientLagrange(cost_limit=0.5, initial_value=1.0, lr=0.01, optimizer="adam")
    lag.update(10.0)
    assert lag.value == pytest.approx(1.01, abs=1e-6)  # Adam's first step is lr * sign
    lag.update(-10.0)
    assert lag.value < 1.01


def test_pid_integral_is_the_classic_multiplier_and_terms_add():
    pure_i = PIDLagrange(cost_limit=1.0, kp=0.0, ki=0.5, kd=0.0)
    pure_i.update(3.0)
    assert pure_i.value == pytest.approx(1.0)
    pure_i.update(0.0)
    assert pure_i.value == pytest.approx(0.5)
    pid = PIDLagrange(cost_limit=1.0, kp=1.0, ki=0.0, kd=0.0, delta_ema=0.0)
    pid.update(1.5)
    assert pid.value == pytest.approx(0.5)  # proportional on the (unsmoothed) violation
    pid.update(0.2)
    assert pid.value == 0.0  # projected
    d = PIDLagrange(cost_limit=10.0, kp=0.0, ki=0.0, kd=1.0, cost_ema=0.0, d_delay=1)
    d.update(1.0)
    d.update(3.0)
    assert d.value == pytest.approx(2.0)  # derivative of a rising cost, even below the limit


@pytest.mark.parametrize(
    "kind, kwargs",
    [
        ("gradient", {"optimizer": "adam", "lr": 0.1}),
        ("gradient", {"optimizer": "adam", "lr": 1.0, "parameterization": "softplus"}),  # ppo-lag-paper's
        ("pid", {"kp": 0.3, "ki": 0.2, "kd": 0.4}),
    ],
)
def test_state_dict_round_trip_resumes_identically(kind, kwargs):
    costs = [0.9, 0.7, 1.2, 0.1, 0.4, 0.8]
    a = make_lagrange(kind, 0.5, **kwargs)
    b = make_lagrange(kind, 0.5, **kwargs)
    for c in costs[:3]:
        a.update(c)
        b.update(c)
    c_ = make_lagrange(kind, 0.5, **kwargs)
    c_.load_state_dict(b.state_dict())
    for c in costs[3:]:
        a.update(c)
        c_.update(c)
    assert a.value == c_.value


def test_bad_arguments():
    with pytest.raises(ValueError, match="lagrangian must be one of"):
        make_lagrange("newton", 0.5)
    with pytest.raises(ValueError, match="optimizer"):
        GradientLagrange(0.5, optimizer="rmsprop")
    with pytest.raises(ValueError, match="upper_bound"):
        GradientLagrange(0.5, upper_bound=0.0)


def test_softplus_multiplier_steps_on_its_preimage():
    lag = GradientLagrange(cost_limit=1.0, initial_value=1.0, lr=0.5, parameterization="softplus")
    xi = np.log(np.expm1(1.0))
    assert lag.value == pytest.approx(1.0)
    lag.update(3.0)  # violation 2: xi steps by lr * violation (Ray et al.), not scaled by sigmoid(xi)
    xi += 0.5 * 2.0
    assert lag.value == pytest.approx(np.log1p(np.exp(xi)))
    for _ in range(200):
        lag.update(0.0)  # satisfied: lambda shrinks toward 0 but stays positive
    assert 0 < lag.value < 0.05
    restored = GradientLagrange(cost_limit=1.0, initial_value=1.0, lr=0.5, parameterization="softplus")
    restored.load_state_dict(lag.state_dict())
    assert restored.update(2.0) == pytest.approx(lag.update(2.0))
    with pytest.raises(ValueError, match="initial_value > 0"):
        GradientLagrange(cost_limit=1.0, initial_value=0.0, parameterization="softplus")


def test_softplus_multiplier_returns_from_zero_as_fast_as_it_left():
    """Twenty satisfied updates take lambda from 1 to below 1e-4; twenty violated ones of the same
    size bring it back. (Stepping xi by sigmoid(xi) * violation, lambda neither falls that fast nor
    comes back: near 0 each step shrinks with lambda itself.)"""
    lag = GradientLagrange(cost_limit=1.0, initial_value=1.0, lr=0.5, parameterization="softplus")
    for _ in range(20):
        lag.update(0.0)
    assert lag.value < 1e-4
    rounds = 0
    while lag.value < 1.0 - 1e-9:
        lag.update(2.0)
        rounds += 1
    assert rounds == 20


def test_a_softplus_multiplier_at_its_bound_turns_back_at_once():
    lag = GradientLagrange(
        cost_limit=1.0, initial_value=1.0, lr=1.0, upper_bound=2.0, parameterization="softplus"
    )
    for _ in range(50):
        lag.update(3.0)  # far over the limit: lambda rises to its bound and stays there
    assert lag.value == pytest.approx(2.0)
    lag.update(0.0)
    assert lag.value < 2.0  # xi did not run on past the bound while lambda was clipped
