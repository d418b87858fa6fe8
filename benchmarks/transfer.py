"""Train once, prune many: cost-to-solution of a trained policy on instances it never saw.

    python benchmarks/transfer.py [--policy default] [--seeds 0 1 2] [--max-evaluations 256]
        [--instance TASK:BUDGET:LIMIT ...] [--methods policy scratch random-search evolution
        eagleeye taylor bn-scale] [--threads 1] [--final-steps 300]
        [--results benchmarks/results/transfer.jsonl] [--report-only]

Every instance is held out: the script refuses one the policy could have met in training (its
task among the policy's tasks, its budget among its budgets, and its limit inside the trained
range or list). Per instance and seed every method scores candidates under ONE protocol (the
boards': 32 fine-tune steps, then 1,000 validation images) and the script records, for
k = 1, 2, 4, ..., max, the best feasible validation score among its first k candidates and that
mask's test accuracy after one final fine-tune (``--final-steps`` Adam steps, the same seed for
every mask, cached per mask). Methods:

- ``policy``: the trained policy's candidates (k = 1: its deterministic episode, zero-shot).
- ``scratch``: the policy's agent trained from scratch on the instance (its episodes in order).
- ``random-search`` and ``evolution``: the leaderboards' searches.
- ``eagleeye``: random candidates ranked by their score after BatchNorm re-estimation with no
  fine-tune (EagleEye's adaptive-BN evaluation, its own cheap signal: ``evaluations`` counts
  those); the candidate it ranks first at k is scored under the protocol for the curve.
- ``taylor`` and ``bn-scale``: one-shot criteria, at the evaluations their bisection spends.
- ``policy-refine`` (an attempt at more from the policy with few evaluations): its deterministic
  answer, then a local search from it (one group's ratio changed per candidate, scaled to the
  budget); ``--methods policy-refine --max-evaluations 16`` runs it alone.

One JSON line per (instance, seed, method), appended atomically: a killed run resumes. The
report (``TRANSFER.md`` + ``TRANSFER.png`` beside the results) also gives the policy's training
cost and the break-even number of instances.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from agents import make_agent
from benchmarks.entrypoint import run_script
from benchmarks.results_io import append_atomically, read_results
from prune_env.app import (
    EpisodeRecorder,
    load_policy,
    propose,
    run_baseline_search,
    sample_ratios,
)
from prune_env.env import PruneEnv
from prune_env.errors import NotApplicableError
from prune_env.problem import PruneProblem
from prune_env.zoo.sources import task_dataset
from prune_env.zoo.training import accuracy

RESULTS = Path(__file__).parent / "results" / "transfer.jsonl"
ROW_KEYS = ("instance", "seed", "method", "policy_sha256", "candidates", "curve", "test")
METHODS = (
    "policy",
    "scratch",
    "random-search",
    "evolution",
    "eagleeye",
    "taylor",
    "bn-scale",
    "policy-refine",
)
SEARCHES = ("policy", "scratch", "random-search", "evolution", "eagleeye")  # spend k evaluations
# Attempts to get more out of the policy at a few evaluations, each a curve like the searches'
# (``--max-evaluations 16`` is enough for the verdict): ``policy-refine`` is the policy's
# deterministic answer followed by a local search from it (``propose(..., refine=True)``).
ATTEMPTS = ("policy-refine",)
CURVES = (*SEARCHES, *ATTEMPTS)
# Held out from the default policy (trained on the family's training members, CNN x0.5, CNN and
# ResNet-8, at params 0.05/0.075/0.15/0.2/0.3 and FLOPs 0.15/0.2/0.4/0.5): networks it never
# saw (the MLP, a kind it never saw; ResNet-14, deeper than any it saw) and limits
# it never saw on a network it knows. Cheapest first.
INSTANCES = (
    "fashion-mnist-mlp:params:0.1",
    "fashion-mnist-mlp:flops:0.3",
    "fashion-mnist-cnn:params:0.1",
    "fashion-mnist-cnn:flops:0.3",
    "fashion-mnist-resnet14:params:0.1",
)  # ResNet-20 (also held out, deeper still) works with --instance; at ~3 core-hours per seed it is not in the grid
FINETUNE_STEPS, EVAL_SAMPLES, EAGLEEYE_BATCHES = 32, 1000, 16
SHIPPED_AGENT = "ppo-lag-scaled"  # the agent of rows written before rows named their agent


def grid(max_evaluations: int) -> list[int]:
    """k = 1, 2, 4, ... up to ``max_evaluations`` (included)."""
    ks = [2**i for i in range(int(math.log2(max_evaluations)) + 1)]
    return ks if ks[-1] == max_evaluations else [*ks, max_evaluations]


def parse_instance(text: str) -> dict:
    try:
        task, budget, limit = text.split(":")
        return {"task": task, "budget": budget, "limit": float(limit)}
    except ValueError:
        raise ValueError(
            f"an instance is TASK:BUDGET:LIMIT, e.g. fashion-mnist-cnn:params:0.1; got {text!r}"
        ) from None


def refuse_seen(policy, instances: list[dict]) -> None:
    """The benchmark measures transfer: an instance the policy could have trained on is an error."""
    seen = [i for i in instances if policy.trained_on(i["task"], i["budget"], i["limit"])]
    if seen:
        names = ", ".join(f"{i['task']}:{i['budget']}:{i['limit']:g}" for i in seen)
        raise ValueError(f"the policy was trained on {names}: a transfer benchmark needs held-out instances")


def best_so_far(candidates: list[dict], ks: list[int], key: str = "accuracy") -> dict[int, int | None]:
    """For each k, the index of the best feasible of the first k candidates (None: none feasible)."""
    out, best = {}, None
    for i, c in enumerate(candidates):
        if c["satisfied"] and (best is None or c[key] > candidates[best][key]):
            best = i
        if i + 1 in ks:
            out[i + 1] = best
    return out


def reusable(row: dict, policy) -> bool:
    """Whether a stored row holds for ``policy``: the policy's own candidates only for that very
    file; the agent from scratch for the same agent; the searches for any policy (they never read
    it), so another policy attempt re-runs only its own rows."""
    if row["method"] in ("policy", *ATTEMPTS):
        return row["policy_sha256"] == policy.meta["sha256"]
    if row["method"] == "scratch":
        return row.get("agent", SHIPPED_AGENT) == policy.agent
    return True


def rows_for(rows: list[dict], policy) -> list[dict]:
    """One row per (instance, seed, method) that holds for ``policy`` (the first stored)."""
    unique: dict = {}
    for r in rows:
        if reusable(r, policy):
            unique.setdefault((json.dumps(r["instance"], sort_keys=True), r["seed"], r["method"]), r)
    return list(unique.values())


def _row(record) -> dict:
    return {
        "accuracy": record.accuracy,
        "cost": record.cost,
        "satisfied": record.satisfied,
        "masks": record.masks,
    }


def run_method(method: str, problem: PruneProblem, policy, k_max: int, seed: int) -> list[dict]:
    """The method's candidates in the order it scored them, under the problem's protocol."""
    if method == "policy":
        return [_row(r) for r in propose(policy, problem, k_max, seed=seed)]
    if method == "policy-refine":
        return [_row(r) for r in propose(policy, problem, k_max, seed=seed, refine=True)]
    if method in ("random-search", "evolution", "taylor", "bn-scale"):
        selection = run_baseline_search(problem, method, evaluations=k_max, seed=seed)
        return [_row(r) for r in selection.history]
    if method == "scratch":
        env = PruneEnv(problem=problem, action_mode="ratio", observation="summary")
        env.reset(seed=seed)
        model = make_agent(policy.agent, env, seed=seed, device="cpu")
        recorder = EpisodeRecorder(env)
        model.learn(k_max * problem.num_groups, callback=recorder)
        return [_row(r) for r in recorder.episodes[:k_max]]
    if method == "eagleeye":
        rng = np.random.default_rng(seed)
        ratios = [sample_ratios(problem, rng) for _ in range(k_max)]
        problem.set_scoring(finetune_steps=0, bn_recalibration=EAGLEEYE_BATCHES)
        try:
            cheap = [_row(problem.score_ratios(r, source="eagleeye")) for r in ratios]
        finally:
            problem.set_scoring(finetune_steps=FINETUNE_STEPS, bn_recalibration=0)
        rescored: dict[int, dict] = {}
        for index in best_so_far(cheap, grid(k_max)).values():
            if index is not None and index not in rescored:
                rescored[index] = _row(problem.score_ratios(ratios[index], source="eagleeye"))
        return [{**c, "adaptive_bn_accuracy": c["accuracy"], **rescored.get(i, {"accuracy": None})}
                for i, c in enumerate(cheap)]  # fmt: skip
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


class FinalFinetune:
    """One final fine-tune for every mask of an instance (Adam, cosine, the same batches for
    all), then test accuracy; cached per mask, so a mask found by two methods costs one."""

    def __init__(self, problem: PruneProblem, steps: int, data_dir=None):
        self.problem, self.steps = problem, steps
        data = task_dataset(problem.task, data_dir)
        self.test = tuple(t.to(problem.device) for t in data.test.tensors())
        self.cache: dict[str, float] = {}

    def __call__(self, masks: dict) -> float:
        key = json.dumps(masks, sort_keys=True)
        if key not in self.cache:
            model = self.problem.export(masks)
            if self.steps > 0:
                rng = np.random.default_rng(0)
                with torch.random.fork_rng():
                    torch.manual_seed(0)
                    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
                    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.steps)
                    model.train()
                    for _ in range(self.steps):
                        x, y = self.problem.training_batch(rng, 128)
                        loss = torch.nn.functional.cross_entropy(model(x.to(self.problem.device)),
                                                                 y.to(self.problem.device))  # fmt: skip
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        schedule.step()
                    model.eval()
            self.cache[key] = accuracy(model, *self.test)
        return self.cache[key]


def measure(instance: dict, seed: int, method: str, policy, args, finals: dict) -> dict | None:
    """One row, or None where the method does not apply (bn-scale without BatchNorm)."""
    problem = PruneProblem(instance["task"], budget=instance["budget"], budget_limit=instance["limit"],
                           eval_samples=EVAL_SAMPLES, finetune_steps=FINETUNE_STEPS, seed=seed)  # fmt: skip
    key = (instance["task"], instance["budget"], instance["limit"])
    if key not in finals:
        finals.clear()  # one instance's cache at a time
        finals[key] = FinalFinetune(problem, args.final_steps, args.data_dir)
    final = finals[key]
    final.problem = problem
    start = time.time()
    try:
        candidates = run_method(method, problem, policy, args.max_evaluations, seed)
    except NotApplicableError as exc:
        print(f"{instance['task']} {method}: not applicable ({exc})", flush=True)
        return None
    seconds = time.time() - start
    ks = grid(args.max_evaluations) if method in CURVES else [len(candidates)]
    rank = "adaptive_bn_accuracy" if method == "eagleeye" else "accuracy"
    chosen = best_so_far(candidates, ks, key=rank)
    if method not in CURVES:  # a one-shot criterion: its chosen mask, at its own count
        feasible = [i for i, c in enumerate(candidates) if c["satisfied"]]
        chosen = {
            len(candidates): max(feasible, key=lambda i: candidates[i]["accuracy"]) if feasible else None
        }
    curve = {str(k): (None if i is None else candidates[i]["accuracy"]) for k, i in chosen.items()}
    test = {str(k): (None if i is None else final(candidates[i]["masks"])) for k, i in chosen.items()}
    return {
        "instance": instance, "seed": seed, "method": method, "policy": args.policy_label, "policy_sha256": policy.meta["sha256"],
        "agent": policy.agent,
        "protocol": {"finetune_steps": FINETUNE_STEPS, "eval_samples": EVAL_SAMPLES, "bn_recalibration": 0},
        "final_steps": args.final_steps, "threads": torch.get_num_threads(), "seconds": round(seconds, 1),
        "candidates": [{k: v for k, v in c.items() if k != "masks"} for c in candidates],
        "curve": curve, "test": test,
        "chosen_masks": {str(k): candidates[i]["masks"] for k, i in chosen.items() if i is not None},
    }  # fmt: skip


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def _fmt(value: float | None, sd: float | None = None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}" + (f" ± {100 * sd:.2f}" if sd is not None else "")


def summarize(rows: list[dict], ks: list[int]) -> dict:
    """method -> k -> (mean val, mean test) over instances and seeds (each instance weighs the same)."""
    out: dict = {}
    instances = sorted({json.dumps(r["instance"], sort_keys=True) for r in rows})
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        if method not in CURVES:  # one point at its own count, over the instances it applies to
            count = round(statistics.median(int(k) for r in mine for k in r["curve"]))
            by_instance = [
                [r for r in mine if json.dumps(r["instance"], sort_keys=True) == i] for i in instances
            ]
            by_instance = [cell for cell in by_instance if cell]
            val = _mean([_mean([v for r in cell for v in r["curve"].values()]) for cell in by_instance])
            test = _mean([_mean([v for r in cell for v in r["test"].values()]) for cell in by_instance])
            out[method] = {count: (val, test)}
            continue
        points = sorted({int(k) for r in mine for k in r["curve"]})
        out[method] = {}
        for k in points:
            per_instance_val, per_instance_test = [], []
            for inst in instances:
                cell = [
                    r
                    for r in mine
                    if json.dumps(r["instance"], sort_keys=True) == inst and str(k) in r["curve"]
                ]
                per_instance_val.append(_mean([r["curve"][str(k)] for r in cell]))
                per_instance_test.append(_mean([r["test"][str(k)] for r in cell]))
            if all(v is not None for v in per_instance_val):
                out[method][k] = (_mean(per_instance_val), _mean(per_instance_test))
    return out


def _key(row: dict) -> str:
    return json.dumps(row["instance"], sort_keys=True)


def complete_pairs(rows: list[dict]) -> set[tuple[str, int]]:
    """The (instance, seed) pairs every search has finished: methods compare on the same pairs
    (a resumed run fills the rest in)."""
    done = {(_key(r), r["seed"], r["method"]) for r in rows}
    pairs = {(_key(r), r["seed"]) for r in rows}
    return {p for p in pairs if all((*p, m) in done for m in SEARCHES)}


def compared(rows: list[dict]) -> list[dict]:
    """Every method's rows on the complete pairs only."""
    pairs = complete_pairs(rows)
    return [r for r in rows if (_key(r), r["seed"]) in pairs]


