"""Policy files: a round trip that acts the same, loading that never unpickles code, and the
command line from train-policy to prune --policy."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

from agents import make_agent
from prune_env import PruneEnv
from prune_env.app.cli import main
from prune_env.app.policy import PolicyFileError, load_policy, propose, save_policy

MLP = "fashion-mnist-mlp"
META = {"tasks": [MLP], "budgets": {"params": {"low": 0.05, "high": 0.3}}, "evaluations": 0}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    env = PruneEnv(MLP, action_mode="ratio", budget_limit=(0.05, 0.3), eval_samples=50)
    model = make_agent("ppo-lag-scaled", env, n_steps=8, batch_size=8, seed=0)
    model.learn(16)
    path = tmp_path_factory.mktemp("policy") / "p.zip"
    save_policy(model.policy, "ppo-lag-scaled", META, path)
    return model, path


def test_a_saved_policy_acts_as_the_trained_one(saved):
    model, path = saved
    loaded = load_policy(path)
    assert loaded.agent == "ppo-lag-scaled" and loaded.tasks == [MLP]
    for key, tensor in model.policy.state_dict().items():
        torch.testing.assert_close(loaded.policy.state_dict()[key], tensor, rtol=0, atol=0)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 26)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded.act(obs, deterministic=True), model.predict(obs, deterministic=True)[0]
    )


def test_trained_on_says_which_instances_the_policy_met(saved):
    loaded = load_policy(saved[1])
    assert loaded.trained_on(MLP, "params", 0.1)
    assert not loaded.trained_on(MLP, "params", 0.4)  # a held-out limit
    assert not loaded.trained_on(MLP, "flops", 0.1)  # a held-out budget
    assert not loaded.trained_on("fashion-mnist-cnn", "params", 0.1)  # a held-out network


def test_candidates_are_the_deterministic_episode_then_seeded_samples(saved):
    from prune_env import PruneProblem

    loaded = load_policy(saved[1])
    problem = PruneProblem(MLP, budget_limit=0.1, eval_samples=50, seed=0)
    first = propose(loaded, problem, 4, seed=3)
    again = propose(loaded, problem, 4, seed=3)
    assert [c.source for c in first] == ["deterministic", "sampled", "sampled", "sampled"]
    assert [c.masks for c in first] == [c.masks for c in again]
    assert all(c.limits == [0.1] and c.satisfied for c in first)  # ScaleToBudget: feasible by estimate


def _rewrite(path, out, **replace):
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    files.update(replace)
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_never_unpickles_code(saved, tmp_path, capsys):
    path = saved[1]
    evil = io.BytesIO()
    torch.save({"log_std": Payload()}, evil, pickle_module=pickle)
    with pytest.raises(PolicyFileError, match="more than tensors"):
        load_policy(_rewrite(path, tmp_path / "evil.zip", **{"weights.pt": evil.getvalue()}))
    assert "must never run" not in capsys.readouterr().out
    header = json.loads(zipfile.ZipFile(path).read("policy.json"))
    for key, value in (("policy_class", "os.system"), ("activation_fn", "Exec"), ("format", "sb3")):
        bad = _rewrite(path, tmp_path / f"{key}.zip", **{"policy.json": json.dumps({**header, key: value})})
        with pytest.raises(PolicyFileError):
            load_policy(bad)
    with pytest.raises(PolicyFileError, match="not a prune-env policy"):
        load_policy(_rewrite(path, tmp_path / "empty.zip", **{"policy.json": b"{"}))
    with pytest.raises(PolicyFileError, match="no policy file"):
        load_policy(tmp_path / "missing.zip")


def test_train_policy_then_prune_with_it(tmp_path, capsys):
    policy = tmp_path / "policy.zip"
    assert main(["train-policy", "--tasks", MLP, "--budget", "params=0.05:0.3", "--budget", "flops=0.2,0.4",
                 "--timesteps", "16", "--out", str(policy), "--no-progress"]) == 0  # fmt: skip
    meta = load_policy(policy).meta
    assert meta["tasks"] == [MLP] and meta["budgets"] == {
        "params": {"low": 0.05, "high": 0.3},
        "flops": {"choices": [0.2, 0.4]},
    }
    assert meta["evaluations"] >= 8 and meta["protocol"] == {"eval_samples": 1000, "finetune_steps": 0,
                                                              "bn_recalibration": 8}  # fmt: skip
    out = tmp_path / "run"
    assert main(["prune", "--task", MLP, "--policy", str(policy), "--evaluations", "3", "--finetune-epochs", "0",
                 "--eval-samples", "100", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["search"]["evaluations"] == 3 and metrics["agent"] == "policy:ppo-lag-scaled"
    assert metrics["config"]["policy"] == str(policy) and metrics["budget"]["satisfied"]
    with pytest.raises(SystemExit):
        main(["train-policy", "--budget", "params"])  # KIND=LIMITS
    capsys.readouterr()
    assert main(["prune", "--policy", str(tmp_path / "nope.zip"), "--out", str(tmp_path / "x")]) == 2
    assert "no policy file" in capsys.readouterr().err


def test_refine_starts_from_the_deterministic_answer_and_searches_locally():
    from prune_env.app import load_policy, propose
    from prune_env.problem import PruneProblem

    policy = load_policy("default")
    problem = PruneProblem("fashion-mnist-mlp", budget="params", budget_limit=0.2, eval_samples=100)
    plain = propose(policy, problem, 1, seed=0)
    refined = propose(policy, problem, 5, seed=0, refine=True)
    assert len(refined) == 5 and refined[0].masks == plain[0].masks  # zero-shot first, as propose's
    assert [r.source for r in refined] == ["deterministic"] + ["refined"] * 4
    assert all(r.satisfied and r.params_ratio <= 0.2 for r in refined[1:])  # mutations scaled into the budget
    assert len({tuple(r.widths.values()) for r in refined}) > 1  # it moves away from the start
    assert propose(policy, problem, 5, seed=0, refine=True) == refined  # seeded


def test_prune_with_refine_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["prune", "--task", MLP, "--policy", "default", "--refine", "--evaluations", "3", "--finetune-epochs",
                 "0", "--eval-samples", "100", "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["config"]["refine"]
        and metrics["search"]["evaluations"] == 3
        and metrics["budget"]["satisfied"]
    )
    assert (
        main(["prune", "--task", MLP, "--refine", "--out", str(tmp_path / "x")]) == 2
    )  # refine needs a policy
    assert "refine applies to a trained policy" in capsys.readouterr().err
