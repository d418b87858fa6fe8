"""Exploration noise for off-policy agents on short pruning episodes."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.noise import ActionNoise


class DecayingNormalNoise(ActionNoise):
    """Gaussian noise whose scale shrinks by ``decay`` at every episode end (SB3 calls
    ``reset()`` there), as AMC explores: wide at first, then around the learned policy.

    Args:
        sigma: initial standard deviation per action dimension, in the agent's action units.
        decay: factor applied to the scale at each episode end.
        floor: smallest scale.
    """

    def __init__(self, sigma: np.ndarray, decay: float = 0.99, floor: float = 0.02, seed: int | None = None):
        super().__init__()
        self.initial = np.asarray(sigma, dtype=np.float64)
        self.sigma = self.initial.copy()
        self.decay, self.floor = float(decay), float(floor)
        self._rng = np.random.default_rng(seed)

    def __call__(self) -> np.ndarray:
        return self._rng.normal(0.0, self.sigma).astype(np.float32)

    def reset(self) -> None:
        self.sigma = np.maximum(self.sigma * self.decay, self.floor)

    def __repr__(self) -> str:
        return f"DecayingNormalNoise(sigma={self.initial.tolist()}, decay={self.decay}, floor={self.floor})"