def complete_instances(rows: list[dict]) -> list[str]:
    """The instances with at least one complete (instance, seed) pair."""
    return sorted({i for i, _ in complete_pairs(rows)})


def report(rows: list[dict], policy_meta: dict, results: Path, ks: list[int]) -> str:
    instances = sorted({_key(r) for r in rows})
    complete = complete_instances(rows)
    summary = summarize(compared(rows), ks)
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        "# Transfer: one policy, held-out instances",
        "",
        "Produced by:",
        "",
        "```bash",
        f"python benchmarks/transfer.py --seeds {' '.join(map(str, seeds))} --max-evaluations {max(ks)}",
        "```",
        "",
        f"Policy: `{next((r['policy'] for r in rows if r['method'] == 'policy'), '-')}` ({policy_meta.get('agent')}), trained on {', '.join(policy_meta.get('tasks', []))} "
        f"at {json.dumps(policy_meta.get('budgets'))}, {policy_meta.get('timesteps')} timesteps: "
        f"**{policy_meta.get('evaluations')} training evaluations**, {policy_meta.get('cpu_seconds')} CPU s "
        f"({policy_meta.get('wall_seconds')} s wall), training episodes scored with {json.dumps(policy_meta.get('protocol'))}.",
        "",
        "Held-out instances: " + "; ".join(
            f"{i['task']} {i['budget']} <= {i['limit']:g}" for i in map(json.loads, instances)) + ".",
        f"Seeds: {seeds}. Every candidate of every method is scored under one protocol: "
        f"{FINETUNE_STEPS} Adam fine-tune steps, then {EVAL_SAMPLES} validation images. The test accuracy is the "
        f"k-th best-so-far mask's after one final fine-tune ({rows[0]['final_steps']} Adam steps of 128 images, "
        "cosine from 1e-3, the same batches for every mask) on the 10,000 test images.",
        "",
        "## Best-so-far validation score and final test accuracy (%), mean over instances and seeds",
        "",
        f"Over the (instance, seed) pairs every search ({', '.join(SEARCHES)}) has finished: "
        + ("; ".join("{task} {budget} <= {limit:g}".format(**json.loads(i)) + " (seeds "
                     + ", ".join(str(sd) for j, sd in sorted(complete_pairs(rows)) if j == i) + ")"
                     for i in complete) or "none yet")  # fmt: skip
        + f", of {len(instances)} instances with results. Every method is averaged over the same pairs "
        "(an attempt over those it has run); each instance weighs the same.",
        "",
        "| method | " + " | ".join(f"k={k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
    ]  # fmt: skip
    for method, points in summary.items():
        if method in CURVES:
            lines.append(
                f"| {method} (val) | " + " | ".join(_fmt(points.get(k, (None,))[0]) for k in ks) + " |"
            )
            lines.append(
                f"| {method} (test) | " + " | ".join(_fmt(points.get(k, (None, None))[1]) for k in ks) + " |"
            )
    for method in ("taylor", "bn-scale"):
        for k, (val, test) in summary.get(method, {}).items():
            applies = {_key(r) for r in rows if r["method"] == method and _key(r) in complete}
            where = (
                ""
                if len(applies) == len(complete)
                else f" (on {len(applies)} of them: bn-scale needs BatchNorm)"
            )
            lines.append(
                f"| {method} at its own {k} evaluations (val / test){where} | {_fmt(val)} / {_fmt(test)} |"
            )
    lines += ["", "## Per instance (test accuracy, mean ± sd over seeds)", ""]
    show = [k for k in (1, 4, 16, 64, 160, 256) if k in ks]
    lines += [
        "| instance | method | " + " | ".join(f"k={k}" for k in show) + " |",
        "|---|---|" + "---|" * len(show),
    ]
    for inst in instances:
        label = "{task} {budget} <= {limit:g}".format(**json.loads(inst))
        for method in CURVES:
            cell = [
                r for r in rows if r["method"] == method and json.dumps(r["instance"], sort_keys=True) == inst
            ]
            if not cell:
                continue
            values = []
            for k in show:
                tests = [r["test"].get(str(k)) for r in cell if r["test"].get(str(k)) is not None]
                sd = statistics.stdev(tests) if len(tests) > 1 else None
                values.append(_fmt(_mean(tests), sd))
            lines.append(f"| {label} | {method} | " + " | ".join(values) + " |")
    lines += ["", "## Verdict and break-even", ""]
    lines += verdict(summary, policy_meta, ks)
    lines += ["", f"![curves]({results.with_name('TRANSFER.png').name})", ""]
    return "\n".join(lines)


