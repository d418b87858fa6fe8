"""`prune-env`: the main job end to end (tiny settings), evaluate, bad input, reproducibility."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

import prune_env
from prune_env.app.cli import main

TINY = [
    "--task",
    "fashion-mnist-mlp",
    "--timesteps",
    "64",
    "--finetune-epochs",
    "1",
    "--eval-samples",
    "200",
    "--limit",
    "0.6",
    "--no-progress",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "mlp"
    assert main(["prune", *TINY, "--seed", "3", "--out", str(out)]) == 0
    return out


def test_prune_writes_every_output(run_dir):
    for name in (
        "pruned_model.pt",
        "pruned_state_dict.pt",
        "pruned_model.onnx",
        "masks.json",
        "metrics.json",
        "report.md",
        "training_curves.png",
        "widths.png",
    ):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["budget"]["satisfied"] and metrics["budget"]["value"] <= 0.6
    report = (run_dir / "report.md").read_text()
    for row in (
        "test accuracy",
        "parameters",
        "FLOPs",
        "latency",
        "compression",
        "theoretical speedup",
        "budget: params <= 0.6",
    ):
        assert row in report
    p = metrics["pruned"]
    assert metrics["dense"]["params"] / p["params"] >= 1 / 0.6
    assert p["test_accuracy"] > 0.5
    curves = metrics["training"]  # per rollout: what the agent saw and how much it still explores
    lengths = {key: len(values) for key, values in curves.items()}
    assert len(set(lengths.values())) == 1 and lengths["timesteps"] >= 1, lengths
    assert all(0.0 < e < 1e3 for e in curves["entropy"]) and curves["timesteps"] == sorted(
        curves["timesteps"]
    )


def test_masks_json_replays_to_the_same_network(run_dir):
    import torch

    masks = json.loads((run_dir / "masks.json").read_text())
    assert masks["checkpoint_sha256"] == prune_env.load_checkpoint("fashion-mnist-mlp")[1]["sha256"]
    env = prune_env.PruneEnv(masks["task"], eval_samples=10)
    replayed = env.problem.export(masks["masks"])
    saved = torch.load(run_dir / "pruned_model.pt", weights_only=False)
    assert [tuple(p.shape) for p in replayed.parameters()] == [tuple(p.shape) for p in saved.parameters()]
    assert masks["widths"] == {"fc1": replayed.fc1.out_features, "fc2": replayed.fc2.out_features}


def test_evaluate_reproduces_the_report(run_dir, capsys):
    assert main(["evaluate", str(run_dir)]) == 0
    assert "reproduced" in capsys.readouterr().out


def test_onnx_export_runs_and_matches(run_dir):
    import onnx
    import torch

    model = onnx.load(str(run_dir / "pruned_model.onnx"))
    onnx.checker.check_model(model)
    saved = torch.load(run_dir / "pruned_model.pt", weights_only=False)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [1, 28, 28]
    assert model.graph.output[0].type.tensor_type.shape.dim[1].dim_value == saved.classifier.out_features


def test_the_written_onnx_file_is_checked_in_onnx_runtime(run_dir):
    import onnxruntime

    ort = json.loads((run_dir / "metrics.json").read_text())["onnx_runtime"]
    assert ort["parity"]["matches"] and ort["parity"]["inputs"] == 10_000  # the whole test split
    assert ort["dense_latency_ms"] > 0 and ort["pruned_latency_ms"] > 0
    # The report's verdict is about the file on disk: recompute it independently.
    session = onnxruntime.InferenceSession(
        str(run_dir / "pruned_model.onnx"), providers=["CPUExecutionProvider"]
    )
    x, _ = prune_env.load_dataset("fashion-mnist").test.tensors(500)
    saved = prune_env.load_pruned(run_dir)
    with torch.no_grad():
        expected = saved(x).numpy()
    got = session.run(None, {"input": x.numpy()})[0]
    assert abs(got - expected).max() <= ort["parity"]["max_abs_diff"] + 1e-6
    assert "ONNX Runtime (CPU" in (run_dir / "report.md").read_text()


def test_distill_changes_the_fine_tune_not_the_masks(run_dir, tmp_path):
    out = tmp_path / "distilled"
    assert (
        main(["prune", *TINY, "--seed", "3", "--distill", "--distill-weight", "0.5", "--out", str(out)]) == 0
    )
    plain, distilled = (json.loads((d / "masks.json").read_text()) for d in (run_dir, out))
    assert distilled["masks"] == plain["masks"]  # the search does not see the fine-tune
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["distill"] and config["distill_temperature"] == 4.0 and config["distill_weight"] == 0.5
    assert "distilled from the dense network (temperature 4, weight 0.5)" in (out / "report.md").read_text()


def test_ort_latency_budget_from_the_command_line(tmp_path):
    out = tmp_path / "ort"
    assert (
        main(
            [
                "prune",
                *TINY,
                "--budget",
                "ort-latency",
                "--limit",
                "0.8",
                "--finetune-epochs",
                "0",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["budget"]["name"] == "ort-latency" and metrics["budget"]["satisfied"]
    assert 0 < metrics["budget"]["value"] <= 0.8


def test_same_seed_same_masks(run_dir, tmp_path):
    assert (
        main(["prune", *TINY, "--seed", "3", "--finetune-epochs", "0", "--out", str(tmp_path / "again")]) == 0
    )
    first = json.loads((run_dir / "masks.json").read_text())["masks"]
    second = json.loads((tmp_path / "again" / "masks.json").read_text())["masks"]
    assert first == second


@pytest.mark.parametrize(
    "args, message",
    [
        (["prune", "--task", "imagenet-vit"], "unknown task 'imagenet-vit'"),
        (["prune", "--agent", "dqn"], "unknown agent 'dqn'"),
        (["prune", "--limit", "1.5"], r"must be in \(0, 1\]"),
        (["prune", "--limit", "0"], r"must be in \(0, 1\]"),
        (["evaluate", "/nonexistent/run"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err


def test_no_mask_within_budget_exits_nonzero(tmp_path, capsys):
    args = [a if a != "0.6" else "0.001" for a in TINY]  # below even one unit per layer (~0.003)
    assert main(["prune", *args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "no episode of ppo-lag satisfied the budget params <= 0.001" in err
    assert not (tmp_path / "run" / "pruned_model.pt").exists()


def test_unwritable_output_dir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["prune", *TINY, "--out", str(blocker / "run")]) == 2
    assert "cannot create output directory" in capsys.readouterr().err


def test_missing_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRUNE_ENV_NO_DOWNLOAD", "1")
    monkeypatch.setenv("PRUNE_ENV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("prune_env.zoo.data.DEBIAN_FASHION_MNIST", tmp_path / "nothing")
    prune_env.zoo.data._load_dataset_cached.cache_clear()
    try:
        assert main(["prune", *TINY, "--out", str(tmp_path / "run")]) == 2
    finally:
        prune_env.zoo.data._load_dataset_cached.cache_clear()
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err and len(err.strip().splitlines()) == 1


def test_console_script_lists_tasks_and_agents():
    out = subprocess.run(
        [sys.executable, "-m", "prune_env", "tasks"], capture_output=True, text=True, check=True
    ).stdout
    assert "fashion-mnist-cnn" in out and "cifar10-resnet56" in out
    # one column of names, the shipped ResNet-20 ready to prune and held out of the policy family
    assert (
        "fashion-mnist-resnet20  CIFAR ResNet-20" in out
        and "[ready, family: held-out]" in out.split("fashion-mnist-resnet20")[1].splitlines()[0]
    )
    assert "[ready, family: train]" in out.split("fashion-mnist-resnet8")[1].splitlines()[0]
    width = len("fashion-mnist-resnet20")  # the longest name
    assert all(line[width : width + 2] == "  " and line[width + 2] != " " for line in out.splitlines())
    out = subprocess.run(
        [sys.executable, "-m", "prune_env", "agents"], capture_output=True, text=True, check=True
    ).stdout
    assert "ppo-lag" in out and "td3-ratio-penalty" in out


class _Trap:
    """A pickle that runs code when loaded: it creates a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_evaluate_never_unpickles_the_full_model(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    marker = tmp_path / "code-ran"
    torch.save(_Trap(marker), run / "pruned_model.pt")
    torch.load(run / "pruned_model.pt", weights_only=False)  # the trap is real: unpickling runs it
    assert marker.exists()
    marker.unlink()

    assert main(["evaluate", str(run)]) == 0  # rebuilt from masks.json + the state dict instead
    assert "reproduced" in capsys.readouterr().out and not marker.exists()
    network = prune_env.load_pruned(run)
    widths = json.loads((run / "masks.json").read_text())["widths"]
    assert network.fc1.out_features == widths["fc1"] and network.fc2.out_features == widths["fc2"]


def test_load_pruned_refuses_weights_of_another_architecture(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    record = json.loads((run / "masks.json").read_text())
    record["masks"]["fc1"] = record["masks"]["fc1"][:-1]  # one unit fewer than the weights have
    record["widths"]["fc1"] -= 1
    (run / "masks.json").write_text(json.dumps(record))
    with pytest.raises(prune_env.PruneEnvError, match="does not fit the pruned architecture"):
        prune_env.load_pruned(run)
