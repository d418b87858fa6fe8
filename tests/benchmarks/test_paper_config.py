"""The paper's CIFAR-10 grid (benchmarks/configs/paper-cifar10.yaml), smoke-tested on tiny random
data: every task, budget and agent of the config runs through the leaderboard and the validator.

Only the sizes are shrunk (seeds, timesteps, fine-tune, evaluation images, the validation split);
the networks are the paper's, pretrained for one epoch on random images in a temporary cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from fake_data import write_fake_cifar10

from prune_env.zoo.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(
    seeds=[0], timesteps=16, finetune_epochs=0, episode_finetune=[0], eval_samples=16, sampled_episodes=2,
    val_size=32, latency_batch=1,
)  # fmt: skip
BASELINES_THAT_ALWAYS_FIT = ("uniform-l1", "global-l1")  # bisection on a keep ratio


def _run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env
    )


def test_paper_cifar10_config_runs_and_validates_on_tiny_random_data(tmp_path, monkeypatch):
    paper = yaml.safe_load((ROOT / "benchmarks" / "configs" / "paper-cifar10.yaml").read_text())
    data_dir = tmp_path / "cifar10"
    write_fake_cifar10(data_dir, per_batch=16, test=16)  # 80 training images, 32 of them validation
    monkeypatch.setenv("PRUNE_ENV_CACHE", str(tmp_path / "cache"))  # checkpoints go here
    monkeypatch.setenv("PRUNE_ENV_NO_DOWNLOAD", "1")
    for task in paper["tasks"]:
        pretrain(task, epochs=1, data_dir=data_dir, val_size=TINY["val_size"], progress=False)

    config = {**paper, **TINY, "results": str(tmp_path / "paper.jsonl"), "data_dir": str(data_dir)}
    config_path = tmp_path / "paper-tiny.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    board = _run("benchmarks/leaderboard.py", "--config", str(config_path), env=env)
    assert board.returncode == 0, board.stderr[-3000:]

    entries = [json.loads(line) for line in (tmp_path / "paper.jsonl").read_text().splitlines()]
    grid = {(t, a) for t in paper["tasks"] for a in paper["agents"]}
    assert {(e["task"], e["agent"]) for e in entries} == grid and len(entries) == len(grid)
    for e in entries:
        assert (e["budget"], e["limit"]) == ("params", 0.1)
        if "error" in e:  # an agent may find nothing feasible in 16 steps: recorded, not crashed
            assert e["agent"] not in BASELINES_THAT_ALWAYS_FIT and not e["satisfied"], e
            assert "params <= 0.1" in e["error"]
            continue
        assert (
            e["satisfied"]
            and e["params_ratio"] <= 0.1 + 1e-12
            and e["config"]["val_size"] == TINY["val_size"]
        )
        assert e["checkpoint_sha256"] and e["selected"]["masks"] and e["selected"]["satisfied"]
    fitted = [e for e in entries if e["agent"] in BASELINES_THAT_ALWAYS_FIT]
    assert len(fitted) == 2 * len(paper["tasks"]) and all(e["satisfied"] for e in fitted)

    valid = _run(
        "benchmarks/validate.py", str(tmp_path / "paper.jsonl"), "--data-dir", str(data_dir), env=env
    )
    assert valid.returncode == 0, valid.stdout[-3000:] + valid.stderr[-2000:]
    assert f"{len(entries)}/{len(entries)} entries replayed" in valid.stdout


def test_paper_config_is_the_papers_setting():
    paper = yaml.safe_load((ROOT / "benchmarks" / "configs" / "paper-cifar10.yaml").read_text())
    assert paper["tasks"] == ["cifar10-vgg11", "cifar10-vgg16", "cifar10-vgg19", "cifar10-resnet18"]
    assert paper["budgets"] == [{"kind": "params", "limit": 0.1}] and paper["seeds"] == [0, 1, 2]
    assert {"ppo-lag", "uniform-l1", "global-l1", "random-search"} <= set(paper["agents"])
