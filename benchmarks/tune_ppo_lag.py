"""An Optuna study over PPOLag's main hyperparameters on a CPU task (issue 16: hyperparameters by
search, not by hand), the way rl-baselines3-zoo tunes SB3 agents.

    pip install optuna   # optional extra, only this script needs it
    OMP_NUM_THREADS=1 python benchmarks/tune_ppo_lag.py --trials 16
        [--task fashion-mnist-cnn --budget params --limit 0.1 --timesteps 1500 --seed 100]
        [--storage sqlite:///benchmarks/results/studies/ppo-lag-optuna.db]

A trial is one mask search exactly as a leaderboard entry runs it (same per-episode fine-tune
schedule, validation images, harvest), its value the validation accuracy of the mask the search
selects: what the board's selection maximises, before the final fine-tune and the test split,
which a study must not see. The agent is a parameter (``ppo-lag`` learns the budget through its
multiplier; ``ppo-lag-scaled`` reads actions as shares of the feasible range;
``ppo-lag-sensitive`` observes each group's pruning sensitivity), and so is the per-episode
fine-tune schedule. Trials run on a seed no board uses (100), so the study cannot fit the board's
seeds; the defaults are enqueued first (once per agent), so the table shows what tuning adds over
them. The study lives in an SQLite file (resumed by the same command: ``--trials`` counts
finished trials) and is exported to ``<storage stem>.jsonl`` and ``.md`` after every trial.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from agents.hyperparams import ppo
from benchmarks.entrypoint import run_script
from prune_env.app import PruneConfig, make_env, search_with_agent

DEFAULT_STORAGE = "sqlite:///benchmarks/results/studies/ppo-lag-optuna.db"
STUDY_NAME = "ppo-lag"
NET_ARCH = {"32x32": [32, 32], "64x64": [64, 64]}


def sample_hyperparameters(trial) -> tuple[str, list[int], dict]:
    """(agent name, per-episode fine-tune schedule, PPOLag overrides) of one trial; the ranges
    bracket the defaults (agents/hyperparams/ppo.py: lr 3e-4, n_steps 128, 10 epochs, log std -1,
    multiplier lr 5; the schedule 0,32). Candidates are compared at the schedule's last value
    (32 steps) either way; "32" fine-tunes every training episode as random search does."""
    agent = trial.suggest_categorical("agent", ["ppo-lag", "ppo-lag-scaled", "ppo-lag-sensitive"])
    schedule = [int(s) for s in trial.suggest_categorical("episode_finetune", ["0,32", "32"]).split(",")]
    n_steps = trial.suggest_categorical("n_steps", [32, 64, 128, 256])
    arch = trial.suggest_categorical("net_arch", list(NET_ARCH))
    target_kl = trial.suggest_categorical("target_kl", [0.02, 0.1, 1.0])
    overrides = dict(
        learning_rate=trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        n_steps=n_steps,
        batch_size=min(64, n_steps),
        n_epochs=trial.suggest_categorical("n_epochs", [5, 10, 20]),
        gamma=trial.suggest_categorical("gamma", [0.9, 0.99, 1.0]),
        ent_coef=trial.suggest_categorical("ent_coef", [0.0, 0.001, 0.01]),
        target_kl=target_kl,
        policy_kwargs=dict(
            net_arch=NET_ARCH[arch],
            activation_fn=torch.nn.Tanh,
            log_std_init=trial.suggest_float("log_std_init", -2.0, 0.0),
        ),
        lagrange_kwargs=dict(
            ppo.PPO_LAG["lagrange_kwargs"], lr=trial.suggest_categorical("lagrange_lr", [1.0, 5.0, 20.0])
        ),
    )
    return agent, schedule, overrides


DEFAULTS = {
    "episode_finetune": "0,32",
    "n_steps": ppo.PPO_LAG["n_steps"],
    "net_arch": "32x32",
    "target_kl": ppo.PPO_LAG["target_kl"],
    "learning_rate": ppo.PPO_LAG["learning_rate"],
    "n_epochs": ppo.PPO_LAG["n_epochs"],
    "gamma": ppo.PPO_LAG["gamma"],
    "ent_coef": ppo.PPO_LAG["ent_coef"],
    "log_std_init": ppo.PPO_LAG["policy_kwargs"]["log_std_init"],
    "lagrange_lr": ppo.PPO_LAG["lagrange_kwargs"]["lr"],
}


def objective(args):
    def run(trial) -> float:
        agent, schedule, overrides = sample_hyperparameters(trial)
        cfg = PruneConfig(
            task=args.task, budget=args.budget, limit=args.limit, agent=agent, seed=args.seed,
            timesteps=args.timesteps, episode_finetune=schedule, out=str(Path("runs") / "optuna"), progress=False,
        )  # fmt: skip
        start = time.time()
        env = make_env(cfg, "ratio")
        selection, log = search_with_agent(env, cfg, overrides=overrides)
        quarter = max(1, len(log.inside_budget) // 4)
        trial.set_user_attr("evaluations", selection.evaluations)
        trial.set_user_attr("selected_cost", selection.chosen.cost)
        trial.set_user_attr("selected_source", selection.chosen.source)
        trial.set_user_attr("inside_budget_last_quarter", float(np.mean(log.inside_budget[-quarter:])))
        trial.set_user_attr("accuracy_last_quarter", float(np.mean(log.reward[-quarter:])))
        trial.set_user_attr("wall_seconds", time.time() - start)
        return selection.chosen.accuracy

    return run


def export(study, storage: str, args) -> None:
    """The finished trials as JSONL (one per line) and a Markdown table, best first."""
    stem = Path(storage.removeprefix("sqlite:///")).with_suffix("")
    done = [t for t in study.trials if t.value is not None]
    rows = [{"number": t.number, "value": t.value, "params": t.params, **t.user_attrs} for t in done]
    stem.with_suffix(".jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    keys = list(DEFAULTS) + ["agent"]
    lines = [
        f"# Optuna study: PPOLag on {args.task}, {args.budget} <= {args.limit:g}, "
        f"{args.timesteps} timesteps, seed {args.seed}",
        "",
        f"{len(done)} finished trials (TPE, sampler seed 0; trials 0-2 are the defaults with each "
        "action parameterisation: ppo-lag, ppo-lag-scaled, ppo-lag-sensitive). Value: validation accuracy of the selected mask (the board's protocol, before the "
        "final fine-tune). Reproduce: `"
        + " ".join(["python", "benchmarks/tune_ppo_lag.py", *args.argv])
        + "`",
        "",
        "| trial | value | " + " | ".join(keys) + " | feasible share (last quarter) | s |",
        "|---|---|" + "---|" * len(keys) + "---|---|",
    ]
    for r in sorted(rows, key=lambda r: -r["value"]):
        cells = [f"{r['params'].get(k)}" if not isinstance(r["params"].get(k), float)
                 else f"{r['params'][k]:.3g}" for k in keys]  # fmt: skip
        lines.append(
            f"| {r['number']} | {100 * r['value']:.2f} | "
            + " | ".join(cells)
            + f" | {r.get('inside_budget_last_quarter', float('nan')):.2f} | {r.get('wall_seconds', 0):.0f} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=16, help="finished trials to reach (resumes)")
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--budget", default="params")
    parser.add_argument("--limit", type=float, default=0.1)
    parser.add_argument("--timesteps", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--storage", default=DEFAULT_STORAGE)
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])  # for the table's reproduce line
    try:
        import optuna
    except ImportError:
        parser.error("the study needs Optuna: pip install optuna")
    try:
        study = optuna.create_study(
            study_name=STUDY_NAME, storage=args.storage, direction="maximize", load_if_exists=True,
            sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=6),
        )  # fmt: skip
    except Exception as exc:  # Optuna's storages raise their database's own errors
        raise ValueError(
            f"--storage {args.storage}: not an Optuna study database ({type(exc).__name__})"
        ) from exc
    if not study.trials:
        study.enqueue_trial({**DEFAULTS, "agent": "ppo-lag"})
        study.enqueue_trial({**DEFAULTS, "agent": "ppo-lag-scaled"})
        study.enqueue_trial({**DEFAULTS, "agent": "ppo-lag-sensitive"})
    finished = sum(t.value is not None for t in study.trials)
    study.optimize(
        objective(args),
        n_trials=max(0, args.trials - finished),
        callbacks=[lambda s, _t: export(s, args.storage, args)],
    )
    export(study, args.storage, args)
    best = study.best_trial
    print(f"best trial {best.number}: {100 * best.value:.2f} % with {best.params}")
    return 0


if __name__ == "__main__":
    run_script(main)
