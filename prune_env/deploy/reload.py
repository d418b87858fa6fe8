"""Reloading a pruned network without unpickling code.

``pruned_model.pt`` is a pickle: loading it runs whatever code the file names, so a run directory
from elsewhere is a security risk. :func:`load_pruned` instead rebuilds the architecture from the
task's dense checkpoint and ``masks.json`` (physically pruned and proven like every export), then
loads ``pruned_state_dict.pt`` with ``torch.load(weights_only=True)``: tensors only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from prune_env.errors import PruneEnvError
from prune_env.problem import PruneProblem


def load_pruned(run_dir: str | os.PathLike, *, device: str = "cpu", data_dir=None) -> nn.Module:
    """The fine-tuned, physically pruned network of a ``prune-env prune`` run, in eval mode.

    Raises:
        PruneEnvError: a file is missing, the checkpoint is not the one the run pruned, or the
            weights do not fit the widths of ``masks.json``.
    """
    run = Path(run_dir)
    masks_path, weights_path = run / "masks.json", run / "pruned_state_dict.pt"
    for path in (masks_path, weights_path):
        if not path.is_file():
            raise PruneEnvError(f"{path} not found: is {run} the --out of a finished `prune-env prune`?")
    record = json.loads(masks_path.read_text())
    problem = PruneProblem(record["task"], eval_samples=2, data_dir=data_dir, device=device)
    if problem.checkpoint.get("sha256") != record.get("checkpoint_sha256"):
        raise PruneEnvError(
            f"{run} was pruned from checkpoint {str(record.get('checkpoint_sha256'))[:12]}, but task "
            f"{record['task']!r} now loads {str(problem.checkpoint.get('sha256'))[:12]}: the masks do not apply"
        )
    widths = {g.name: len(record["masks"].get(g.name, range(g.width))) for g in problem.groups}
    if widths != record["widths"]:
        raise PruneEnvError(
            f"masks.json is inconsistent: its masks give widths {widths}, it says {record['widths']}"
        )
    return pruned_with_weights(problem, record["masks"], weights_path)


def pruned_with_weights(problem: PruneProblem, masks: dict, weights_path: Path) -> nn.Module:
    """``problem.export(masks)`` (the proven architecture) with a state dict loaded tensors-only.

    Raises:
        PruneEnvError: the weights do not fit that architecture.
    """
    network = problem.export(masks)
    try:
        network.load_state_dict(torch.load(weights_path, map_location=problem.device, weights_only=True))
    except RuntimeError as exc:
        raise PruneEnvError(
            f"{weights_path} does not fit the pruned architecture: {str(exc).splitlines()[0]}"
        ) from exc
    return network.eval()
