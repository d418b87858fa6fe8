"""Tasks the user brings: ``FILE.py:FUNCTION``, ``package.module:FUNCTION``, or a name that an
installed package registers in the entry-point group ``prune_env.tasks``.

``FUNCTION()`` returns a mapping with ``model`` (a trained ``nn.Module``), ``train``, ``val`` and
``test`` (each ``(inputs, labels)`` tensors, a map-style torch ``Dataset`` or a ``DataLoader`` over
one) and optionally ``example_inputs`` (a batch for tracing). Every check happens when the task is
loaded, before any work or output, and a problem is one :class:`InvalidTaskError` line that says
what was found and what was expected.

The reference is the task's name everywhere (``PruneEnv(task=...)``, ``prune-env prune --task``,
leaderboard ``tasks:``, ``masks.json``); a file reference is made absolute, so a run directory
can be re-evaluated from any working directory. A user task has no checkpoint file: its
``checkpoint["sha256"]`` is a digest of the model's state dict, so a run's masks are only ever
re-applied to the same weights.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from prune_env.errors import InvalidTaskError

ENTRY_POINT_GROUP = "prune_env.tasks"
SPLITS = ("train", "val", "test")
DATA_FORMS = "(inputs, labels) tensors, a map-style torch Dataset, or a DataLoader over one"


class TensorSplit:
    """A split held as ``(inputs, labels)`` tensors."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor):
        self.inputs, self.labels = inputs, labels.long()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def tensors(self, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        end = len(self) if count is None else min(int(count), len(self))
        return self.inputs[:end], self.labels[:end]

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return self.inputs[idx], self.labels[idx]


class DatasetSplit:
    """A split read item by item from a map-style torch ``Dataset`` (its transforms apply)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def tensors(self, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        end = len(self) if count is None else min(int(count), len(self))
        return self.batch(range(end))

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self.dataset[int(i)] for i in indices]
        inputs = torch.stack([torch.as_tensor(x) for x, _ in items])
        return inputs, torch.as_tensor([int(y) for _, y in items], dtype=torch.long)


@dataclass(frozen=True)
class UserData:
    """A user task's three splits, shaped like the zoo's :class:`prune_env.zoo.data.Dataset`."""

    name: str
    train: TensorSplit | DatasetSplit
    val: TensorSplit | DatasetSplit
    test: TensorSplit | DatasetSplit
    num_classes: int
    source: str


@dataclass(frozen=True)
class UserTask:
    reference: str  # canonical: an absolute file path, a module path, or an entry-point name
    model: nn.Module
    data: UserData
    example_inputs: torch.Tensor
    checkpoint: dict


def is_reference(name: str) -> bool:
    """``FILE.py:FUNCTION`` or ``package.module:FUNCTION``."""
    return ":" in name


def entry_point_tasks() -> dict[str, importlib.metadata.EntryPoint]:
    """Named tasks that installed packages register in the ``prune_env.tasks`` group."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def canonical_reference(name: str) -> str:
    """A file reference with its path made absolute; other names unchanged."""
    if not is_reference(name):
        return name
    target, _, function = name.rpartition(":")
    if target.endswith(".py"):
        return f"{Path(target).expanduser().resolve()}:{function}"
    return name


def load_user_task(name: str) -> UserTask:
    """The task a reference or entry-point name stands for, checked (cached per process: the
    function runs once however many environments use it)."""
    return _load_cached(canonical_reference(name))


@functools.lru_cache(maxsize=8)
def _load_cached(reference: str) -> UserTask:
    function = _task_function(reference)
    try:
        returned = function()
    except Exception as exc:
        raise InvalidTaskError(f"task {reference!r}: calling it raised {type(exc).__name__}: {exc}") from exc
    return _checked(reference, returned)


def _task_function(reference: str):
    """The callable a reference names (imports the file or module)."""
    if not is_reference(reference):
        points = entry_point_tasks()
        if reference not in points:
            raise InvalidTaskError(f"no task {reference!r} in entry-point group {ENTRY_POINT_GROUP!r}")
        try:
            function = points[reference].load()
        except Exception as exc:
            raise InvalidTaskError(
                f"task {reference!r} (entry point {points[reference].value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return _callable(reference, function)
    target, _, attribute = reference.rpartition(":")
    module = (
        _import_file(reference, Path(target)) if target.endswith(".py") else _import_module(reference, target)
    )
    if not hasattr(module, attribute):
        raise InvalidTaskError(f"task {reference!r}: {target} defines no {attribute!r}")
    return _callable(reference, getattr(module, attribute))


def _callable(reference: str, function):
    if not callable(function):
        raise InvalidTaskError(f"task {reference!r} is a {type(function).__name__}, not a function")
    return function


def _import_file(reference: str, path: Path):
    """Import a task file as a module of its own (registered in ``sys.modules`` under a name
    derived from its path, so its classes pickle); its folder is importable while it loads."""
    if not path.is_file():
        raise InvalidTaskError(f"task {reference!r}: no file {path}")
    name = "prune_env_user_task_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InvalidTaskError(
            f"task {reference!r}: importing {path} raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        sys.path.remove(str(path.parent))
    return module


def _import_module(reference: str, module_name: str):
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise InvalidTaskError(
            f"task {reference!r}: importing module {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc


def _split(reference: str, key: str, data) -> TensorSplit | DatasetSplit:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(torch.is_tensor(t) for t in data):
        inputs, labels = data
        if len(inputs) != len(labels):
            raise InvalidTaskError(
                f"task {reference!r}: {key} has {len(inputs)} inputs but {len(labels)} labels"
            )
        split = TensorSplit(inputs, labels)
    else:
        dataset = data.dataset if isinstance(data, DataLoader) else data
        if isinstance(dataset, IterableDataset) or not (
            hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")
        ):
            raise InvalidTaskError(
                f"task {reference!r}: {key} is a {type(data).__name__}; expected {DATA_FORMS}"
            )
        split = DatasetSplit(dataset)
    if len(split) == 0:
        raise InvalidTaskError(f"task {reference!r}: {key} is empty")
    return split


def _checked(reference: str, returned) -> UserTask:
    """The returned mapping, checked: keys, types, and that the model runs on each split's
    inputs and gives one score per class for every label."""
    if not isinstance(returned, Mapping):
        raise InvalidTaskError(
            f"task {reference!r} returned a {type(returned).__name__}; expected a mapping with keys "
            f"'model', 'train', 'val', 'test' (and optionally 'example_inputs')"
        )
    missing = [k for k in ("model", *SPLITS) if k not in returned]
    if missing:
        raise InvalidTaskError(f"task {reference!r} returned keys {sorted(returned)}; missing {missing}")
    model = returned["model"]
    if not isinstance(model, nn.Module):
        raise InvalidTaskError(f"task {reference!r}: 'model' is a {type(model).__name__}, not an nn.Module")
    splits = {k: _split(reference, k, returned[k]) for k in SPLITS}
    model = model.cpu().eval()
    num_classes = 0
    for key, split in splits.items():
        inputs, labels = split.tensors(2)
        try:
            with torch.no_grad():
                logits = model(inputs.float() if not inputs.is_floating_point() else inputs)
        except Exception as exc:
            raise InvalidTaskError(
                f"task {reference!r}: the model fails on {key} inputs of shape {tuple(inputs.shape)}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            ) from exc
        if not torch.is_tensor(logits) or logits.dim() != 2 or logits.shape[0] != len(inputs):
            shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
            raise InvalidTaskError(
                f"task {reference!r}: the model maps {key} inputs {tuple(inputs.shape)} to {shape}; "
                f"expected class scores of shape ({len(inputs)}, classes)"
            )
        num_classes = int(logits.shape[1])
        bad = split.labels if isinstance(split, TensorSplit) else labels
        if int(bad.min()) < 0 or int(bad.max()) >= num_classes:
            raise InvalidTaskError(
                f"task {reference!r}: {key} labels span {int(bad.min())}..{int(bad.max())}, but the model "
                f"scores {num_classes} classes"
            )
    example = returned.get("example_inputs")
    if example is None:
        example = splits["val"].tensors(2)[0]
    elif not torch.is_tensor(example):
        raise InvalidTaskError(
            f"task {reference!r}: 'example_inputs' is a {type(example).__name__}, not a tensor"
        )
    data = UserData(reference, splits["train"], splits["val"], splits["test"], num_classes, "user")
    checkpoint = {"sha256": state_dict_sha256(model), "reference": reference}
    return UserTask(reference, model, data, example, checkpoint)


def state_dict_sha256(model: nn.Module) -> str:
    """A digest of a model's parameters and buffers (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
