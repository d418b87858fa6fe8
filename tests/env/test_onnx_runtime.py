"""ONNX Runtime: the parity check passes on the same network and fails on another; the
ort-latency budget measures the exported graph and caches by widths; a missing extra is one
clear error."""

from __future__ import annotations

import sys

import pytest
import torch

import prune_env
from prune_env.app.deployment import check_deployment
from prune_env.deploy.onnx_runtime import PARITY_TOLERANCE, onnx_bytes, ort_latency, ort_session, parity
from prune_env.errors import MissingDependencyError

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def cnn():
    model, _ = prune_env.load_checkpoint("fashion-mnist-cnn")
    x, _ = prune_env.load_dataset("fashion-mnist").test.tensors(300)
    return model, x


def test_parity_holds_for_the_exported_network_and_fails_for_another(cnn):
    model, x = cnn
    session = ort_session(onnx_bytes(model, x[:1]))
    same = parity(model, session, x)
    assert same["matches"] and same["max_abs_diff"] <= PARITY_TOLERANCE and same["argmax_agreement"] == 1.0
    other = type(model)()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.classifier.bias += 0.01  # every logit moves by 0.01: a different network
    different = parity(other.eval(), session, x)
    assert not different["matches"] and different["max_abs_diff"] == pytest.approx(0.01, abs=1e-3)
    assert ort_latency(session, x[:64], repeats=3) > 0


def test_ort_latency_budget_is_a_ratio_cached_by_widths():
    env = prune_env.PruneEnv("fashion-mnist-mlp", budget="ort-latency", budget_limit=1.0, eval_samples=50)
    keep_all = {g.name: list(range(g.width)) for g in env.groups}
    tiny = {g.name: list(range(4)) for g in env.groups}
    first = env.problem.score(tiny)
    again = env.problem.score(tiny)
    assert (
        first.cost == again.cost
        and env.problem.budget_cache.misses == 1
        and env.problem.budget_cache.hits == 1
    )
    full = env.problem.score(keep_all).cost
    assert 0.4 < full < 2.5  # the dense graph against itself: 1 up to timing noise
    assert first.cost < 0.8 * full  # 4 + 4 hidden units of 300 + 100 run faster


def test_without_onnxruntime_the_budget_and_the_run_say_what_to_install(cnn, monkeypatch):
    model, x = cnn
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"pip install 'prune-env\[onnx\]'"):
        prune_env.PruneEnv("fashion-mnist-mlp", budget="ort-latency", eval_samples=10)
    deployment = check_deployment(model, model, x, latency_batch=4)
    assert deployment.graph is not None  # exported (onnx is there); only the runtime checks are skipped
    assert "prune-env[onnx]" in deployment.metrics["skipped"]
