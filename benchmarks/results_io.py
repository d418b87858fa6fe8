"""Leaderboard results files: JSON lines, one entry per line, read and appended in one place.

An entry (format 2) holds the chosen mask as a :class:`prune_env.ScoredMask` under
``"selected"`` (masks, widths, every budget value, ratios, the scoring protocol) and the run's
settings under ``"config"`` (the fields of ``PruneConfig`` a grid sets). The first committed
leaderboards (format 1) kept masks, budget value and a few settings flat instead;
:func:`recorded_mask` and :func:`run_settings` read both, so those files still validate.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: one grid process per results file
    fcntl = None

from prune_env.errors import InvalidRecordError
from prune_env.scored import ScoredMask

FORMAT = 2
# What every leaderboard entry holds, a failed one included; a finished one also BOARD_RESULT_KEYS.
BOARD_KEYS = ("task", "budget", "limit", "agent", "seed", "satisfied")
BOARD_RESULT_KEYS = ("params_ratio", "test_accuracy")
REPLAY_KEYS = (
    "checkpoint_sha256",
    "params_ratio",
    "val_accuracy_before_finetune",
)  # what validate.py replays


def read_results(*paths: str | Path, require: tuple[str, ...] = (), what: str = "an entry") -> list[dict]:
    """Every entry of the given files, in order (a missing file has none). With ``require``,
    each entry must hold those keys: a file of another kind is one clear error, not a KeyError
    deep inside a script."""
    entries = []
    for path in map(Path, paths):
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRecordError(f"{path}:{number}: not a JSON entry ({exc})") from exc
            missing = [k for k in require if not isinstance(entry, dict) or k not in entry]
            if missing:
                raise InvalidRecordError(f"{path}:{number}: not {what} (no {', '.join(missing)})")
            entries.append(entry)
    return entries


def read_board(*paths: str | Path, finished: tuple[str, ...] = BOARD_RESULT_KEYS) -> list[dict]:
    """The entries of leaderboard results files (as leaderboard.py writes them); a missing file
    or a file of another kind (or an entry without the ``finished`` keys, unless it recorded an
    error) is an :class:`InvalidRecordError` naming it."""
    for path in map(Path, paths):
        if not path.is_file():
            raise InvalidRecordError(f"{path}: no such results file")
    entries = read_results(*paths, require=BOARD_KEYS, what="a leaderboard entry")
    for entry in entries:
        missing = [k for k in finished if "error" not in entry and k not in entry]
        if missing:
            raise InvalidRecordError(
                f"{entry_label(entry)}: not a finished leaderboard entry (no {', '.join(missing)})"
            )
    return entries


def append_atomically(path: Path, entry: dict) -> None:
    """Rewrite the file with one more line through a temporary file and an atomic rename, so a
    killed run never leaves a partial line. Locked, so grid processes sharing a file (``--seeds 1``
    and ``--seeds 2`` side by side) never drop each other's entries."""
    with _locked(path):
        lines = path.read_text() if path.is_file() else ""
        _write_atomically(path, lines + json.dumps(entry, sort_keys=True) + "\n")


def replace_atomically(path: Path, entry: dict, same) -> None:
    """Rewrite the file with ``entry`` in place of the first entry for which ``same(old)`` holds
    (appended when none does), atomically like :func:`append_atomically`."""
    with _locked(path):
        entries = read_results(path) if path.is_file() else []
        at = next((i for i, old in enumerate(entries) if same(old)), len(entries))
        entries[at : at + 1] = [entry]
        _write_atomically(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))


@contextlib.contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``PATH.lock`` for a read-modify-write of ``path``: the rename
    replaces the file itself, so the lock lives beside it."""
    if fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def entry_key(entry: dict) -> tuple:
    """The grid cell and seed an entry belongs to (one entry per key)."""
    return (entry["task"], entry["budget"], float(entry["limit"]), entry["agent"], int(entry["seed"]))


def entry_label(entry: dict) -> str:
    return f"{entry['task']} {entry['budget']}<={entry['limit']:g} {entry['agent']} seed {entry['seed']}"


def recorded_mask(entry: dict) -> dict:
    """The chosen mask's recorded values: ``masks``, ``budget_value``, ``params_ratio``,
    ``flops_ratio``, ``satisfied``, ``eval_samples`` and, for format 2, ``record`` (the whole
    :class:`ScoredMask`)."""
    if "selected" in entry:
        record = ScoredMask.from_dict(entry["selected"])
        return {
            "masks": record.masks, "budget_value": record.cost, "params_ratio": record.params_ratio,
            "flops_ratio": record.flops_ratio, "satisfied": record.satisfied,
            "eval_samples": record.protocol.eval_samples, "record": record,
        }  # fmt: skip
    keys = ("masks", "budget_value", "params_ratio", "flops_ratio", "satisfied", "eval_samples")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise InvalidRecordError(f"{entry_label(entry)}: entry has neither 'selected' nor {missing}")
    return {**{k: entry[k] for k in keys}, "record": None}


LEGACY_BASELINES = ("uniform-l1", "global-l1", "random-search")


def scoring_protocol(entry: dict) -> dict:
    """How an entry's candidates were scored (``eval_samples``, ``episode_finetune``,
    ``bn_recalibration``). Format 1 did not record it: its baselines were scored without
    fine-tune, and its RL agents' schedule is unknown from the entry alone."""
    if "protocol" in entry:
        return entry["protocol"]
    schedule = [0] if entry["agent"] in LEGACY_BASELINES else "not recorded (format 1)"
    return {"eval_samples": entry.get("eval_samples"), "episode_finetune": schedule, "bn_recalibration": 0}


def run_settings(entry: dict) -> dict:
    """The settings an entry was run with: format 2's ``config``, or format 1's flat keys."""
    if "config" in entry:
        return entry["config"]
    keys = ("finetune_epochs", "val_size", "latency_batch", "eval_samples", "timesteps")
    return {k: entry[k] for k in keys if k in entry}
