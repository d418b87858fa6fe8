"""Where a constrained agent's cost limit comes from when none is given: the env's budget_limit."""

from __future__ import annotations


def env_budget_limit(vec_env):
    """``budget_limit`` of the first environment of ``vec_env`` (a float or a list).

    Raises:
        ValueError: the environment has no ``budget_limit``.
    """
    try:
        return vec_env.get_attr("budget_limit", indices=[0])[0]
    except (AttributeError, TypeError) as exc:
        raise ValueError(
            "cost_limit is None and the env has no budget_limit attribute; pass cost_limit=..."
        ) from exc
