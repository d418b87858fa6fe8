"""Re-validate every leaderboard entry from its recorded masks and checkpoint.

    python benchmarks/validate.py RESULTS.jsonl [--tolerance 1e-4] [--data-dir DIR]

For each entry: the checkpoint's hash must match, the masks are replayed on a fresh PruneEnv
(physically pruned from the dense weights), the budget value, params and FLOPs ratios are
recomputed, and the pruned network's validation accuracy before fine-tune is recomputed on the
full validation split. Any mismatch beyond the tolerance fails the run (exit 1). Latency budgets
are timing measurements and are only checked against their limit's side, not to the digit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from prune_env.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, load_dataset
from prune_env.env import PruneEnv
from prune_env.evaluate import accuracy
from prune_env.tasks import get_task, load_checkpoint


def validate_entry(entry: dict, tolerance: float, data_dir: str | None = None) -> list[str]:
    """The problems found in one entry (empty when it replays)."""
    if "masks" not in entry:
        return []  # an entry that recorded a failure has nothing to replay
    problems = []
    _, meta = load_checkpoint(entry["task"])
    if meta["sha256"] != entry["checkpoint_sha256"]:
        problems.append(
            f"checkpoint hash {meta['sha256'][:12]} != recorded {entry['checkpoint_sha256'][:12]}"
        )
    env = PruneEnv(
        entry["task"],
        budget=entry["budget"],
        budget_limit=entry["limit"],
        eval_samples=entry.get("eval_samples", 1000),
        data_dir=data_dir,
        val_size=entry.get("val_size", DEFAULT_VAL_SIZE),
    )
    info = env.evaluate_masks(entry["masks"])
    checks = [("params_ratio", info["params_ratio"]), ("flops_ratio", info["flops_ratio"])]
    if entry["budget"] != "latency":
        checks.append(("budget_value", info["cost"]))
    for name, value in checks:
        if abs(value - entry[name]) > tolerance:
            problems.append(f"{name} {value:.6f} != recorded {entry[name]:.6f}")
    if info["constraint_satisfied"] != entry["satisfied"] and entry["budget"] != "latency":
        problems.append(
            f"constraint_satisfied {info['constraint_satisfied']} != recorded {entry['satisfied']}"
        )
    data = load_dataset(
        get_task(entry["task"]).dataset,
        data_dir,
        val_size=entry.get("val_size", DEFAULT_VAL_SIZE),
        split_seed=entry.get("split_seed", DEFAULT_SPLIT_SEED),
    )
    x, y = (t.to(env.device) for t in data.val.tensors())
    val = accuracy(env.export(entry["masks"]), x, y)
    if abs(val - entry["val_accuracy_before_finetune"]) > tolerance:
        problems.append(
            f"val_accuracy_before_finetune {val:.4f} != recorded {entry['val_accuracy_before_finetune']:.4f}"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--data-dir", default=None, help="where the dataset is (default: searched)")
    args = parser.parse_args(argv)
    entries = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    failures = 0
    for entry in entries:
        label = f"{entry['task']} {entry['budget']}<={entry['limit']:g} {entry['agent']} seed {entry['seed']}"
        problems = validate_entry(entry, args.tolerance, args.data_dir)
        failures += bool(problems)
        print(f"{'FAIL' if problems else 'ok  '} {label}" + "".join(f"\n     {p}" for p in problems))
    print(f"{len(entries) - failures}/{len(entries)} entries replayed within {args.tolerance:g}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
