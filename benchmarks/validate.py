"""Re-validate every leaderboard entry from its recorded masks and checkpoint.

    python benchmarks/validate.py RESULTS.jsonl [--tolerance 1e-4] [--data-dir DIR]

For each entry: the checkpoint's hash must match, the masks are replayed on a fresh PruneEnv
(physically pruned from the dense weights) under the entry's scoring protocol, the budget
value, params and FLOPs ratios, kept widths and ``satisfied`` are recomputed, and the pruned
network's validation accuracy before fine-tune is recomputed on the full validation split.
Where the recorded protocol has no per-episode fine-tune, the record's own accuracy is replayed
too. Any mismatch beyond the tolerance fails the run (exit 1). Latency budgets are timing
measurements and are only checked against their limit's side, not to the digit.
"""

from __future__ import annotations

import argparse
import sys

from results_io import entry_label, read_results, recorded_mask, run_settings

from prune_env.env import PruneEnv
from prune_env.scored import ScoringProtocol
from prune_env.zoo.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, load_dataset
from prune_env.zoo.tasks import get_task, load_checkpoint
from prune_env.zoo.training import accuracy


def _compare(problems: list[str], name: str, value: float, recorded: float, tolerance: float) -> None:
    if abs(value - recorded) > tolerance:
        problems.append(f"{name} {value:.6f} != recorded {recorded:.6f}")


def validate_entry(entry: dict, tolerance: float, data_dir: str | None = None) -> list[str]:
    """The problems found in one entry (empty when it replays)."""
    if "error" in entry:
        return []  # an entry that recorded a failure has nothing to replay
    problems = []
    claimed, settings = recorded_mask(entry), run_settings(entry)
    val_size = settings.get("val_size", DEFAULT_VAL_SIZE)
    _, meta = load_checkpoint(entry["task"])
    if meta["sha256"] != entry["checkpoint_sha256"]:
        problems.append(
            f"checkpoint hash {meta['sha256'][:12]} != recorded {entry['checkpoint_sha256'][:12]}"
        )
    env = PruneEnv(
        entry["task"], budget=entry["budget"], budget_limit=entry["limit"], data_dir=data_dir, val_size=val_size,
        eval_samples=claimed.get("eval_samples", ScoringProtocol.eval_samples),
    )  # fmt: skip
    replay = env.evaluate_masks(claimed["masks"])
    is_latency = entry["budget"] == "latency"
    _compare(problems, "params_ratio", replay.params_ratio, claimed["params_ratio"], tolerance)
    _compare(problems, "flops_ratio", replay.flops_ratio, claimed["flops_ratio"], tolerance)
    _compare(
        problems, "params_ratio (exported network)", replay.params_ratio, entry["params_ratio"], tolerance
    )
    if not is_latency:
        _compare(problems, "budget_value", replay.cost, claimed["budget_value"], tolerance)
        if replay.satisfied != claimed["satisfied"]:
            problems.append(f"constraint_satisfied {replay.satisfied} != recorded {claimed['satisfied']}")
    if entry["satisfied"] != claimed["satisfied"]:
        problems.append(f"entry satisfied {entry['satisfied']} != the mask's recorded {claimed['satisfied']}")
    record = claimed["record"]
    if record is not None:
        if record.widths != replay.widths:
            problems.append(f"widths {replay.widths} != recorded {record.widths}")
        if record.protocol.finetune_steps == 0:  # scoring without fine-tune is deterministic
            _compare(problems, "accuracy (scoring protocol)", replay.accuracy, record.accuracy, tolerance)
    data = load_dataset(
        get_task(entry["task"]).dataset, data_dir, val_size=val_size,
        split_seed=entry.get("split_seed", DEFAULT_SPLIT_SEED),
    )  # fmt: skip
    x, y = (t.to(env.device) for t in data.val.tensors())
    val = accuracy(env.export(claimed["masks"]), x, y)
    _compare(problems, "val_accuracy_before_finetune", val, entry["val_accuracy_before_finetune"], tolerance)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--data-dir", default=None, help="where the dataset is (default: searched)")
    args = parser.parse_args(argv)
    entries = read_results(args.results)
    failures = 0
    for entry in entries:
        problems = validate_entry(entry, args.tolerance, args.data_dir)
        failures += bool(problems)
        print(
            f"{'FAIL' if problems else 'ok  '} {entry_label(entry)}"
            + "".join(f"\n     {p}" for p in problems)
        )
    print(f"{len(entries) - failures}/{len(entries)} entries replayed within {args.tolerance:g}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
