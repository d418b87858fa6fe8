"""Re-validate every leaderboard entry from its recorded masks and checkpoint.

    python benchmarks/validate.py RESULTS.jsonl [--tolerance 1e-4] [--data-dir DIR] [--from-entry K]

For each entry: the checkpoint's hash must match, the masks are replayed on a fresh PruneProblem
(physically pruned from the dense weights) under the entry's scoring protocol, the budget
value, params and FLOPs ratios, kept widths and ``satisfied`` are recomputed, and the pruned
network's validation accuracy before fine-tune is recomputed on the full validation split.
Where the recorded protocol has no per-episode fine-tune, the record's own accuracy is replayed
too. The number the table ranks on is replayed as well: the entry's fine-tuned weights are
reloaded (``torch.load(weights_only=True)``, hash checked) into the architecture rebuilt from the
masks, and its test accuracy, the dense test accuracy and the derived columns (delta,
compression, theoretical speedup) are recomputed. Any mismatch beyond ``--tolerance`` fails the
run (exit 1). Latency is a timing: a latency budget's value is re-measured and must agree within
``--latency-tolerance`` (relative, default 30%) and stay on the recorded side of the limit.
Format-1 entries (the first leaderboards) stored no weights; their test accuracy is reported as
not replayed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from benchmarks.entrypoint import run_script
from benchmarks.results_io import REPLAY_KEYS, entry_label, read_board, recorded_mask, run_settings
from prune_env.deploy.reload import pruned_with_weights
from prune_env.errors import PruneEnvError
from prune_env.problem import PruneProblem
from prune_env.scored import ScoringProtocol
from prune_env.zoo.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE
from prune_env.zoo.sources import task_dataset
from prune_env.zoo.tasks import file_sha256
from prune_env.zoo.training import accuracy


def _compare(problems: list[str], name: str, value: float, recorded: float, tolerance: float) -> None:
    if abs(value - recorded) > tolerance:
        problems.append(f"{name} {value:.6f} != recorded {recorded:.6f}")


def _check_weights(
    entry: dict, problem: PruneProblem, masks: dict, data, base: Path, tolerance: float
) -> list[str]:
    """Reload the entry's fine-tuned weights into the rebuilt architecture; re-measure accuracy."""
    if "weights" not in entry:
        return (
            []
            if "selected" not in entry
            else ["no fine-tuned weights recorded: test accuracy not replayable"]
        )
    path = base / entry["weights"]["path"]
    if not path.is_file():
        return [f"fine-tuned weights {path} are missing"]
    if file_sha256(path) != entry["weights"]["sha256"]:
        return [f"fine-tuned weights {path} do not match their recorded hash"]
    try:
        network = pruned_with_weights(problem, masks, path)
    except PruneEnvError as exc:
        return [f"fine-tuned weights: {exc}"]
    problems: list[str] = []
    test_x, test_y = (t.to(problem.device) for t in data.test.tensors())
    test = accuracy(network, test_x, test_y)
    dense = accuracy(problem.model, test_x, test_y)
    _compare(problems, "test_accuracy", test, entry["test_accuracy"], tolerance)
    _compare(problems, "dense_test_accuracy", dense, entry["dense_test_accuracy"], tolerance)
    _compare(problems, "delta", test - dense, entry["delta"], tolerance)
    return problems


def _check_derived(entry: dict, tolerance: float) -> list[str]:
    """Columns computed from others must agree with them."""
    problems: list[str] = []
    _compare(problems, "compression", 1 / entry["params_ratio"], entry["compression"], tolerance)
    _compare(
        problems, "theoretical_speedup", 1 / entry["flops_ratio"], entry["theoretical_speedup"], tolerance
    )
    if "latency_ms" in entry:
        speedup = entry["dense_latency_ms"] / entry["latency_ms"]
        _compare(problems, "latency_speedup", speedup, entry["latency_speedup"], tolerance)
    return problems


