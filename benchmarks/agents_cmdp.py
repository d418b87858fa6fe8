"""How do the constrained agents behave on PruneEnv's CMDP? Training curves, not final masks.

    python benchmarks/agents_cmdp.py [--task fashion-mnist-cnn] [--budget params] [--limit 0.1]
        [--agents ...] [--seeds 0 1 2] [--timesteps 1500] [--episode-finetune 0 32]
        [--threads 1] [--set KEY=VALUE ...] [--out benchmarks/results/agents_cmdp.jsonl]

Every constrained agent of the registry (and ``ppo-penalty`` for reference) learns on the same
seeded environment, in its own action mode, under the leaderboard's per-episode fine-tune
schedule. Recorded per (agent, seed): every training episode's accuracy (the reward) and cost.
Reported per agent, mean over seeds: reward and cost over the last quarter of training, the share
of those episodes over the limit, the timesteps to the first feasible episode, wall time; and
one plot of the mean episodic cost against timesteps per agent (``AGENTS.png``). One JSON line
per (agent, seed), appended atomically: a killed run resumes. ``--report`` only rewrites
``AGENTS.md`` from the JSONL.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import torch
import yaml

import agents
from agents.registry import AGENTS
from benchmarks.entrypoint import run_script
from benchmarks.results_io import append_atomically, read_results
from prune_env.app import EpisodeRecorder, PruneConfig, make_env

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROW_KEYS = ("agent", "seed", "accuracy", "cost")  # every row of its results file


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` hyperparameters (values read as YAML: true, 0.5, [64, 64])."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects key=value, got {pair!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def label(name: str, overrides: dict) -> str:
    """The row's name: the agent, and its changed hyperparameters if any."""
    return name + ("[" + ",".join(f"{k}={v}" for k, v in overrides.items()) + "]" if overrides else "")


def run_one(args, name: str, seed: int, overrides: dict | None = None) -> dict:
    overrides = overrides or {}
    mode = "ratio" if AGENTS[name].action_space is not gym.spaces.MultiBinary else "mask"
    cfg = PruneConfig(task=args.task, budget=args.budget, limit=args.limit, agent=name, seed=seed,
                      eval_samples=args.eval_samples, episode_finetune=list(args.episode_finetune), progress=False)  # fmt: skip
    env = make_env(cfg, mode)
    model = agents.make_agent(name, env, seed=seed, device="cpu", **overrides)
    recorder = EpisodeRecorder(env, cfg.episode_finetune, args.timesteps)
    start = time.time()
    model.learn(args.timesteps, callback=recorder)
    return {
        "task": args.task, "budget": args.budget, "limit": args.limit, "agent": label(name, overrides), "seed": seed,
        "base_agent": name, "overrides": overrides,
        "timesteps": args.timesteps, "episode_finetune": list(args.episode_finetune), "action_mode": mode,
        "threads": args.threads, "wall_seconds": time.time() - start,
        "episode_steps": recorder.episode_timesteps,
        "accuracy": [e.accuracy for e in recorder.episodes], "cost": [e.cost for e in recorder.episodes],
    }  # fmt: skip


def summarize(row: dict) -> dict:
    cost, accuracy = np.asarray(row["cost"]), np.asarray(row["accuracy"])
    tail = slice(int(0.75 * len(cost)), None)
    feasible = np.flatnonzero(cost <= row["limit"])
    inside = cost[tail] <= row["limit"]
    return {
        "reward": float(accuracy[tail].mean()),
        "feasible_reward": float(accuracy[tail][inside].mean()) if inside.any() else None,
        "cost": float(cost[tail].mean()),
        "over": float((cost[tail] > row["limit"]).mean()),
        "first_feasible": int(row["episode_steps"][feasible[0]]) if feasible.size else None,
        "wall": row["wall_seconds"],
    }


def write_report(out: Path) -> Path:
    rows = read_results(out, require=ROW_KEYS, what="a row of agents_cmdp.py")
    by_agent: dict[str, list[dict]] = {}
    for r in rows:
        by_agent.setdefault(r["agent"], []).append(r)
    first = rows[0]
    lines = [
        "# Constrained agents on PruneEnv-v0",
        "",
        f"Task `{first['task']}`, {first['budget']} <= {first['limit']:g}, {first['timesteps']:,} timesteps, per-episode "
        f"fine-tune schedule {first['episode_finetune']}, {first['threads']} thread(s). Mean over seeds (+- std); reward "
        "and cost over the last quarter of training episodes.",
        "",
        "| agent | seeds | reward (accuracy) | reward of episodes within the limit | episodic cost | share over the limit | timesteps to the first feasible episode | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, group in by_agent.items():
        stats = [summarize(r) for r in group]

        def cell(key, fmt="{:.3f}", stats=stats):
            values = [s[key] for s in stats if s[key] is not None]
            if not values:
                return "never"
            spread = f" +- {fmt.format(statistics.stdev(values))}" if len(values) > 1 else ""
            return fmt.format(statistics.mean(values)) + spread

        lines.append(
            f"| {name} | {len(group)} | {cell('reward')} | {cell('feasible_reward')} | {cell('cost')} | {cell('over', '{:.2f}')} | "
            f"{cell('first_feasible', '{:.0f}')} | {cell('wall', '{:.0f}')} |"
        )
        grid = np.linspace(0, first["timesteps"], 30)
        curves = [
            np.interp(grid, r["episode_steps"], np.convolve(r["cost"], np.ones(20) / 20, mode="same"))
            for r in group
        ]
        ax.plot(grid, np.mean(curves, axis=0), label=name)
    ax.axhline(first["limit"], color="black", linestyle="--", label=f"limit {first['limit']:g}")
    ax.set_xlabel("timesteps")
    ax.set_ylabel("episodic cost (20-episode mean)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_name("AGENTS.png"), dpi=110)
    plt.close(fig)
    variants = sorted(
        {
            f"`python benchmarks/agents_cmdp.py --agents {r['base_agent']} --set "
            + " ".join(
                f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in r["overrides"].items()
            )
            + "`"
            for r in rows
            if r.get("overrides")
        }
    )
    commands = ", then ".join(["`python benchmarks/agents_cmdp.py`", *variants])
    lines += [
        "",
        "![cost against timesteps](AGENTS.png)",
        "",
        f"Commands: {commands} (rows in `{out.name}`).",
        "",
    ]
    table = out.with_name("AGENTS.md")
    table.write_text("\n".join(lines))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--budget", default="params")
    parser.add_argument("--limit", type=float, default=0.1)
    parser.add_argument("--agents", nargs="+", default=[*agents.constrained_agents(), "ppo-penalty"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--timesteps", type=int, default=1500)
    parser.add_argument("--episode-finetune", type=int, nargs="+", default=[0, 32])
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/agents_cmdp.jsonl")
    parser.add_argument("--report", action="store_true", help="only rewrite AGENTS.md from the JSONL")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE",
        help="hyperparameters changed for every agent run now (a labelled variant: ppo-lag[key=value])",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out = Path(args.out)
    if not args.report:
        torch.set_num_threads(args.threads)
        done = {
            (r["agent"], r["seed"])
            for r in read_results(out, require=ROW_KEYS, what="a row of agents_cmdp.py")
        }
        overrides = parse_overrides(args.set)
        for name in args.agents:
            for seed in args.seeds:
                if (label(name, overrides), seed) not in done:
                    row = run_one(args, name, seed, overrides)
                    append_atomically(out, row)
                    print(f"{name} seed {seed}: {summarize(row)}", flush=True)
    print(f"report: {write_report(out)}")
    return 0


if __name__ == "__main__":
    run_script(main)
