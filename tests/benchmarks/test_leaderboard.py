"""A tiny leaderboard grid end to end: run, kill, resume, validate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from prune_env.app.config import PruneConfig
from prune_env.scored import ScoredMask

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config["results"] = str(tmp_path / "results.jsonl")
    path = tmp_path / "smoke.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_tiny_grid_killed_resumed_and_validated(tmp_path):
    config = _config(tmp_path)
    results = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "benchmarks/leaderboard.py", "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not (results.is_file() and results.read_text().count("\n") >= 1):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-grid: the second entry is running (or just done)
    proc.wait()
    first = results.read_text().splitlines()
    assert 1 <= len(first) <= 2 and all(json.loads(line) for line in first)  # no partial line

    resumed = _run("benchmarks/leaderboard.py", "--config", str(config))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(first)} entries done" in resumed.stderr
    lines = results.read_text().splitlines()
    assert lines[: len(first)] == first  # finished entries are kept, not rerun
    entries = [json.loads(line) for line in lines]
    assert [e["agent"] for e in entries] == ["ppo-lag", "uniform-l1"]
    for e in entries:
        selected = ScoredMask.from_dict(e["selected"])  # the run's record, embedded as is
        assert e["satisfied"] and selected.satisfied and selected.cost <= 0.5
        assert selected.params_ratio == pytest.approx(e["params_ratio"])  # record == exported network
        assert abs(e["compression"] - 1 / e["params_ratio"]) < 1e-9
        assert e["config"]["eval_samples"] == selected.protocol.eval_samples == 200
        assert e["config"]["timesteps"] == 64 and e["config"]["sampled_episodes"] == 2  # the YAML's settings
        assert e["config"]["latency_batch"] == PruneConfig().latency_batch  # unset: the one default
        for key in (
            "checkpoint_sha256",
            "split_seed",
            "evaluations",
            "test_accuracy",
            "dense_test_accuracy",
            "delta",
            "latency_speedup",
            "hyperparameters",
        ):
            assert key in e, key

    valid = _run("benchmarks/validate.py", str(results))
    assert valid.returncode == 0, valid.stdout + valid.stderr[-2000:]
    assert "2/2 entries replayed" in valid.stdout
    newest = _run("benchmarks/validate.py", str(results), "--from-entry", "2")  # what a growing grid added
    assert newest.returncode == 0 and "1/1 entries replayed within 0.0001 (from entry 2)" in newest.stdout
    assert "uniform-l1" in newest.stdout and "ppo-lag" not in newest.stdout

    report = _run(
        "benchmarks/report.py",
        str(results),
        "--out",
        str(tmp_path / "board"),
        "--command",
        "python benchmarks/leaderboard.py --config smoke.yaml",
    )
    assert report.returncode == 0, report.stderr[-2000:]
    board = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert (
        "## fashion-mnist-mlp, params <= 0.5" in board
        and "python benchmarks/leaderboard.py --config smoke.yaml" in board
    )
    ranked = [
        line.split("|")[2].strip()
        for line in board.splitlines()
        if line.startswith("| 1 ") or line.startswith("| 2 ")
    ]
    best = max(entries, key=lambda e: e["test_accuracy"])["agent"]
    assert ranked[0] == best and sorted(ranked) == ["ppo-lag", "uniform-l1"]
    assert (tmp_path / "board" / "fashion-mnist-mlp__accuracy_vs_params_ratio.png").is_file()

    # the agent's per-rollout curves travel with its entry; learning_curves.py restates them by quarter
    training = entries[0]["training"]
    assert training["timesteps"][-1] >= 64 and "training" not in entries[1]
    curves = _run("benchmarks/learning_curves.py", str(results), "--out", str(tmp_path / "curves"))
    assert curves.returncode == 0, curves.stderr[-2000:]
    rows = [
        line for line in (tmp_path / "curves" / "CURVES.md").read_text().splitlines() if "| ppo-lag |" in line
    ]
    first_quarter = np.nanmean(np.array_split(np.asarray(training["reward"], dtype=float), 4)[0])
    assert len(rows) == 1 and f"| accuracy | {first_quarter:.3f} |" in rows[0]

    tampered = tmp_path / "tampered.jsonl"
    baseline = entries[1]  # uniform-l1: scored without fine-tune, so its accuracy replays exactly
    bad = dict(
        baseline,
        val_accuracy_before_finetune=baseline["val_accuracy_before_finetune"] + 0.01,
        params_ratio=0.01,
        selected={**baseline["selected"], "accuracy": baseline["selected"]["accuracy"] + 0.01},
    )
    tampered.write_text(json.dumps(bad) + "\n")
    invalid = _run("benchmarks/validate.py", str(tampered))
    assert invalid.returncode == 1
    for problem in ("params_ratio", "val_accuracy_before_finetune", "accuracy (scoring protocol)"):
        assert problem in invalid.stdout, problem

    # every number a table shows, hand-edited alone, fails the replay
    selected = baseline["selected"]
    edits = {
        "test_accuracy": dict(test_accuracy=baseline["test_accuracy"] + 0.002),
        "delta": dict(delta=baseline["delta"] + 0.01),
        "compression": dict(compression=baseline["compression"] * 1.1),
        "budget_value": dict(selected={**selected, "costs": [selected["costs"][0] - 0.01]}),
        "constraint_satisfied": dict(selected={**selected, "satisfied": False}),
        "recorded hash": dict(weights={**baseline["weights"], "sha256": "0" * 64}),
    }
    tampered.write_text("".join(json.dumps(dict(baseline, **edit)) + "\n" for edit in edits.values()))
    invalid = _run("benchmarks/validate.py", str(tampered))
    assert invalid.returncode == 1 and f"0/{len(edits)} entries replayed" in invalid.stdout
    blocks = invalid.stdout.split("FAIL")[1:]
    for (what, _), block in zip(edits.items(), blocks):
        assert what in block, (what, block)


def test_workers_run_the_grid_and_random_search_matches_the_agents_evaluations(tmp_path):
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(agents=["random-search", "ppo-lag"], seeds=[0, 1], results=str(tmp_path / "w.jsonl"))
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config))
    run = _run("benchmarks/leaderboard.py", "--config", str(path), "--workers", "2")
    assert run.returncode == 0, run.stderr[-2000:]
    entries = {
        (e["agent"], e["seed"]): e for e in map(json.loads, (tmp_path / "w.jsonl").read_text().splitlines())
    }
    assert set(entries) == {(a, s) for a in ("random-search", "ppo-lag") for s in (0, 1)}
    for seed in (0, 1):
        agent, search = entries[("ppo-lag", seed)], entries[("random-search", seed)]
        assert search["evaluations"] == agent["evaluations"] == search["hyperparameters"]["evaluations"]
        assert agent["threads"] == max(1, (os.cpu_count() or 1) // 2)
    bad = _run("benchmarks/leaderboard.py", "--config", str(path), "--workers", "0")
    assert bad.returncode == 2 and "--workers must be >= 1" in bad.stderr


def test_unknown_config_key_is_an_error(tmp_path):
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config["finetune_epoch"] = 3  # a typo must not silently fall back to the default
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    run = _run("benchmarks/leaderboard.py", "--config", str(path))
    assert run.returncode != 0 and "unknown keys ['finetune_epoch']" in run.stderr


def _entry(agent: str, seed: int, schedule: list[int], accuracy: float) -> dict:
    protocol = {"eval_samples": 200, "episode_finetune": schedule, "bn_recalibration": 0}
    return {
        "task": "fashion-mnist-mlp", "budget": "params", "limit": 0.5, "agent": agent, "seed": seed,
        "satisfied": True, "test_accuracy": accuracy, "dense_test_accuracy": 0.9, "delta": accuracy - 0.9,
        "params_ratio": 0.5, "flops_ratio": 0.5, "latency_speedup": 1.5, "evaluations": 10, "timesteps": 0,
        "device": "cpu", "threads": 1, "config": {"finetune_epochs": 1, "latency_batch": 8}, "protocol": protocol,
    }  # fmt: skip


def test_report_refuses_a_cell_scored_under_different_protocols(tmp_path):
    results = tmp_path / "mixed.jsonl"
    entries = [_entry("ppo-lag", 0, [0, 32], 0.85), _entry("random-search", 0, [0], 0.86)]
    results.write_text("".join(json.dumps(e) + "\n" for e in entries))
    run = _run("benchmarks/report.py", str(results), "--out", str(tmp_path / "board"))
    assert run.returncode == 2 and not (tmp_path / "board" / "LEADERBOARD.md").exists()
    assert "different protocols" in run.stderr
    assert "fine-tune 0,32, BatchNorm recalibration 0: ppo-lag seed 0" in run.stderr
    assert "fine-tune 0, BatchNorm recalibration 0: random-search seed 0" in run.stderr

    entries[1]["protocol"]["episode_finetune"] = [0, 32]  # one protocol: ranked, the baseline first
    results.write_text("".join(json.dumps(e) + "\n" for e in entries))
    run = _run("benchmarks/report.py", str(results), "--out", str(tmp_path / "board"))
    assert run.returncode == 0, run.stderr
    board = (tmp_path / "board" / "LEADERBOARD.md").read_text()
    assert "| 1 | random-search | 86.00 +- 0.00 |" in board and "| 2 | ppo-lag |" in board
    assert "per-episode fine-tune 0,32" in board and "| 2.00x | 2.00x | 1.50x |" in board


def test_matched_searches_need_an_rl_entry_of_their_cell(tmp_path):
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(agents=["random-search", "evolution"], results=str(tmp_path / "alone.jsonl"))
    path = tmp_path / "alone.yaml"
    path.write_text(yaml.safe_dump(config))
    run = _run("benchmarks/leaderboard.py", "--config", str(path))
    assert run.returncode == 0, run.stderr[-2000:]
    entries = [json.loads(line) for line in (tmp_path / "alone.jsonl").read_text().splitlines()]
    assert [e["agent"] for e in entries] == ["random-search", "evolution"]
    for e in entries:
        assert not e["satisfied"] and "add an RL agent to the config" in e["error"]


def test_seeds_runs_a_subset_of_the_grid_and_rejects_others(tmp_path):
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(agents=["uniform-l1"], seeds=[0, 1], results=str(tmp_path / "seeds.jsonl"))
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    run = _run("benchmarks/leaderboard.py", "--config", str(path), "--seeds", "1")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "0 entries done, 1 to run" in run.stderr
    assert [json.loads(line)["seed"] for line in (tmp_path / "seeds.jsonl").read_text().splitlines()] == [1]
    rest = _run("benchmarks/leaderboard.py", "--config", str(path), "--seeds", "0", "--max-entries", "0")
    assert rest.returncode == 0 and "1 entries done, 0 to run" in rest.stderr
    bad = _run("benchmarks/leaderboard.py", "--config", str(path), "--seeds", "5")
    assert bad.returncode == 2 and "the config's seeds are [0, 1]" in bad.stderr


def test_the_cpu_leaderboards_share_one_protocol():
    """The CNN and ResNet-20 boards differ only in their task and results file: comparable cells."""
    configs = {
        name: yaml.safe_load((ROOT / "benchmarks" / "configs" / f"{name}.yaml").read_text())
        for name in ("fmnist-cnn-cpu", "fmnist-resnet-cpu")
    }
    cnn, resnet = (dict(c) for c in configs.values())
    assert resnet.pop("tasks") == ["fashion-mnist-resnet20"] and cnn.pop("tasks") == ["fashion-mnist-cnn"]
    assert resnet.pop("results") != cnn.pop("results")
    assert resnet == cnn


def test_the_report_says_how_much_of_each_grid_has_landed(tmp_path):
    config = yaml.safe_load((ROOT / "benchmarks" / "configs" / "smoke.yaml").read_text())
    config.update(agents=["ppo-lag", "random-search"], seeds=[0, 1])
    path = tmp_path / "two-seeds.yaml"
    path.write_text(yaml.safe_dump(config))
    results = tmp_path / "part.jsonl"
    entries = [
        _entry("ppo-lag", 0, [0], 0.85),
        _entry("random-search", 0, [0], 0.86),
        _entry("ppo-lag", 1, [0], 0.84),
    ]
    results.write_text("".join(json.dumps(e) + "\n" for e in entries))
    run = _run("benchmarks/report.py", str(results), "--out", str(tmp_path), "--configs", str(path))
    assert run.returncode == 0, run.stderr
    assert "| `two-seeds.yaml` | 3 of 4 | 0 |" in (tmp_path / "LEADERBOARD.md").read_text()


def test_an_agent_without_a_feasible_entry_is_listed_unranked_with_its_error(tmp_path):
    results = tmp_path / "board.jsonl"
    failed = {"task": "fashion-mnist-mlp", "budget": "params", "limit": 0.5, "agent": "amc-ddpg", "seed": 0,
              "satisfied": False, "error": "no episode of amc-ddpg satisfied the budget"}  # fmt: skip
    entries = [_entry("ppo-lag", 0, [0, 32], 0.85), failed]
    results.write_text("".join(json.dumps(e) + "\n" for e in entries))
    run = _run("benchmarks/report.py", str(results), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    board = (tmp_path / "LEADERBOARD.md").read_text()
    assert "| - | amc-ddpg | - | - | - | - | - | - | 0/1 | - |" in board and "nan" not in board
    assert "- not ranked: no episode of amc-ddpg satisfied the budget" in board
