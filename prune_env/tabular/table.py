"""A pruning table: every cell of one network's keep-level grid scored once by the live
environment (NAS-Bench-style), so that an episode's reward is a lookup and the optimum is known.

A *cell* is one keep level per group: group ``g`` at level ``j`` keeps its ``units[g, j]``
units of largest L1 magnitude, ``max(round(levels[j] * width), 1)``, exactly what PruneEnv's
ratio action ``levels[j]`` keeps. Cells are numbered in mixed radix, the first group the most
significant digit (``cell = sum(level[g] * L ** (G - 1 - g))``).

Per cell the table holds the validation accuracy under two protocols (``"finetuned"``: the
boards' 32 Adam steps before scoring, seeded by the cell's number; ``"raw"``: none), both as
correct counts of the protocol's ``eval_samples`` images, the exact parameter and FLOPs ratios,
and a CPU latency measured once on the build machine (a measurement, not a replayable value).
Per *prefix* (the groups decided so far) it holds the analytic estimates PruneEnv's observation
reads, so the tabulated env observes exactly what the live one does. A stratified sample of
cells also carries the test accuracy after the boards' final fine-tune: how well the table's
score predicts what a user ships (:meth:`Table.fidelity`).

The file is one compressed ``.npz`` (no pickles) with a JSON header: the recipe, the protocol,
the checkpoint and the code version that built it.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prune_env.errors import TableError
from prune_env.scored import ScoringProtocol

FORMAT = 1
DATA_DIR = Path(__file__).parent / "data"
COLUMNS = ("finetuned", "raw")  # the scoring protocols a table holds
BUDGETS = ("params", "flops", "latency")  # the cost columns (ratios to the dense network)
ESTIMATE_KINDS = ("params", "flops")  # the analytic estimates of PruneEnv's observation
CELL_ARRAYS = ("correct_finetuned", "correct_raw", "params_ratio", "flops_ratio", "latency_ms")
STATIC_ARRAYS = ("descriptors", "summaries", "importance", "importance_offsets")
FINAL_ARRAYS = ("final_cells", "final_test_accuracy", "final_val_accuracy")


@dataclass(frozen=True)
class Optimum:
    """The best feasible cell of a table for one budget and limit (ties: the cheaper, then the
    lower-numbered cell)."""

    cell: int
    levels: tuple[int, ...]  # level index per group
    keep: tuple[float, ...]  # keep fraction per group
    accuracy: float
    cost: float
    budget: str
    limit: float
    column: str


def prefix_offsets(num_groups: int, num_levels: int) -> np.ndarray:
    """Where the prefixes of each length start in the prefix arrays: length ``t`` (``t`` groups
    decided) holds ``L ** t`` prefixes, numbered in mixed radix like cells."""
    sizes = [num_levels**t for t in range(num_groups + 1)]
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def nearest_level(midpoints: list[float], ratio: float) -> int:
    """The index of the level nearest ``ratio`` given the midpoints between consecutive levels
    (the lower level on a tie): how every ratio is snapped to a table's grid."""
    return bisect_left(midpoints, ratio)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (ties share their average rank)."""
    rx, ry = _ranks(np.asarray(x, dtype=np.float64)), _ranks(np.asarray(y, dtype=np.float64))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


class Table:
    """One task's pruning table (see the module docstring). ``Table.for_task(name)`` loads a
    shipped one; ``Table.load(path)`` any file ``prune-env table build`` wrote."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray]):
        self.meta = dict(meta)
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        self._check()
        self.levels = np.asarray(self.meta["levels"], dtype=np.float64)
        self.group_names: list[str] = [g["name"] for g in self.meta["groups"]]
        self.widths = np.asarray([g["width"] for g in self.meta["groups"]], dtype=np.int64)
        self.units = np.asarray(
            [[max(int(round(level * w)), 1) for level in self.levels] for w in self.widths], dtype=np.int64
        )
        self.midpoints: list[float] = ((self.levels[1:] + self.levels[:-1]) / 2).tolist()
        self.offsets = prefix_offsets(self.num_groups, self.num_levels)
        self._radix = self.num_levels ** np.arange(self.num_groups - 1, -1, -1, dtype=np.int64)
        offsets = self.arrays["importance_offsets"]
        self.importance = [
            self.arrays["importance"][offsets[g] : offsets[g + 1]] for g in range(self.num_groups)
        ]
        # Kept unit indices per group and level: the largest-L1 units, as PruneProblem.keep_largest.
        self.kept = [
            [np.sort(np.argsort(-imp, kind="stable")[:n]) for n in self.units[g]]
            for g, imp in enumerate(self.importance)
        ]

    # --- what the table is -------------------------------------------------------------------

    @property
    def task(self) -> str:
        return self.meta["task"]

    @property
    def num_groups(self) -> int:
        return len(self.meta["groups"])

    @property
    def num_levels(self) -> int:
        return len(self.meta["levels"])

    @property
    def num_cells(self) -> int:
        return self.num_levels**self.num_groups

    def protocol(self, column: str = "finetuned") -> ScoringProtocol:
        """The scoring protocol of an accuracy column."""
        self._check_column(column)
        return ScoringProtocol(**self.meta["protocols"][column])

    # --- cells -------------------------------------------------------------------------------

    def cell(self, levels) -> int:
        """The number of the cell with these level indices (one per group)."""
        levels = np.asarray(levels, dtype=np.int64)
        if levels.shape != (self.num_groups,) or levels.min() < 0 or levels.max() >= self.num_levels:
            raise TableError(
                f"a cell is one level index in [0, {self.num_levels}) per group ({self.num_groups} groups), got {levels.tolist()}"
            )
        return int(levels @ self._radix)

    def cell_levels(self, cell: int) -> tuple[int, ...]:
        """The level index of each group in ``cell``."""
        if not 0 <= int(cell) < self.num_cells:
            raise TableError(f"cell must be in [0, {self.num_cells}), got {cell}")
        return tuple(int(cell) // int(r) % self.num_levels for r in self._radix)

    def accuracy(self, column: str = "finetuned") -> np.ndarray:
        """Every cell's validation accuracy under a protocol, exactly as the live score returns it
        (correct / eval_samples)."""
        self._check_column(column)
        return self.arrays[f"correct_{column}"] / self.meta["protocols"][column]["eval_samples"]

    def cost(self, budget: str = "params") -> np.ndarray:
        """Every cell's ratio to the dense network for ``"params"``, ``"flops"`` or ``"latency"``."""
        if budget not in BUDGETS:
            raise TableError(f"a table's budgets are {BUDGETS}, got {budget!r}")
        if budget == "latency":
            return self.arrays["latency_ms"] / float(self.meta["dense_latency_ms"])
        return self.arrays[f"{budget}_ratio"]

    def masks(self, cell: int) -> dict[str, list[int]]:
        """Group name -> kept unit indices of a cell (the form of ``ScoredMask.masks``)."""
        return {
            name: self.kept[g][level].tolist()
            for g, (name, level) in enumerate(zip(self.group_names, self.cell_levels(cell)))
        }

    def optimum(self, budget: str = "params", limit: float = 0.1, column: str = "finetuned") -> Optimum:
        """The most accurate cell whose ``budget`` ratio is at most ``limit``: the known optimum
        regret is measured against. Raises :class:`TableError` when no cell fits."""
        cost, acc = self.cost(budget), self.accuracy(column)
        feasible = np.flatnonzero(cost <= float(limit))
        if feasible.size == 0:
            raise TableError(
                f"no cell of {self.task}'s table has {budget} <= {limit:g} (the smallest is {cost.min():.4f})"
            )
        # most accurate, then cheapest, then lowest-numbered
        best = feasible[np.lexsort((feasible, cost[feasible], -acc[feasible]))[0]]
        levels = self.cell_levels(int(best))
        return Optimum(
            cell=int(best), levels=levels, keep=tuple(float(self.levels[j]) for j in levels),
            accuracy=float(acc[best]), cost=float(cost[best]), budget=budget, limit=float(limit), column=column,
        )  # fmt: skip

    def fidelity(self, column: str = "finetuned", *, resamples: int = 2000, seed: int = 0) -> dict:
        """Spearman's rho between a column and the test accuracy after the final fine-tune over
        the table's stratified sample, with a 95% bootstrap interval over cells."""
        cells = self.arrays["final_cells"]
        if cells.size < 3:
            raise TableError(
                f"{self.task}'s table has no final-fine-tune sample (build it with --final-sample)"
            )
        score, final = self.accuracy(column)[cells], self.arrays["final_test_accuracy"]
        rng = np.random.default_rng(seed)
        draws = [spearman(score[i], final[i]) for i in rng.integers(len(cells), size=(resamples, len(cells)))]
        low, high = np.nanpercentile(draws, [2.5, 97.5])
        return {
            "rho": spearman(score, final),
            "low": float(low),
            "high": float(high),
            "cells": int(cells.size),
        }

    # --- what PruneEnv's observation reads -----------------------------------------------------

    def prefix(self, levels) -> int:
        """The index in the prefix arrays of the groups decided so far (their level indices)."""
        t = len(levels)
        number = int(np.asarray(levels, dtype=np.int64) @ self._radix[self.num_groups - t :]) if t else 0
        return int(self.offsets[t]) + number

    def estimate(self, kind: str, which: str) -> np.ndarray:
        """Per prefix, PruneEnv's analytic estimate (``kind`` "params" or "flops") of the network
        with the decided groups pruned and the rest dense (``which="used"``, observation entry 11)
        or the rest keeping one unit (``"floor"``, entry 17)."""
        if kind not in ESTIMATE_KINDS or which not in ("used", "floor"):
            raise TableError(f"estimates are ({ESTIMATE_KINDS}, 'used' | 'floor'), got ({kind!r}, {which!r})")
        return self.arrays[f"estimate_{kind}_{which}"]

    # --- files -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path) -> Table:
        path = Path(path)
        if not path.is_file():
            raise TableError(f"no table at {path}: build one with `prune-env table build --task TASK`")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise TableError(f"{path} is not a pruning table (.npz without pickles): {exc}") from exc
        header = arrays.pop("meta", None)
        if header is None:
            raise TableError(f"{path} has no 'meta' header: not a pruning table")
        try:
            meta = json.loads(bytes(header).decode())
        except (ValueError, UnicodeDecodeError) as exc:
            raise TableError(f"{path}: its header is not JSON: {exc}") from exc
        return cls(meta, arrays)

    @classmethod
    def for_task(cls, task: str) -> Table:
        """The table shipped with the package for ``task``."""
        path = DATA_DIR / f"{task}.npz"
        if not path.is_file():
            raise TableError(
                f"no table ships for task {task!r}; shipped: {available() or 'none'} "
                f"(build one with `prune-env table build --task {task}`)"
            )
        return cls.load(path)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=header, **self.arrays)
        tmp.replace(path)
        return path

    # --- checks --------------------------------------------------------------------------------

    def _check_column(self, column: str) -> None:
        if column not in COLUMNS:
            raise TableError(f"a table's accuracy columns are {COLUMNS}, got {column!r}")

    def _check(self) -> None:
        meta, arrays = self.meta, self.arrays
        if not isinstance(meta, dict):
            raise TableError("a table's header must be a JSON object")
        if meta.get("format") != FORMAT:
            raise TableError(
                f"table format {meta.get('format')!r} is not {FORMAT}: rebuild it with this version"
            )
        for key in ("task", "levels", "groups", "protocols", "dense_latency_ms"):
            if key not in meta:
                raise TableError(f"the table's header lacks {key!r}")
        levels_ = np.asarray(meta["levels"], dtype=np.float64)
        if (
            levels_.ndim != 1
            or len(levels_) < 2
            or not (np.all(np.diff(levels_) > 0) and levels_[0] > 0 and levels_[-1] <= 1)
        ):
            raise TableError(f"a table's levels must increase strictly within (0, 1], got {meta['levels']}")
        widths = [int(g["width"]) for g in meta["groups"]]
        for w in widths:
            units = [max(int(round(v * w)), 1) for v in levels_]
            if len(set(units)) != len(units):
                raise TableError(
                    f"a group of width {w} keeps the same number of units at two levels ({units}): "
                    "every level of a table must be a different mask; use fewer levels"
                )
        groups, levels = len(meta["groups"]), len(meta["levels"])
        cells, prefixes = levels**groups, int(prefix_offsets(groups, levels)[-1])
        expected = {
            **{k: (cells,) for k in CELL_ARRAYS},
            **{f"estimate_{k}_{w}": (prefixes,) for k in ESTIMATE_KINDS for w in ("used", "floor")},
            "descriptors": (groups, None), "summaries": (groups, None), "importance_offsets": (groups + 1,),
            **{k: (None,) for k in FINAL_ARRAYS}, "importance": (None,),
        }  # fmt: skip
        for name, shape in expected.items():
            if name not in arrays:
                raise TableError(f"the table lacks the array {name!r}")
            got = arrays[name].shape
            if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
                raise TableError(f"table array {name!r} has shape {got}, expected {shape} (None: any)")
        if len({arrays[k].shape for k in FINAL_ARRAYS}) != 1:
            raise TableError("the final-fine-tune arrays differ in length")
        offsets = arrays["importance_offsets"]
        if offsets[0] != 0 or np.diff(offsets).tolist() != widths or offsets[-1] != len(arrays["importance"]):
            raise TableError("importance_offsets do not match the groups' widths")
        for column in COLUMNS:
            counts = arrays[f"correct_{column}"]
            n = int(meta["protocols"][column]["eval_samples"])
            if counts.dtype.kind not in "iu" or counts.min() < 0 or counts.max() > n:
                raise TableError(f"correct_{column} must hold integer counts in [0, {n}]")

    def __repr__(self) -> str:
        return f"Table(task={self.task!r}, groups={self.num_groups}, levels={self.levels.tolist()}, cells={self.num_cells})"


def available() -> list[str]:
    """The tasks a table ships for."""
    return sorted(p.stem for p in DATA_DIR.glob("*.npz"))