def verdict(summary: dict, policy_meta: dict, ks: list[int]) -> list[str]:
    policy, evolution = summary.get("policy", {}), summary.get("evolution", {})
    k_policy = max((k for k in policy if k <= 16), default=None)
    k_search = min((k for k in evolution if k >= 160), default=None)
    if k_policy is None or k_search is None:
        return ["Not enough results for the verdict yet."]
    p_test, e_test = policy[k_policy][1], evolution[k_search][1]
    gap = 100 * (e_test - p_test)
    lines = [
        f"- The policy with {k_policy} evaluations: test accuracy {_fmt(p_test)}%; evolution with {k_search} "
        f"(the grid's first point at >= 10x {k_policy}: a stricter test than 10x): "
        f"{_fmt(e_test)}% ({gap:+.2f} points for evolution). The issue's target, within 0.3 points: "
        f"**{'met' if gap <= 0.3 else 'not met'}**.",
    ]
    for attempt in ATTEMPTS:
        points = summary.get(attempt, {})
        k_attempt = max((k for k in points if k <= 16), default=None)
        if k_attempt is not None:
            a_gap = 100 * (e_test - points[k_attempt][1])
            lines.append(
                f"- Attempt `{attempt}` with {k_attempt} evaluations: test accuracy {_fmt(points[k_attempt][1])}% "
                f"({a_gap:+.2f} points for evolution with {k_search}): **{'met' if a_gap <= 0.3 else 'not met'}**."
            )
    p_val = policy[k_policy][0]
    for method in ("evolution", "random-search", "eagleeye", "scratch"):
        curve = summary.get(method, {})
        matched = min((k for k in sorted(curve) if curve[k][0] >= p_val), default=None)
        training = policy_meta.get("evaluations") or 0
        if matched is None:
            lines.append(
                f"- {method} does not reach the policy's best-so-far validation score at {k_policy} "
                f"({_fmt(p_val)}%) within {max(ks)} evaluations: break-even after at most "
                f"{training / max(max(ks) - k_policy, 1):.1f} instances (training evaluations / "
                f"({max(ks)} - {k_policy}))."
            )
        elif matched <= k_policy:
            lines.append(
                f"- {method} matches the policy's validation score at {k_policy} with {matched} evaluations: "
                "no break-even (the policy saves no evaluations)."
            )
        else:
            lines.append(
                f"- {method} needs {matched} evaluations to match the policy's validation score at {k_policy}: "
                f"break-even after {training / (matched - k_policy):.1f} instances "
                f"({training} training evaluations / ({matched} - {k_policy}))."
            )
    return lines


