"""The one record of a scored mask, passed unchanged from the env to searches, runs and
leaderboard entries, with a JSON round trip.

A mask's score depends on how it was scored: the number of validation images and the fine-tune
applied before scoring. That is the :class:`ScoringProtocol`, stored inside every record, so
that two records compare only when their protocols are equal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace

from prune_env.errors import InvalidRecordError


@dataclass(frozen=True)
class ScoringProtocol:
    """How a candidate mask is scored (the defaults are the env's)."""

    eval_samples: int = 1000  # validation images scored
    finetune_steps: int = 0  # Adam steps on training batches before scoring
    finetune_batch_size: int = 64
    finetune_lr: float = 3e-4
    bn_recalibration: int = 0  # training batches that re-estimate BatchNorm statistics, after the fine-tune


@dataclass(frozen=True)
class ScoredMask:
    """A pruning mask with everything measured about it.

    Attributes:
        masks: group name -> kept unit indices.
        widths: group name -> kept width.
        accuracy: validation accuracy in [0, 1] under ``protocol`` (the env's reward).
        costs: every budget's value, in the env's budget order (``costs[0]`` is ``info["cost"]``).
        budgets: budget name -> value.
        limits: every budget's limit, in the same order.
        params_ratio, flops_ratio: pruned / dense parameters and MACs.
        satisfied: every cost within its limit.
        protocol: how ``accuracy`` was obtained.
        source: what produced the mask ("train", "deterministic", "sampled", a baseline's name).
    """

    masks: dict[str, list[int]]
    widths: dict[str, int]
    accuracy: float
    costs: list[float]
    budgets: dict[str, float]
    limits: list[float]
    params_ratio: float
    flops_ratio: float
    satisfied: bool
    protocol: ScoringProtocol
    source: str = "episode"

    @property
    def cost(self) -> float:
        """The first budget's value (the env's ``info["cost"]``)."""
        return self.costs[0]

    def with_source(self, source: str) -> ScoredMask:
        return replace(self, source=source)

    def info(self) -> dict:
        """The env's final-step ``info`` entries (the record itself under ``"scored"``)."""
        return {
            "accuracy": self.accuracy,
            "cost": self.cost,
            "costs": list(self.costs),
            "budgets": dict(self.budgets),
            "params_ratio": self.params_ratio,
            "flops_ratio": self.flops_ratio,
            "constraint_satisfied": self.satisfied,
            "masks": self.masks,
            "widths": self.widths,
            "scored": self,
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ScoredMask:
        """The inverse of :meth:`to_dict`; raises :class:`InvalidRecordError` on a bad record."""
        if not isinstance(data, dict):
            raise InvalidRecordError(f"a scored mask must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        required = names - {"source"}
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise InvalidRecordError(
                f"scored-mask record: missing fields {missing}, unknown fields {unknown}; "
                f"expected {sorted(names)}"
            )
        try:
            protocol = ScoringProtocol(**data["protocol"])
            return cls(
                masks={str(k): [int(i) for i in v] for k, v in data["masks"].items()},
                widths={str(k): int(v) for k, v in data["widths"].items()},
                accuracy=float(data["accuracy"]),
                costs=[float(c) for c in data["costs"]],
                budgets={str(k): float(v) for k, v in data["budgets"].items()},
                limits=[float(v) for v in data["limits"]],
                params_ratio=float(data["params_ratio"]),
                flops_ratio=float(data["flops_ratio"]),
                satisfied=bool(data["satisfied"]),
                protocol=protocol,
                source=str(data.get("source", "episode")),
            )
        except (TypeError, ValueError, AttributeError) as exc:
            raise InvalidRecordError(f"malformed scored-mask record: {exc}") from exc

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ScoredMask:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRecordError(f"a scored-mask record is not valid JSON: {exc}") from exc
        return cls.from_dict(data)
