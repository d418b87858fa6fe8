"""Regret against the known optimum, on the exact pruning tables (PruneEnv-Tabular-v0).

    python benchmarks/tabular.py [--task fashion-mnist-cnn] [--seeds 10] [--evaluations 2000]
        [--instance BUDGET:LIMIT ...] [--methods ...] [--results benchmarks/results/tabular.jsonl]
        [--report-only] [--step-rate]

Every constrained agent of the registry (ratio mode), ppo-penalty, amc-ddpg, random search and
evolution, each for ``--evaluations`` scored masks (an agent's training episodes in order; a
search's candidates), ``--seeds`` seeds, at params <= 0.1, params <= 0.25 and FLOPs <= 0.3. Per
run the script records, for k = 1 ... evaluations, the best feasible table score among the first
k masks; regret is the table's optimum minus that, in points (no feasible mask yet: the whole
optimum). One JSON line per (task, instance, method, seed), appended atomically: a killed run
resumes. The report (``TABULAR.md`` and one plot per task) gives mean regret with 95% bootstrap
intervals over seeds, the share of seeds that found the optimum (Wilson interval), evaluations
to come within 0.1 points, and how the table's ranking of methods compares with the live
leaderboard's on the same task, budget and limit. ``--step-rate`` measures the env's steps per second instead.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import statistics
import time
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents import make_agent  # noqa: E402
from agents.registry import AGENTS  # noqa: E402
from benchmarks.entrypoint import run_script  # noqa: E402
from benchmarks.results_io import append_atomically, read_board, read_results  # noqa: E402
from prune_env import TabularProblem, TabularPruneEnv  # noqa: E402  (importing prune_env registers the env)
from prune_env.app import EpisodeRecorder, run_baseline_search  # noqa: E402
from prune_env.tabular.table import DATA_DIR, Table, spearman  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "tabular.jsonl"
BOARDS = {  # the live leaderboards of the same tasks, budgets and limits
    "fashion-mnist-cnn": Path(__file__).parent / "results" / "fmnist-cnn-cpu.jsonl",
    "fashion-mnist-mlp": Path(__file__).parent / "results" / "fmnist-mlp-cpu.jsonl",
}
ROW_KEYS = ("task", "budget", "limit", "method", "seed", "table_sha256", "best", "optimum")
INSTANCES = ("params:0.1", "params:0.25", "flops:0.3")
SEARCHES = ("random-search", "evolution")
METHODS = (
    *(n for n, s in AGENTS.items() if s.constrained and s.action_space in (None, gym.spaces.Box)),
    "ppo-penalty",
    "amc-ddpg",
    *SEARCHES,
)
CHECKPOINTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000)
WITHIN = 0.1  # points: "within 0.1 points of the optimum" (one validation image in 1,000)


def table_sha256(task: str) -> str:
    return hashlib.sha256((DATA_DIR / f"{task}.npz").read_bytes()).hexdigest()


def best_so_far(records, evaluations: int) -> list[float]:
    """Best feasible accuracy after each of the first ``evaluations`` records (0 before any)."""
    best, out = 0.0, []
    for record in records[:evaluations]:
        if record.satisfied and record.accuracy > best:
            best = record.accuracy
        out.append(best)
    return out


def run_method(method: str, table: Table, budget: str, limit: float, evaluations: int, seed: int) -> list:
    """The first ``evaluations`` scored masks of one method on the table, in order."""
    if method in SEARCHES:
        problem = TabularProblem(table=table, budget=budget, budget_limit=limit)
        return list(run_baseline_search(problem, method, evaluations=evaluations, seed=seed).history)
    env = TabularPruneEnv(table=table, budget=budget, budget_limit=limit)
    env.reset(seed=seed)
    model = make_agent(method, env, seed=seed)
    recorder = EpisodeRecorder(env)
    while len(recorder.episodes) < evaluations:  # each episode is num_groups steps
        missing = evaluations - len(recorder.episodes)
        model.learn(missing * table.num_groups, callback=recorder, reset_num_timesteps=False)
    return recorder.episodes[:evaluations]


def measure(
    task: str, table: Table, sha: str, budget: str, limit: float, method: str, seed: int, evaluations: int
) -> dict:
    optimum = table.optimum(budget, limit)  # an instance without a feasible cell fails before any work
    torch.manual_seed(seed)
    start = time.perf_counter()
    records = run_method(method, table, budget, limit, evaluations, seed)
    best = best_so_far(records, evaluations)
    return {
        "task": task, "budget": budget, "limit": limit, "method": method, "seed": seed, "table_sha256": sha,
        "evaluations": evaluations, "optimum": optimum.accuracy, "optimum_cell": optimum.cell,
        "best": best, "feasible": sum(r.satisfied for r in records), "seconds": round(time.perf_counter() - start, 2),
    }  # fmt: skip


def one_length(rows: list[dict]) -> list[dict]:
    """Per task, the runs of its longest evaluation count, one per (instance, method, seed): runs
    of other lengths (an earlier, shorter grid) are left out of the report, not mixed in."""
    longest = {}
    for r in rows:
        longest[r["task"]] = max(longest.get(r["task"], 0), r["evaluations"])
    unique = {}
    for r in rows:
        if r["evaluations"] == longest[r["task"]]:
            unique[(r["task"], r["budget"], r["limit"], r["method"], r["seed"])] = r
    return list(unique.values())


# --- statistics ------------------------------------------------------------------------------


def bootstrap_mean(values: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% bootstrap interval over seeds."""
    data = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(len(data), size=(resamples, len(data)))].mean(axis=1)
    return float(data.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def regret_points(row: dict, k: int) -> float:
    return 100 * (row["optimum"] - row["best"][min(k, len(row["best"])) - 1])


def evaluations_within(row: dict, points: float) -> int | None:
    """The first k whose best is within ``points`` of the optimum (None: never)."""
    for k, best in enumerate(row["best"], start=1):
        if 100 * (row["optimum"] - best) <= points + 1e-9:
            return k
    return None


def summarize(rows: list[dict], ks: tuple[int, ...]) -> dict[str, dict]:
    """Per method: regret at each k (mean, CI), optimum share, evaluations to within 0.1 points."""
    out = {}
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        n = len(mine)
        found = sum(r["best"][-1] >= r["optimum"] for r in mine)
        within = sorted((evaluations_within(r, WITHIN) or math.inf) for r in mine)
        out[method] = {
            "seeds": n,
            "regret": {
                k: bootstrap_mean([regret_points(r, k) for r in mine])
                for k in ks
                if k <= mine[0]["evaluations"]
            },
            "found": (found / n, *wilson(found, n)),
            "within_median": statistics.median(within),
            "within_share": sum(w < math.inf for w in within) / n,
            "seconds": statistics.median(r["seconds"] for r in mine),
        }
    return out


# --- report -----------------------------------------------------------------------------------


def _fmt_interval(mean: float, low: float, high: float) -> str:
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def board_comparison(task: str, rows: list[dict], budget: str, limit: float) -> list[str]:
    """The table's ranking of methods against the live leaderboard's, at the board's evaluations."""
    board_path = BOARDS.get(task)
    if board_path is None or not board_path.is_file():
        return []
    board = [e for e in read_board(board_path) if e["budget"] == budget and abs(e["limit"] - limit) < 1e-9]
    lines, pairs = [], []
    for method in METHODS:
        live = [e for e in board if e["agent"] == method and e.get("test_accuracy") is not None]
        mine = [r for r in rows if r["method"] == method]
        if not live or not mine:
            continue
        k = int(statistics.median(e["evaluations"] for e in live))
        table_score = statistics.mean(100 * r["best"][min(k, r["evaluations"]) - 1] for r in mine)
        live_score = statistics.mean(100 * e["test_accuracy"] for e in live)
        pairs.append((table_score, live_score))
        lines.append(f"| {method} | {k} | {table_score:.2f} | {live_score:.2f} ({len(live)} seeds) |")
    if len(pairs) < 2:
        return []
    xs, ys = zip(*pairs)
    rho = spearman(np.array(xs), np.array(ys))
    return [
        "",
        f"Table vs the live board ({board_path.name}) at the board's median evaluations: the table's best "
        f"score found (mean over its seeds) against the board's final test accuracy. Spearman over methods: "
        f"{rho:.2f} ({len(pairs)} methods; the board's agents ran in their own action mode, mask or ratio, with "
        "the live protocol's fine-tune schedule, so this compares methods, not identical runs).",
        "",
        "| method | evaluations | table: best score found (%) | board: test accuracy after fine-tune (%) |",
        "|---|---|---|---|",
        *lines,
    ]


def tables_section(tasks: list[str]) -> list[str]:
    """What each table is: grid, build cost, file size, and how well its scores predict the test
    accuracy after the boards' final fine-tune."""
    lines = [
        "",
        "## The tables",
        "",
        "| task | grid | cells | file | built with | cell scoring | final fine-tune sample | Spearman: 32-step score vs final test | Spearman: no-fine-tune score vs final test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in tasks:
        table = Table.for_task(task)
        build, final = table.meta["build"], table.meta["final"]
        tuned, raw = table.fidelity("finetuned"), table.fidelity("raw")
        size = (DATA_DIR / f"{task}.npz").stat().st_size / 1024
        lines.append(
            f"| {task} | {table.num_groups} groups x {table.num_levels} levels | {table.num_cells:,} | {size:.0f} KiB | "
            f"prune-env {build['prune_env']} ({build['commit'][:10]}), torch {build['torch']} | "
            f"{build['cell_cpu_seconds'] / 3600:.2f} core-hours | {final['cells']} cells, {final['epochs']} epoch(s), "
            f"{build['final_cpu_seconds'] / 3600:.2f} core-hours | {tuned['rho']:.3f} [{tuned['low']:.3f}, {tuned['high']:.3f}] | "
            f"{raw['rho']:.3f} [{raw['low']:.3f}, {raw['high']:.3f}] |"
        )
    lines += [
        "",
        "Every cell's fine-tune is seeded by the cell's number, so `prune-env table verify --task T --cells N` "
        "re-scores random cells with the live env and must match exactly on the machine that built the table "
        "(1 torch thread). Costs (params, FLOPs) are exact counts and replay anywhere; the no-fine-tune score "
        "depends only on inference arithmetic; the fine-tuned score trains in float32, whose rounding "
        "depends on the CPU's vector kernels and the torch version, so on another machine a fine-tuned cell "
        "may differ by a few of the 1,000 validation images (verify names every such cell). Latency was "
        "measured once per cell on the build machine (a measurement, not a replayable value).",
    ]
    return lines


def report(rows: list[dict], results: Path) -> str:
    lines = [
        "# Tabular benchmarks: regret against the known optimum",
        "",
        "Produced by (resumable; `--report-only` rewrites this page from the results):",
        "",
        "```bash",
        "python benchmarks/tabular.py --task fashion-mnist-mlp",
        "python benchmarks/tabular.py --task fashion-mnist-cnn",
        "python benchmarks/tabular.py --step-rate",
        "```",
        "",
        "Every method runs on `PruneEnv-Tabular-v0` / `TabularProblem` over the shipped table "
        "(`prune-env table show --task TASK`): an RL agent's evaluations are its training episodes "
        "in order, a search's its candidates. Regret = the table's optimum for the instance minus the "
        "best feasible score found in the first k evaluations, in points (validation accuracy under the "
        "boards' protocol, 32 fine-tune steps and 1,000 images; before any feasible mask, the whole "
        "optimum). Intervals are 95% bootstrap intervals over seeds; the share of seeds that found the "
        "optimum carries a Wilson interval.",
    ]
    lines += tables_section(sorted({r["task"] for r in rows}))
    for task in sorted({r["task"] for r in rows}):
        table = Table.for_task(task)
        for instance in INSTANCES:
            budget, limit = instance.split(":")[0], float(instance.split(":")[1])
            mine = [r for r in rows if r["task"] == task and r["budget"] == budget and r["limit"] == limit]
            if not mine:
                continue
            optimum = table.optimum(budget, limit)
            evaluations = max(r["evaluations"] for r in mine)
            ks = tuple(sorted({*(k for k in CHECKPOINTS if k <= evaluations), evaluations}))
            shown = tuple(dict.fromkeys(k for k in (10, 100, 1000, evaluations) if k in ks))
            summary = summarize(mine, ks)
            lines += [
                "",
                f"## {task}, {budget} <= {limit:g}",
                "",
                f"Optimum: {100 * optimum.accuracy:.1f}% at {budget} {optimum.cost:.3f}, keep "
                f"{', '.join(f'{v:g}' for v in optimum.keep)} (cell {optimum.cell} of {table.num_cells}).",
                "",
                "| method | seeds | "
                + " | ".join(f"regret @ {k}" for k in shown)
                + " | found optimum | evaluations to within 0.1 pt (median) | s / run |",
                "|---|---|" + "---|" * len(shown) + "---|---|---|",
            ]
            order = sorted(summary, key=lambda m: summary[m]["regret"][shown[-1]][0])
            for method in order:
                s = summary[method]
                share, low, high = s["found"]
                within = "never" if s["within_median"] == math.inf else f"{s['within_median']:.0f}"
                lines.append(
                    f"| {method} | {s['seeds']} | "
                    + " | ".join(_fmt_interval(*s["regret"][k]) for k in shown)
                    + f" | {share:.0%} [{low:.0%}, {high:.0%}] | {within} | {s['seconds']:.1f} |"
                )
            lines += board_comparison(task, mine, budget, limit)
        lines += ["", f"![regret against evaluations]({task}__tabular_regret.png)"]
        plot([r for r in rows if r["task"] == task], results.with_name(f"{task}__tabular_regret.png"))
    rate = results.with_name("tabular_step_rate.json")
    if rate.is_file():
        r = json.loads(rate.read_text())
        lines += [
            "",
            "## Step rate",
            "",
            f"`python benchmarks/tabular.py --step-rate`: {r['steps']:,} steps of random actions through "
            f'`gym.make("PruneEnv-Tabular-v0")` (its default wrappers included), one process: '
            + ", ".join(
                f"{m['task']} {m['action_mode']} {m['steps_per_second']:,.0f} steps/s" for m in r["runs"]
            )
            + f" (1-minute load average {r['load_average']:.2f} on {r['cores']} cores).",
        ]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(INSTANCES), figsize=(5 * len(INSTANCES), 4), squeeze=False)
    for ax, instance in zip(axes[0], INSTANCES):
        budget, limit = instance.split(":")[0], float(instance.split(":")[1])
        mine = [r for r in rows if r["budget"] == budget and r["limit"] == limit]
        for method in METHODS:
            runs = [r for r in mine if r["method"] == method]
            if not runs:
                continue
            n = min(r["evaluations"] for r in runs)
            regret = np.mean([[100 * (r["optimum"] - b) for b in r["best"][:n]] for r in runs], axis=0)
            ax.plot(
                np.arange(1, n + 1), np.maximum(regret, 1e-2), label=method, lw=2 if method in SEARCHES else 1
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("regret (points; 0 drawn at 0.01)")
        ax.set_title(f"{rows[0]['task'] if rows else ''} {budget} <= {limit:g}", fontsize=9)
        ax.grid(alpha=0.3)
    labelled = max(axes[0], key=lambda ax: len(ax.get_lines()))
    if labelled.get_lines():
        labelled.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def step_rate(out: Path, steps: int = 200_000) -> dict:
    """Steps per second of the tabulated env through gym.make, random actions, one process."""
    runs = []
    for task in ("fashion-mnist-cnn", "fashion-mnist-mlp"):
        if not (DATA_DIR / f"{task}.npz").is_file():
            continue
        for mode in ("ratio", "discrete"):
            env = gym.make("PruneEnv-Tabular-v0", task=task, action_mode=mode, budget_limit=(0.05, 0.5))
            env.reset(seed=0)
            env.action_space.seed(0)
            actions = [env.action_space.sample() for _ in range(4096)]
            done, n = True, 0
            start = time.perf_counter()
            while n < steps:
                if done:
                    env.reset()
                _, _, done, _, _ = env.step(actions[n % 4096])
                n += 1
            rate = n / (time.perf_counter() - start)
            runs.append({"task": task, "action_mode": mode, "steps_per_second": round(rate)})
            print(f"{task} {mode}: {rate:,.0f} steps/s")
    result = {"steps": steps, "runs": runs, "load_average": os.getloadavg()[0], "cores": os.cpu_count()}
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="fashion-mnist-cnn")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=2000)
    parser.add_argument("--instance", action="append", default=None, help="BUDGET:LIMIT (repeat)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--step-rate", action="store_true")
    args = parser.parse_args(argv)
    if args.evaluations < 1 or args.seeds < 1:
        raise ValueError("--evaluations and --seeds must be >= 1")
    torch.set_num_threads(1)
    if args.step_rate:
        step_rate(args.results.with_name("tabular_step_rate.json"))
    elif not args.report_only:
        table, sha = Table.for_task(args.task), table_sha256(args.task)
        done = {(r["task"], r["budget"], r["limit"], r["method"], r["seed"], r["evaluations"])
                for r in read_results(args.results, require=ROW_KEYS, what="a tabular result")
                if r["table_sha256"] == sha}  # fmt: skip
        for instance in args.instance or INSTANCES:
            budget, limit = instance.split(":")[0], float(instance.split(":")[1])
            for method in args.methods:
                for seed in range(args.seeds):
                    if (args.task, budget, limit, method, seed, args.evaluations) in done:
                        continue
                    row = measure(args.task, table, sha, budget, limit, method, seed, args.evaluations)
                    append_atomically(args.results, row)
                    print(f"{args.task} {budget}<={limit:g} {method} seed {seed}: regret "
                          f"{regret_points(row, args.evaluations):.2f} pt, {row['seconds']:.0f} s", flush=True)  # fmt: skip
    rows = read_results(args.results, require=ROW_KEYS, what="a tabular result")
    current = {t: table_sha256(t) for t in {r["task"] for r in rows} if (DATA_DIR / f"{t}.npz").is_file()}
    rows = [r for r in rows if current.get(r["task"]) == r["table_sha256"]]  # rows of the shipped tables
    rows = one_length(rows)
    if rows:
        out = args.results.with_name("TABULAR.md")
        out.write_text(report(rows, args.results))
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_script(main)
