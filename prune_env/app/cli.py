"""``prune-env``: the command line (thin: it parses, then calls library functions).

Subcommands: ``prune`` (the main job), ``train-policy``, ``pretrain``, ``tasks``, ``agents``, ``evaluate``,
``table build | verify | show`` (the tabulated benchmarks).
Bad input ends with a one-line ``error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from agents.registry import AGENTS
from prune_env.app.baselines import SEARCHER_INFO
from prune_env.app.config import PruneConfig
from prune_env.app.pipeline import evaluate_run, run_prune
from prune_env.app.policy import train_policy
from prune_env.app.tables import build_table, describe, verify_table
from prune_env.errors import PruneEnvError, TableMismatchError
from prune_env.limits import parse_limit_text
from prune_env.tabular.table import Table
from prune_env.zoo.pretrain import pretrain
from prune_env.zoo.tasks import FAMILY, TASKS, checkpoint_path
from prune_env.zoo.user_tasks import ENTRY_POINT_GROUP, entry_point_tasks


def _schedule(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,32,128, got {text!r}"
        ) from exc
    if any(s < 0 for s in steps):
        raise argparse.ArgumentTypeError("fine-tune steps must be >= 0")
    return steps


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# `prune-env prune` options that set a PruneConfig field of the same name; their defaults are
# PruneConfig's, so the command line, the pipeline and the leaderboard cannot disagree.
PRUNE_OPTIONS = [
    ("--task", str, "a task of `prune-env tasks`, or your own: FILE.py:FUNCTION or package.module:FUNCTION"),
    ("--limit", float, "largest allowed ratio, in (0, 1]"),
    ("--agent", str, "an agent or searcher of `prune-env agents` (searches spend timesteps // groups evaluations)"),
    ("--timesteps", _positive_int, "agent training steps"),
    ("--recipe", str, "recovery fine-tune: quick (Adam, cosine, 2 epochs) or full (the task's pretraining recipe)"),
    ("--finetune-epochs", int, "epochs of the recovery fine-tune (default: the recipe's)"),
    ("--distill-temperature", float, "softening temperature of --distill"),
    ("--distill-weight", float, "weight of the distillation term of --distill (the labels get 1 - weight)"),
    ("--episode-finetune", _schedule,
     "per-episode fine-tune steps over equal parts of training (the paper: 0,32,128; none: 0)"),
    ("--eval-samples", _positive_int, "validation images per reward"),
    ("--seed", int, "seed of the environment, the agent and the fine-tune"),
    ("--n-envs", _positive_int, "environments the agent learns from (each in its own process when > 1)"),
    ("--out", str, "output directory"),
    ("--latency-batch", _positive_int, "batch size of the reported latency"),
    ("--tensorboard", str, "write TensorBoard logs of the search here (`tensorboard --logdir DIR`)"),
    ("--policy", str, "a trained policy instead of training an agent: a file of `prune-env train-policy`, "
                      "or 'default' (the shipped one)"),
    ("--evaluations", _positive_int, "with --policy: candidates the policy proposes (deterministic first)"),
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    defaults = PruneConfig()
    parser = argparse.ArgumentParser(
        prog="prune-env", description="Prune neural networks under compute budgets with constrained RL."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prune", help="train an agent, prune to the budget, fine-tune, report (the main job)")
    for flag, kind, text in PRUNE_OPTIONS:
        default = getattr(defaults, flag[2:].replace("-", "_"))
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        p.add_argument(flag, type=kind, default=default, help=f"{text} (default {shown})")
    p.add_argument("--budget", default=defaults.budget, choices=["params", "flops", "latency", "ort-latency"],
                   help="budget kind, a pruned/dense ratio (default %(default)s)")  # fmt: skip
    p.add_argument("--action-mode", choices=["mask", "ratio"], default=None, help="default: the agent's own")
    p.add_argument("--observation", choices=["auto", "units", "summary"], default=defaults.observation,
                   help="the env's observation (auto: the summary in ratio mode, per-unit in mask mode)")  # fmt: skip
    _add_data_options(p)
    p.add_argument(
        "--refine",
        action="store_true",
        help="with --policy: its deterministic answer, then a local search from it, instead of samples",
    )
    p.add_argument("--distill", action="store_true",
                   help="fine-tune against the dense network's softened outputs as well as the labels")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("pretrain", help="train a task's dense network and cache its checkpoint")
    p.add_argument("--task", required=True)
    p.add_argument("--epochs", type=_positive_int, default=None)
    p.add_argument("--seed", type=int, default=0)
    _add_data_options(p)
    p.add_argument("--out", default=None, help="checkpoint path (default: the task's cache path)")

    p = sub.add_parser("train-policy", help="train one policy over many networks and budgets, for --policy")
    p.add_argument(
        "--tasks",
        nargs="+",
        default=["train"],
        help="tasks, or 'train' for the family's training members (default %(default)s)",
    )
    p.add_argument(
        "--budget",
        action="append",
        type=_budget_limits,
        metavar="KIND=LIMITS",
        help="a budget kind and its limits: params=0.05:0.3 (a range) or flops=0.2,0.4 (a list); "
        "repeat for several kinds (default params=0.05:0.3)",
    )
    p.add_argument("--agent", default="ppo-lag-scaled", help="an actor-critic agent of `prune-env agents`")
    p.add_argument("--timesteps", type=_positive_int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--bn-recalibration",
        type=int,
        default=8,
        help="batches of BatchNorm re-estimation before a training episode is scored",
    )
    p.add_argument(
        "--finetune-steps", type=int, default=0, help="fine-tune steps before a training episode is scored"
    )
    p.add_argument("--envs-per-budget", type=_positive_int, default=1)
    p.add_argument("--out", default="policy.zip")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    sub.add_parser("tasks", help="list the task zoo and the tasks installed packages register")
    sub.add_parser("agents", help="list the registered agents")

    p = sub.add_parser("evaluate", help="reload a run's exported model and re-check its test accuracy")
    p.add_argument("run_dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--tolerance", type=float, default=1e-4)

    p = sub.add_parser("table", help="build, verify or describe a pruning table (PruneEnv-Tabular-v0)")
    table = p.add_subparsers(dest="table_command", required=True)
    q = table.add_parser("build", help="score every cell of a task's keep-level grid (resumable)")
    q.add_argument("--task", required=True)
    q.add_argument(
        "--levels", type=_positive_int, default=None, help="keep levels per group (default 5; MLP 32)"
    )
    q.add_argument("--workers", type=_positive_int, default=1, help="processes, one torch thread each")
    q.add_argument("--final-sample", type=int, default=200, help="cells given the boards' final fine-tune")
    q.add_argument("--out", default=None, help="the table file (default tables/TASK.npz)")
    q.add_argument("--work", default=None, help="the resumable work folder (default: next to --out)")
    q.add_argument("--data-dir", default=None)
    for name, help_text in (("verify", "re-score random cells live and fail on any difference"),
                            ("show", "describe a table: size, protocol, optima, fidelity")):  # fmt: skip
        q = table.add_parser(name, help=help_text)
        q.add_argument("--task", default=None, help="a task a table ships for")
        q.add_argument("--table", default=None, help="a table file instead of a shipped one")
        if name == "verify":
            q.add_argument("--cells", type=_positive_int, default=20)
            q.add_argument("--seed", type=int, default=0)
            q.add_argument("--data-dir", default=None)
    return parser


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Where the data is, how it is split, and where the network runs (prune and pretrain)."""
    p.add_argument("--data-dir", default=None, help="where the dataset is (default: searched)")
    p.add_argument(
        "--val-size",
        type=_positive_int,
        default=PruneConfig.val_size,
        help="validation images held out of the training set",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")


def _prune(args) -> int:
    given = {f.name: getattr(args, f.name) for f in fields(PruneConfig) if hasattr(args, f.name)}
    cfg = PruneConfig(**given, progress=not args.no_progress)
    metrics = run_prune(cfg)
    d, p = metrics["dense"], metrics["pruned"]
    print(
        f"pruned {metrics['task']}: test accuracy {d['test_accuracy']:.2%} -> {p['test_accuracy']:.2%}, "
        f"params {d['params']:,} -> {p['params']:,} ({metrics['budget']['name']} {metrics['budget']['value']:.4f} "
        f"<= {metrics['budget']['limit']:g}), latency {d['latency_ms']:.2f} -> {p['latency_ms']:.2f} ms; "
        f"wall {metrics['wall_seconds']:.0f} s. Report: {metrics['out']}/report.md"
    )
    ort = metrics["onnx_runtime"]
    if "parity" in ort:
        same = "matches PyTorch" if ort["parity"]["matches"] else "DOES NOT MATCH PyTorch"
        print(
            f"ONNX Runtime: pruned_model.onnx {same}; latency {ort['dense_latency_ms']:.2f} -> {ort['pruned_latency_ms']:.2f} ms"
        )
    return 0


def _budget_limits(text: str) -> tuple[str, object]:
    kind, sep, limits = text.partition("=")
    if not sep or not kind or not limits:
        raise argparse.ArgumentTypeError(f"expected KIND=LIMITS such as params=0.05:0.3, got {text!r}")
    try:
        return kind, parse_limit_text(limits)
    except PruneEnvError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _train_policy(args) -> int:
    tasks = [t for name in args.tasks for t in (FAMILY["train"] if name == "train" else [name])]
    budgets = dict(args.budget or [("params", (0.05, 0.3))])
    meta = train_policy(
        tasks, budgets, agent=args.agent, timesteps=args.timesteps, seed=args.seed, out=args.out,
        finetune_steps=args.finetune_steps, bn_recalibration=args.bn_recalibration,
        envs_per_budget=args.envs_per_budget, progress=not args.no_progress,
    )  # fmt: skip
    print(
        f"policy {args.out}: {meta['agent']} on {len(meta['tasks'])} tasks x {sorted(meta['budgets'])}, "
        f"{meta['evaluations']} evaluations, {meta['cpu_seconds']:.0f} CPU s ({meta['wall_seconds']:.0f} s wall)"
    )
    return 0


def _pretrain(args) -> int:
    meta = pretrain(
        args.task,
        epochs=args.epochs,
        seed=args.seed,
        data_dir=args.data_dir,
        val_size=args.val_size,
        device=args.device,
        out=args.out,
    )
    print(f"{args.task}: validation {meta['val_accuracy']:.4f}, test {meta['test_accuracy']:.4f}")
    return 0


def _tasks(args) -> int:
    points = entry_point_tasks()
    width = max(len(name) for name in [*TASKS, *points])
    for task in TASKS.values():
        ready = "ready" if checkpoint_path(task.name).is_file() else "needs `prune-env pretrain`"
        family = [f"family: {split}" for split, names in FAMILY.items() if task.name in names]
        print(f"{task.name:{width}s}  {task.description} [{', '.join([ready, *family])}]")
    for name, point in points.items():
        package = point.dist.name if point.dist is not None else "an installed package"
        print(f"{name:{width}s}  {point.value} (entry point of {package}, group {ENTRY_POINT_GROUP})")
    return 0


def _agents(args) -> int:
    for spec in AGENTS.values():
        kind = (
            "constrained"
            if spec.constrained
            else "penalty"
            if spec.penalty
            else "clipped"
            if spec.clip_to_budget
            else ""
        )
        paper = f" [{spec.paper}]" if spec.paper else ""
        print(f"{spec.name:22s} {kind:11s} {spec.description}{paper}")
    for name, (kind, description) in SEARCHER_INFO.items():
        print(f"{name:22s} {kind:11s} {description}")
    return 0


def _evaluate(args) -> int:
    got, reported = evaluate_run(args.run_dir, device=args.device)
    ok = abs(got - reported) <= args.tolerance
    print(f"test accuracy {got:.4f} (report: {reported:.4f}) -> {'reproduced' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def _load_table(args) -> Table:
    if (args.task is None) == (args.table is None):
        raise ValueError("give --task (a shipped table) or --table FILE")
    return Table.load(args.table) if args.table else Table.for_task(args.task)


def _table(args) -> int:
    if args.table_command == "build":
        built = build_table(
            args.task, levels=args.levels, out=args.out, work=args.work, workers=args.workers,
            final_sample=args.final_sample, data_dir=args.data_dir,
        )  # fmt: skip
        if built is not None:
            print(describe(built))
        return 0 if built is not None else 1
    table = _load_table(args)
    if args.table_command == "show":
        print(describe(table))
        return 0
    differences = verify_table(table, cells=args.cells, seed=args.seed, data_dir=args.data_dir)
    for d in differences:
        print(f"cell {d['cell']}: {d['value']} table {d['table']} != live {d['live']}", file=sys.stderr)
    if differences:
        raise TableMismatchError(
            f"{len({d['cell'] for d in differences})} of {args.cells} cells of {table.task}'s table differ from "
            "the live env (1 torch thread; a different CPU or torch build can change fine-tuned scores)"
        )
    print(f"{table.task}: {args.cells} random cells re-scored live match the table exactly")
    return 0


COMMANDS = {
    "prune": _prune,
    "train-policy": _train_policy,
    "pretrain": _pretrain,
    "tasks": _tasks,
    "agents": _agents,
    "evaluate": _evaluate,
    "table": _table,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (PruneEnvError, ValueError, KeyError, OSError) as exc:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"prune-env {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
