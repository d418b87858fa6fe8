"""What a search hands to the pipeline: the chosen scored mask and what finding it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

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
        search_seconds: the search's wall time (set by searches that time themselves).
        history: the scored candidates in the order they were scored.
    """

    chosen: ScoredMask
    evaluations: int
    candidates: int
    feasible_candidates: int
    episodes: int = 0
    search_seconds: float | None = None  # wall time of the search, where it was timed
    # every scored candidate in the order the search scored it (curves of best-so-far)
    history: tuple[ScoredMask, ...] = field(default=(), repr=False)

    def summary(self) -> dict:
        """The search's costs, for run metrics and leaderboard entries."""
        timed = {} if self.search_seconds is None else {"search_seconds": round(self.search_seconds, 2)}
        return {
            "episodes": self.episodes,
            "evaluations": self.evaluations,
            "candidates": self.candidates,
            "feasible_candidates": self.feasible_candidates,
            **timed,
        }


def best_feasible(records: Sequence[ScoredMask]) -> ScoredMask | None:
    """The most accurate record within every budget (ties: the smaller first cost)."""
    feasible = [r for r in records if r.satisfied]
    if not feasible:
        return None
    return max(feasible, key=lambda r: (r.accuracy, -r.cost))
