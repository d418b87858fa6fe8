"""Lagrange multipliers for constrained RL, one per constraint, with no RL-library coupling.

Both variants share one interface: ``update(mean_episode_costs) -> values`` once per rollout
(before the policy update), ``value`` (a float for one constraint), ``values`` (an array), and
``state_dict`` / ``load_state_dict`` so that training resumes exactly where it stopped.

- :class:`GradientLagrange`: projected gradient ascent on ``lambda * (J_c - d)``, i.e.
  ``lambda <- clip(lambda + lr * (J_c - d), 0, upper_bound)``, with plain SGD or Adam steps
  (following the PPO-Lagrangian of Ray et al. 2019 and OmniSafe's ``Lagrange``).
- :class:`PIDLagrange`: the PID Lagrangian of Stooke, Achiam and Abbeel (ICML 2020): the
  integral term is the classic multiplier, the proportional and derivative terms damp its
  oscillations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_vector(value, size: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64).reshape(-1)
    if array.size == 1:
        array = np.full(size, float(array[0]))
    if array.shape != (size,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be a finite number or {size} finite numbers, got {value!r}")
    return array


class Lagrange:
    """Base class: multipliers ``values`` >= 0 (and <= ``upper_bound`` when given)."""

    def __init__(self, cost_limit: float | Sequence[float], upper_bound: float | None = None):
        self.cost_limit = np.asarray(cost_limit, dtype=np.float64).reshape(-1)
        if self.cost_limit.size == 0 or not np.all(np.isfinite(self.cost_limit)):
            raise ValueError(f"cost_limit must be finite numbers, got {cost_limit!r}")
        if upper_bound is not None and upper_bound <= 0:
            raise ValueError(f"upper_bound must be > 0 or None, got {upper_bound}")
        self.upper_bound = upper_bound
        self.values = np.zeros(self.cost_limit.size)

    @property
    def n_constraints(self) -> int:
        return int(self.cost_limit.size)

    @property
    def value(self) -> float | np.ndarray:
        """The multiplier (a float for one constraint, else an array)."""
        return float(self.values[0]) if self.n_constraints == 1 else self.values.copy()

    def _project(self, values: np.ndarray) -> np.ndarray:
        upper = np.inf if self.upper_bound is None else self.upper_bound
        return np.clip(values, 0.0, upper)

    def update(self, mean_episode_costs) -> np.ndarray:
        raise NotImplementedError

    def _check_costs(self, mean_episode_costs) -> np.ndarray:
        return _as_vector(mean_episode_costs, self.n_constraints, "mean_episode_costs")

    def state_dict(self) -> dict:
        return {"values": self.values.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.values = np.asarray(state["values"], dtype=np.float64).copy()


class GradientLagrange(Lagrange):
    """Projected gradient ascent on the multiplier.

    Args:
        cost_limit: the limit d (one per constraint).
        initial_value: lambda at the start.
        lr: step size.
        optimizer: ``"sgd"`` (lambda += lr * (J_c - d)) or ``"adam"`` (Adam on the same gradient).
        upper_bound: optional largest lambda.
        parameterization: ``"projected"`` (lambda itself, clipped at 0) or ``"softplus"``
            (lambda = softplus(xi) stays positive; xi is stepped by the violation ``J_c - d``
            itself, as Ray et al.'s PPO-Lagrangian does with its penalty parameter: its loss is
            ``-xi * (J_c - d)``, not ``-softplus(xi) * (J_c - d)``, so the step does not shrink
            by ``sigmoid(xi)`` and lambda comes back from near 0 as fast as it left).
    """

    def __init__(
        self,
        cost_limit,
        initial_value: float = 1.0,
        lr: float = 0.05,
        optimizer: str = "sgd",
        upper_bound: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        parameterization: str = "projected",
    ):
        super().__init__(cost_limit, upper_bound)
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        if parameterization not in ("projected", "softplus"):
            raise ValueError(f"parameterization must be 'projected' or 'softplus', got {parameterization!r}")
        self.parameterization = parameterization
        if lr < 0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        self.lr, self.optimizer, self.betas = float(lr), optimizer, betas
        self.values = self._project(_as_vector(initial_value, self.n_constraints, "initial_value"))
        if parameterization == "softplus":
            if np.any(self.values <= 0):
                raise ValueError("a softplus multiplier starts above 0: give initial_value > 0")
            self._xi = np.log(np.expm1(self.values))  # softplus^-1
        self._m = np.zeros(self.n_constraints)
        self._v = np.zeros(self.n_constraints)
        self._t = 0

    def update(self, mean_episode_costs) -> np.ndarray:
        violation = self._check_costs(mean_episode_costs) - self.cost_limit  # ascent direction
        if self.optimizer == "sgd":
            step = violation
        else:
            self._t += 1
            b1, b2 = self.betas
            self._m = b1 * self._m + (1 - b1) * violation
            self._v = b2 * self._v + (1 - b2) * violation**2
            m_hat = self._m / (1 - b1**self._t)
            v_hat = self._v / (1 - b2**self._t)
            step = m_hat / (np.sqrt(v_hat) + 1e-8)
        if self.parameterization == "softplus":
            self._xi = self._xi + self.lr * step
            if self.upper_bound is not None:  # xi stops where lambda does, so it turns back at once
                self._xi = np.minimum(self._xi, np.log(np.expm1(self.upper_bound)))
            self.values = self._project(np.logaddexp(0.0, self._xi))
        else:
            self.values = self._project(self.values + self.lr * step)
        return self.values.copy()

    def state_dict(self) -> dict:
        state = {"values": self.values.copy(), "m": self._m.copy(), "v": self._v.copy(), "t": self._t}
        if self.parameterization == "softplus":
            state["xi"] = self._xi.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._m, self._v, self._t = np.array(state["m"]), np.array(state["v"]), int(state["t"])
        if "xi" in state:
            self._xi = np.array(state["xi"])


class PIDLagrange(Lagrange):
    """PID Lagrangian (Stooke et al. 2020, Algorithm 2).

    ``lambda = clip(kp * delta_smoothed + I + kd * max(0, J_smoothed - J_smoothed_prev), 0, ub)``
    with ``I = max(0, I + ki * delta)`` and ``delta = J_c - d``. The proportional and
    derivative terms use exponential moving averages (``delta_ema``, ``cost_ema``) of the
    cost, and the derivative looks ``d_delay`` updates back.
    """

    def __init__(
        self,
        cost_limit,
        kp: float = 0.1,
        ki: float = 0.01,
        kd: float = 0.01,
        initial_value: float = 0.0,
        delta_ema: float = 0.95,
        cost_ema: float = 0.95,
        d_delay: int = 10,
        upper_bound: float | None = None,
    ):
        super().__init__(cost_limit, upper_bound)
        if min(kp, ki, kd) < 0:
            raise ValueError(f"PID gains must be >= 0, got kp={kp}, ki={ki}, kd={kd}")
        if not (0 <= delta_ema < 1 and 0 <= cost_ema < 1) or d_delay < 1:
            raise ValueError("delta_ema and cost_ema must be in [0, 1) and d_delay >= 1")
        self.kp, self.ki, self.kd = float(kp), float(ki), float(kd)
        self.delta_ema, self.cost_ema, self.d_delay = float(delta_ema), float(cost_ema), int(d_delay)
        self._integral = _as_vector(initial_value, self.n_constraints, "initial_value")
        self._delta_smoothed = np.zeros(self.n_constraints)
        self._cost_smoothed = np.zeros(self.n_constraints)
        self._cost_history: list[np.ndarray] = []
        self.values = self._project(self._integral.copy())

    def update(self, mean_episode_costs) -> np.ndarray:
        costs = self._check_costs(mean_episode_costs)
        delta = costs - self.cost_limit
        self._integral = np.maximum(0.0, self._integral + self.ki * delta)
        a, b = self.delta_ema, self.cost_ema
        self._delta_smoothed = a * self._delta_smoothed + (1 - a) * delta
        self._cost_smoothed = b * self._cost_smoothed + (1 - b) * costs
        self._cost_history.append(self._cost_smoothed.copy())
        self._cost_history = self._cost_history[-(self.d_delay + 1) :]
        derivative = np.maximum(0.0, self._cost_smoothed - self._cost_history[0])
        raw = self.kp * self._delta_smoothed + self._integral + self.kd * derivative
        self.values = self._project(raw)
        return self.values.copy()

    def state_dict(self) -> dict:
        return {
            "values": self.values.copy(),
            "integral": self._integral.copy(),
            "delta_smoothed": self._delta_smoothed.copy(),
            "cost_smoothed": self._cost_smoothed.copy(),
            "cost_history": [h.copy() for h in self._cost_history],
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._integral = np.array(state["integral"])
        self._delta_smoothed = np.array(state["delta_smoothed"])
        self._cost_smoothed = np.array(state["cost_smoothed"])
        self._cost_history = [np.array(h) for h in state["cost_history"]]


LAGRANGIANS = {"gradient": GradientLagrange, "pid": PIDLagrange}


def make_lagrange(kind: str, cost_limit, **kwargs) -> Lagrange:
    """``"gradient"`` or ``"pid"``; kwargs go to the class."""
    if kind not in LAGRANGIANS:
        raise ValueError(f"lagrangian must be one of {sorted(LAGRANGIANS)}, got {kind!r}")
    return LAGRANGIANS[kind](cost_limit, **kwargs)
