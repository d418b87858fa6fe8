"""What a search hands to the pipeline: the chosen scored mask and what finding it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prune_env.scored import ScoredMask


@dataclass(frozen=True)
class Selection:
    """The outcome of a search (an agent's training and harvest, or a baseline).

    Attributes:
        chosen: the mask the pipeline exports.
        evaluations: masks scored (accuracy evaluations spent), the unit searches compare at.
        candidates: scored masks the choice was made among.
        feasible_candidates: how many of them met every budget.
        episodes: training episodes (0 for baselines).
    """

    chosen: ScoredMask
    evaluations: int
    candidates: int
    feasible_candidates: int
    episodes: int = 0

    def summary(self) -> dict:
        """The search's costs, for run metrics and leaderboard entries."""
        return {
            "episodes": self.episodes,
            "evaluations": self.evaluations,
            "candidates": self.candidates,
            "feasible_candidates": self.feasible_candidates,
        }


def best_feasible(records: Sequence[ScoredMask]) -> ScoredMask | None:
    """The most accurate record within every budget (ties: the smaller first cost)."""
    feasible = [r for r in records if r.satisfied]
    if not feasible:
        return None
    return max(feasible, key=lambda r: (r.accuracy, -r.cost))
