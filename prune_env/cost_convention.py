"""The cost convention shared by the env, its wrappers and every constrained agent.

A step reports its cost in ``info["cost"]`` (Gymnasium's 5-tuple has no cost slot); an env with
several budgets also reports the vector ``info["costs"]``, whose first entry equals
``info["cost"]``. :func:`read_costs` is the one reader of that convention.
"""

from __future__ import annotations

import numpy as np

from prune_env.errors import MissingCostError


def read_costs(info: dict, cost_key: str = "cost") -> np.ndarray:
    """Every cost of one step as a float64 vector: ``info["costs"]`` when present, else
    ``[info[cost_key]]``.

    Raises:
        MissingCostError: the step reported neither.
    """
    if "costs" in info:
        return np.asarray(info["costs"], dtype=np.float64).reshape(-1)
    if cost_key in info:
        return np.asarray([info[cost_key]], dtype=np.float64)
    raise MissingCostError(
        f"the env reported no cost: a constrained env puts each step's cost in info[{cost_key!r}] "
        f"(or a vector in info['costs']); this step's info has keys {sorted(info)}"
    )