def plot(rows: list[dict], ks: list[int], path: Path) -> None:
    summary = summarize(compared(rows), ks)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, which, title in (
        (axes[0], 0, "best-so-far validation score"),
        (axes[1], 1, "final test accuracy"),
    ):
        for method, points in summary.items():
            xs = sorted(points)
            ys = [100 * points[k][which] for k in xs]
            if method in CURVES:
                ax.plot(xs, ys, marker="o", label=method)
            else:
                ax.scatter(xs, ys, marker="x", s=60, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("evaluations k")
        ax.set_ylabel("%")
        ax.set_title(title + " (mean over held-out instances and seeds)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-evaluations", type=int, default=256)
    parser.add_argument("--instance", action="append", default=None, help="TASK:BUDGET:LIMIT (repeat)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--final-steps", type=int, default=300)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.max_evaluations < 1:
        raise ValueError(f"--max-evaluations must be >= 1, got {args.max_evaluations}")
    torch.set_num_threads(args.threads)
    policy = load_policy(args.policy)
    args.policy_label = "default" if args.policy == "default" else Path(args.policy).name
    instances = [parse_instance(t) for t in (args.instance or INSTANCES)]
    refuse_seen(policy, instances)
    ks = grid(args.max_evaluations)
    done = {(json.dumps(r["instance"], sort_keys=True), r["seed"], r["method"])
            for r in read_results(args.results, require=ROW_KEYS, what="transfer result")
            if reusable(r, policy)}  # fmt: skip
    finals: dict = {}
    if not args.report_only:
        for instance in instances:
            for seed in args.seeds:
                for method in args.methods:
                    if (json.dumps(instance, sort_keys=True), seed, method) in done:
                        continue
                    row = measure(instance, seed, method, policy, args, finals)
                    if row is None:
                        continue
                    append_atomically(args.results, row)
                    best = row["test"].get(str(max(ks))) or list(row["test"].values())[-1]
                    print(f"{instance['task']} {instance['budget']}<={instance['limit']:g} seed {seed} {method}: "
                          f"{len(row['candidates'])} candidates, test {_fmt(best)}, {row['seconds']:.0f} s", flush=True)  # fmt: skip
    rows = read_results(args.results, require=ROW_KEYS, what="transfer result")
    rows = rows_for(rows, policy)  # this policy's rows and every search's
    if not rows:
        print("no results yet")
        return 0
    out = args.results.with_name("TRANSFER.md")
    out.write_text(report(rows, policy.meta, args.results, ks))
    plot(rows, ks, args.results.with_name("TRANSFER.png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_script(main)
