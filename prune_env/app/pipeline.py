"""The main job, as named stages: select masks -> export -> fine-tune -> measure (PyTorch, then
the ONNX graph in ONNX Runtime) -> write.

``run_prune(PruneConfig(...))`` selects the mask with an RL agent, ``run_baseline`` with a classic
baseline; both then run the same :func:`finish` (export the physically pruned network, fine-tune
it, evaluate dense and pruned on the test split, measure latency on the device, write every
output), so results compare. ``evaluate_run(run_dir)`` reloads a run and re-checks its test
accuracy.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agents.registry import AGENTS
from prune_env.app.baselines import BASELINES, MATCHED, run_baseline_search
from prune_env.app.config import PruneConfig
from prune_env.app.deployment import check_deployment
from prune_env.app.envs import make_env, make_problem
from prune_env.app.outputs import write_run
from prune_env.app.policy import load_policy, propose
from prune_env.app.recovery import RecoveryRecipe, resolve_recipe
from prune_env.app.report import plot_training
from prune_env.app.search import TrainingLog, default_action_mode, search_with_agent
from prune_env.app.selection import Selection, best_feasible
from prune_env.budgets import count_macs, count_params, measure_latency
from prune_env.deploy.reload import load_pruned
from prune_env.errors import NoFeasibleMaskError, PruneEnvError
from prune_env.problem import PruneProblem
from prune_env.zoo.data import DEFAULT_VAL_SIZE, Dataset
from prune_env.zoo.pretrain import augment
from prune_env.zoo.sources import check_task, task_dataset
from prune_env.zoo.training import (
    Distillation,
    EpochsResult,
    accuracy,
    cross_entropy,
    resolve_device,
    train_epochs,
)

LATENCY_REPEATS = 30


def _check_output_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PruneEnvError(f"cannot create output directory {out}: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK):
        raise PruneEnvError(f"output directory {out} is not writable")


# --- stage 1: select masks ------------------------------------------------------------------


def run_prune(cfg: PruneConfig) -> dict:
    """The whole pipeline with an RL agent (or, with ``cfg.policy``, a trained policy's
    candidates); returns the metrics written to ``metrics.json``."""
    if cfg.policy is not None:
        return run_policy(cfg)
    if cfg.agent in BASELINES:
        return run_baseline(cfg, cfg.agent)
    if cfg.agent not in AGENTS:  # an error before any work or output
        raise ValueError(
            f"unknown agent {cfg.agent!r}; agents: {', '.join(AGENTS)}; searchers: {', '.join(BASELINES)}"
        )
    cfg = replace(cfg, task=check_task(cfg.task))
    out = Path(cfg.out)
    _check_output_dir(out)
    start = time.time()
    env = make_env(cfg, cfg.action_mode or default_action_mode(cfg.agent))

    def live_plot(log):
        if len(log.timesteps) % 5 == 1:
            plot_training(log, out / "training_curves.png", cfg.budget, cfg.limit)

    searching = time.time()
    selection, log = search_with_agent(env, cfg, on_rollout=live_plot)
    selection = replace(selection, search_seconds=time.time() - searching)
    plot_training(log, out / "training_curves.png", cfg.budget, cfg.limit)
    return finish(env.problem, cfg, selection, start, training=log)


def run_policy(cfg: PruneConfig) -> dict:
    """The pipeline with a trained policy (``cfg.policy``: a file or ``"default"``): it proposes
    ``cfg.evaluations`` candidates, scored under the protocol RL candidates are compared at
    (the schedule's last value); the best feasible one is finished as any search's."""
    policy = load_policy(cfg.policy)  # a bad file: an error before any work or output
    cfg = replace(cfg, task=check_task(cfg.task), agent=f"policy:{policy.agent}")
    out = Path(cfg.out)
    _check_output_dir(out)
    start = time.time()
    problem = make_problem(cfg)
    problem.finetune_steps = cfg.episode_finetune[-1]
    searching = time.time()
    candidates = propose(policy, problem, cfg.evaluations, seed=cfg.seed, refine=cfg.refine)
    chosen = best_feasible(candidates)
    if chosen is None:
        raise NoFeasibleMaskError(
            f"none of the policy's {len(candidates)} candidates met {cfg.budget} <= {cfg.limit:g}"
        )
    selection = Selection(chosen, evaluations=len(candidates), candidates=len(candidates),
                          feasible_candidates=sum(c.satisfied for c in candidates),
                          search_seconds=time.time() - searching)  # fmt: skip
    metrics = finish(problem, cfg, selection, start)
    return metrics


def run_baseline(cfg: PruneConfig, method: str, evaluations: int = 0) -> dict:
    """The same pipeline with a classic baseline instead of an agent (``cfg.agent`` is a label).

    Args:
        method: a name of :data:`prune_env.app.baselines.BASELINES`.
        evaluations: accuracy evaluations of the searches (:data:`MATCHED`); 0: what an RL agent
            with ``cfg.timesteps`` trains on, ``timesteps // groups`` episodes.
    """
    cfg = replace(cfg, task=check_task(cfg.task))
    out = Path(cfg.out)
    _check_output_dir(out)
    start = time.time()
    problem = make_problem(cfg)
    problem.finetune_steps = cfg.episode_finetune[-1]  # the protocol RL candidates are compared under
    if method in MATCHED and evaluations == 0:
        evaluations = max(cfg.timesteps // problem.num_groups, 1)
    searching = time.time()
    selection = run_baseline_search(problem, method, evaluations=evaluations, seed=cfg.seed)
    selection = replace(selection, search_seconds=time.time() - searching)
    if not selection.chosen.satisfied:
        raise NoFeasibleMaskError(f"{method} found no mask within {cfg.budget} <= {cfg.limit:g}")
    return finish(problem, cfg, selection, start)


# --- stages 2-5 -----------------------------------------------------------------------------


def export_network(problem: PruneProblem, selection: Selection) -> nn.Module:
    """Stage 2: the chosen masks pruned physically from the dense weights (and proven equal to
    the masked network, as every export is)."""
    return problem.export(selection.chosen.masks)


def finetune_network(
    model: nn.Module, data: Dataset, cfg: PruneConfig, teacher: nn.Module | None = None
) -> EpochsResult:
    """Stage 3: the recovery recipe (``cfg.recipe``, :mod:`prune_env.app.recovery`) on the train
    split, the best epoch by validation accuracy (epoch 0, no fine-tune, included); with
    ``cfg.distill``, distilled from ``teacher`` (the dense network)."""
    if cfg.distill and teacher is None:
        raise ValueError("distillation (cfg.distill) needs the dense network as teacher")
    recipe = recovery_recipe(cfg)
    device = next(model.parameters()).device
    val = tuple(t.to(device) for t in data.val.tensors())
    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay, nesterov=True
        )
    total = recipe.epochs * (len(data.train) // recipe.batch_size)
    scheduler = None
    if total > 0 and recipe.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    elif total > 0:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total)
    transform = None
    if recipe.augment:
        generator = torch.Generator().manual_seed(cfg.seed)
        transform = lambda x: augment(x, generator)  # noqa: E731

    def log(epoch: int, acc: float) -> None:
        if cfg.progress:
            print(f"fine-tune epoch {epoch}/{recipe.epochs}: validation accuracy {acc:.4f}")

    return train_epochs(
        model, data.train, val, optimizer, epochs=recipe.epochs, batch_size=recipe.batch_size,
        rng=np.random.default_rng(cfg.seed), scheduler=scheduler, transform=transform, include_start=True, log=log,
        loss=Distillation(teacher, cfg.distill_temperature, cfg.distill_weight) if cfg.distill else cross_entropy,
    )  # fmt: skip


def recovery_recipe(cfg: PruneConfig) -> RecoveryRecipe:
    """The run's recovery recipe, resolved for its task."""
    return resolve_recipe(cfg.recipe, cfg.task, cfg.finetune_epochs, cfg.distill)


def split_accuracies(model: nn.Module, data: Dataset) -> dict:
    """Top-1 accuracy on the full test and validation splits."""
    device = next(model.parameters()).device
    test_x, test_y = (t.to(device) for t in data.test.tensors())
    val_x, val_y = (t.to(device) for t in data.val.tensors())
    return {"test_accuracy": accuracy(model, test_x, test_y), "val_accuracy": accuracy(model, val_x, val_y)}


def measure_network(model: nn.Module, data: Dataset, example: torch.Tensor, latency_batch: int) -> dict:
    """Stage 4: test and validation accuracy, parameters, MACs (one input) and median latency."""
    latency_input = example[:1].repeat(latency_batch, *([1] * (example.dim() - 1)))
    return {
        **split_accuracies(model, data),
        "params": count_params(model),
        "macs": count_macs(model, example[:1]),
        "latency_ms": 1000 * measure_latency(model, latency_input, repeats=LATENCY_REPEATS),
    }


def finish(
    problem: PruneProblem,
    cfg: PruneConfig,
    selection: Selection,
    start: float,
    training: TrainingLog | None = None,
) -> dict:
    """Stages 2-5 for the chosen mask; returns the metrics (also written to ``metrics.json``),
    with an agent's per-rollout training curves when given."""
    chosen = selection.chosen
    data = task_dataset(cfg.task, cfg.data_dir, cfg.val_size)
    pruned = export_network(problem, selection)
    before = split_accuracies(pruned, data)
    tuned = finetune_network(pruned, data, cfg, teacher=problem.model)
    dense = measure_network(
        problem.model, data, problem.example_inputs, cfg.latency_batch
    )  # dense first, as before
    after = measure_network(pruned, data, problem.example_inputs, cfg.latency_batch)
    deployment = check_deployment(problem.model, pruned, data.test.tensors()[0], cfg.latency_batch)
    metrics = {
        "task": cfg.task,
        "agent": cfg.agent,
        "seed": cfg.seed,
        "timesteps": cfg.timesteps,
        "search": selection.summary(),
        **({"training": asdict(training)} if training is not None else {}),
        "selected": chosen.to_dict(),
        "finetune_epochs": recovery_recipe(cfg).epochs,
        "recovery": asdict(recovery_recipe(cfg)),
        "best_finetune_epoch": tuned.best_epoch,
        "device": str(problem.device),
        "latency_batch": cfg.latency_batch,
        "checkpoint_sha256": problem.checkpoint.get("sha256"),
        "out": str(cfg.out),
        "groups": problem.group_names,
        "dense_widths": [g.width for g in problem.groups],
        "pruned_widths": [chosen.widths[g.name] for g in problem.groups],
        "budget": {
            "name": cfg.budget,
            "limit": cfg.limit,
            "value": chosen.cost,
            "satisfied": chosen.satisfied,
        },
        "dense": dense,
        "pruned": {
            **after,
            "test_accuracy_before_finetune": before["test_accuracy"],
            "val_accuracy_before_finetune": before["val_accuracy"],
            "val_accuracy_after_finetune": tuned.best_accuracy,
        },
        "onnx_runtime": deployment.metrics,
        "config": asdict(cfg),
    }
    metrics["wall_seconds"] = time.time() - start
    write_run(Path(cfg.out), copy.deepcopy(pruned), deployment, metrics)
    return metrics


def evaluate_run(run_dir: str | os.PathLike, device: str = "auto") -> tuple[float, float]:
    """(recomputed, reported) pruned test accuracy of a finished run, reloaded without unpickling
    (:func:`prune_env.load_pruned`)."""
    run = Path(run_dir)
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file():
        raise PruneEnvError(f"{metrics_path} not found: is {run} the --out of a finished `prune-env prune`?")
    metrics = json.loads(metrics_path.read_text())
    config = metrics["config"]
    dev = resolve_device(device)
    model = load_pruned(run, device=str(dev), data_dir=config.get("data_dir"))
    data = task_dataset(metrics["task"], config.get("data_dir"), config.get("val_size", DEFAULT_VAL_SIZE))
    x, y = (t.to(dev) for t in data.test.tensors())
    return accuracy(model, x, y), float(metrics["pruned"]["test_accuracy"])