def validate_entry(
    entry: dict, tolerance: float, data_dir: str | None, base: Path, latency_tolerance: float = 0.3
) -> tuple[list[str], list[str]]:
    """(problems, notes) of one entry: it replays when there are no problems."""
    if "error" in entry:
        return [], []  # an entry that recorded a failure has nothing to replay
    if "threads" in entry:
        torch.set_num_threads(int(entry["threads"]))  # the same kernels as when it was measured
    problems = _check_derived(entry, tolerance)
    notes = (
        []
        if "weights" in entry or "selected" in entry
        else ["test accuracy not replayed (format 1: no weights)"]
    )
    claimed, settings = recorded_mask(entry), run_settings(entry)
    val_size = settings.get("val_size", DEFAULT_VAL_SIZE)
    protocol = claimed["record"].protocol if claimed["record"] is not None else ScoringProtocol()
    problem = PruneProblem(
        entry["task"], budget=entry["budget"], budget_limit=entry["limit"], data_dir=data_dir, val_size=val_size,
        eval_samples=claimed.get("eval_samples", ScoringProtocol.eval_samples),
        bn_recalibration=protocol.bn_recalibration,  # the record's own scoring (its fine-tune is not replayed)
    )  # fmt: skip
    if problem.checkpoint["sha256"] != entry["checkpoint_sha256"]:
        problems.append(
            f"checkpoint hash {problem.checkpoint['sha256'][:12]} != recorded {entry['checkpoint_sha256'][:12]}"
        )
    replay = problem.score(claimed["masks"])
    is_latency = entry["budget"] in ("latency", "ort-latency")
    if is_latency:
        relative = abs(replay.cost - claimed["budget_value"]) / max(claimed["budget_value"], 1e-12)
        if relative > latency_tolerance:
            problems.append(
                f"latency ratio re-measured {replay.cost:.4f}, recorded {claimed['budget_value']:.4f} "
                f"({relative:.0%} apart > {latency_tolerance:.0%})"
            )
        if replay.satisfied != claimed["satisfied"]:
            problems.append(
                f"latency ratio {replay.cost:.4f} is on the other side of the limit {entry['limit']:g}"
            )
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
    data = task_dataset(entry["task"], data_dir, val_size, entry.get("split_seed", DEFAULT_SPLIT_SEED))
    x, y = (t.to(problem.device) for t in data.val.tensors())
    val = accuracy(problem.export(claimed["masks"]), x, y)
    _compare(problems, "val_accuracy_before_finetune", val, entry["val_accuracy_before_finetune"], tolerance)
    problems += _check_weights(entry, problem, claimed["masks"], data, base, tolerance)
    return problems, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--data-dir", default=None, help="where the dataset is (default: searched)")
    parser.add_argument(
        "--latency-tolerance", type=float, default=0.3, help="relative, for re-measured latency"
    )
    parser.add_argument(
        "--from-entry",
        type=int,
        default=1,
        help="replay entries K, K+1, ... (1-based: those a growing grid added)",
    )
    args = parser.parse_args(argv)
    if args.from_entry < 1:
        parser.error(f"--from-entry counts from 1, got {args.from_entry}")
    entries = read_board(args.results, finished=REPLAY_KEYS)[args.from_entry - 1 :]
    base = Path(args.results).parent
    failures = 0
    for entry in entries:
        problems, notes = validate_entry(entry, args.tolerance, args.data_dir, base, args.latency_tolerance)
        failures += bool(problems)
        details = [f"\n     {p}" for p in problems] + [f"\n     note: {n}" for n in notes]
        print(f"{'FAIL' if problems else 'ok  '} {entry_label(entry)}" + "".join(details))
    first = f" (from entry {args.from_entry})" if args.from_entry > 1 else ""
    print(f"{len(entries) - failures}/{len(entries)} entries replayed within {args.tolerance:g}{first}")
    return 1 if failures else 0


if __name__ == "__main__":
    run_script(main)
