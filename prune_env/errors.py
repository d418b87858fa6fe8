"""The one hierarchy of errors raised by prune_env.

Every message says what was received, what was expected and how to fix it.
"""

from __future__ import annotations


class PruneEnvError(Exception):
    """Base class of every error prune_env raises on purpose."""


class InvalidActionError(PruneEnvError, ValueError):
    """An action does not fit the action space; the environment is left unchanged."""


class UnsupportedModelError(PruneEnvError, ValueError):
    """A model (or one of its layers) cannot be pruned exactly: masked and physically pruned
    networks would disagree, or structural pruning fails."""


class AnalysisTooCostlyError(UnsupportedModelError):
    """Finding a model's prunable groups went past its bound of memory or time (the stage and
    how to lower the cost are in the message). ``bound`` says which: "indices" (one group's
    search) or "seconds" (the whole search)."""

    def __init__(self, message: str, bound: str = "seconds"):
        super().__init__(message)
        self.bound = bound

    def __reduce__(self):  # keep ``bound`` across processes
        return type(self), (str(self), self.bound)


class PruningMismatchError(PruneEnvError, RuntimeError):
    """A physically pruned network disagreed with its masked twin (a pruning-library defect)."""


class UnknownTaskError(PruneEnvError, KeyError):
    """A task name that is not in the zoo."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetNotFoundError(PruneEnvError, FileNotFoundError):
    """A dataset is neither on disk nor downloadable."""


class CheckpointNotFoundError(PruneEnvError, FileNotFoundError):
    """A task's trained weights are missing (CIFAR tasks must be pretrained first)."""


class BudgetError(PruneEnvError, ValueError):
    """A budget specification or a budget's value is invalid."""


class MissingCostError(PruneEnvError, KeyError):
    """An environment step reported no cost in ``info`` (``"cost"`` or ``"costs"``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidRecordError(PruneEnvError, ValueError):
    """A stored record (a scored mask, a results entry) is missing fields or malformed."""


class NotApplicableError(PruneEnvError, ValueError):
    """A method does not apply to this network (e.g. a BatchNorm criterion without BatchNorm)."""


class NoFeasibleMaskError(PruneEnvError):
    """A search found no mask within the budget."""


class InvalidTaskError(PruneEnvError, ValueError):
    """A user task (``FILE.py:FUNCTION``, ``module:FUNCTION`` or an entry point) cannot be
    imported, or its function returns something that is not a usable task."""


class MissingDependencyError(PruneEnvError, ImportError):
    """An optional dependency a feature needs is not installed (the message names the extra)."""


class TableError(PruneEnvError, ValueError):
    """A pruning table is missing, malformed, incomplete, or asked for a mask it does not hold."""


class TableMismatchError(TableError):
    """A cell re-scored by the live environment disagrees with its tabulated value."""
