"""User tasks: FILE.py:FUNCTION, module:FUNCTION and entry points, every data form, every refusal."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from user_task_files import write_task_file

import prune_env
from prune_env.errors import InvalidTaskError, UnknownTaskError
from prune_env.zoo.sources import check_task, task_dataset
from prune_env.zoo.user_tasks import (
    DatasetSplit,
    TensorSplit,
    entry_point_tasks,
    load_user_task,
    state_dict_sha256,
)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory):
    return write_task_file(tmp_path_factory.mktemp("user_task"))


def test_a_file_task_gives_the_model_and_every_data_form(task_file, monkeypatch):
    monkeypatch.chdir(task_file.parent)
    task = load_user_task("my_task.py:make")  # relative to the working directory
    assert task.reference == f"{task_file}:make" and task_file.is_absolute()
    data = prune_env.load_dataset("fashion-mnist")
    assert isinstance(task.data.train, DatasetSplit) and len(task.data.train) == 3000  # the loader's dataset
    assert isinstance(task.data.val, DatasetSplit) and isinstance(task.data.test, TensorSplit)
    for split, (x, y) in [(task.data.val, data.val.tensors(600)), (task.data.test, data.test.tensors(600))]:
        got_x, got_y = split.tensors()
        assert torch.equal(got_x, x) and torch.equal(got_y, y)
    bx, by = task.data.train.batch(np.array([4, 0, 2999]))
    x, y = data.train.tensors(3000)
    assert torch.equal(bx, x[[4, 0, 2999]]) and torch.equal(by, y[[4, 0, 2999]])
    assert task.data.num_classes == 10 and torch.equal(task.example_inputs, data.val.tensors(2)[0])
    assert task.checkpoint["sha256"] == state_dict_sha256(task.model)


def test_the_weights_digest_sees_one_changed_number(task_file):
    model = load_user_task(f"{task_file}:make").model
    changed = type(model)()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.classifier.bias[3] += 1e-6
    assert state_dict_sha256(changed) != state_dict_sha256(model)


def test_the_env_scores_a_user_task_like_a_zoo_task(task_file):
    env = prune_env.PruneEnv(f"{task_file}:make", eval_samples=200, budget_limit=0.5)
    assert env.problem.task == f"{task_file}:make" and env.num_groups == 2
    model = load_user_task(env.problem.task).model
    x, y = prune_env.load_dataset("fashion-mnist").val.tensors(200)
    expected = float((model(x).argmax(1) == y).float().mean())
    record = env.problem.score({g.name: list(range(g.width)) for g in env.groups})
    assert record.accuracy == pytest.approx(expected) and record.params_ratio == pytest.approx(1.0)
    assert env.problem.checkpoint["sha256"] == state_dict_sha256(model)
    assert (
        gym.make("PruneEnv-v0", task=f"{task_file}:make", eval_samples=50).unwrapped.problem.task
        == env.problem.task
    )


def test_a_module_reference_and_an_entry_point(task_file, tmp_path, monkeypatch, capsys):
    package = tmp_path / "acme_tasks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "vision.py").write_text(task_file.read_text())
    dist = tmp_path / "acme_tasks-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tasks\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[prune_env.tasks]\nacme-mlp = acme_tasks.vision:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert check_task("acme_tasks.vision:make") == "acme_tasks.vision:make"
    assert "acme-mlp" in entry_point_tasks()
    assert check_task("acme-mlp") == "acme-mlp"
    by_name, by_module = task_dataset("acme-mlp"), task_dataset("acme_tasks.vision:make")
    assert torch.equal(by_name.test.tensors()[0], by_module.test.tensors()[0])

    from prune_env.app.cli import main

    assert main(["tasks"]) == 0
    listed = capsys.readouterr().out
    assert "acme-mlp" in listed and "acme_tasks.vision:make" in listed and "acme-tasks" in listed
    sys.modules.pop("acme_tasks.vision", None)
    sys.modules.pop("acme_tasks", None)


BROKEN = {
    "returns_list": ("def make():\n    return [1, 2]\n", "returned a list; expected a mapping"),
    "missing_key": (
        "def make():\n    return {'model': SmallMLP(), 'train': None, 'val': None}\n",
        "missing ['test']",
    ),
    "not_a_module": (
        "def make():\n    x = torch.zeros(4, 784); y = torch.zeros(4, dtype=torch.long)\n"
        "    return {'model': 'net.pt', 'train': (x, y), 'val': (x, y), 'test': (x, y)}\n",
        "'model' is a str, not an nn.Module",
    ),
    "shapes_do_not_fit": (
        "def make():\n    x = torch.zeros(4, 1, 14, 14); y = torch.zeros(4, dtype=torch.long)\n"
        "    return {'model': SmallMLP(), 'train': (x, y), 'val': (x, y), 'test': (x, y)}\n",
        "the model fails on train inputs of shape (2, 1, 14, 14)",
    ),
    "labels_out_of_range": (
        "def make():\n    x = torch.zeros(4, 784); y = torch.full((4,), 10)\n"
        "    return {'model': SmallMLP(), 'train': (x, y), 'val': (x, y), 'test': (x, y)}\n",
        "train labels span 10..10, but the model scores 10 classes",
    ),
    "unequal_lengths": (
        "def make():\n    x = torch.zeros(4, 784); y = torch.zeros(3, dtype=torch.long)\n"
        "    return {'model': SmallMLP(), 'train': (x, y), 'val': (x, y), 'test': (x, y)}\n",
        "train has 4 inputs but 3 labels",
    ),
    "iterable_data": (
        "class Stream(torch.utils.data.IterableDataset):\n    def __iter__(self):\n        yield torch.zeros(784), 0\n"
        "def make():\n    x = torch.zeros(4, 784); y = torch.zeros(4, dtype=torch.long)\n"
        "    return {'model': SmallMLP(), 'train': Stream(), 'val': (x, y), 'test': (x, y)}\n",
        "train is a Stream; expected (inputs, labels) tensors, a map-style torch Dataset",
    ),
    "raises": (
        "def make():\n    raise FileNotFoundError('weights.pt')\n",
        "calling it raised FileNotFoundError: weights.pt",
    ),
    "syntax_error": ("def make(:\n", "raised SyntaxError"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_task_is_one_clear_error(case, tmp_path):
    body, message = BROKEN[case]
    path = write_task_file(tmp_path, name=f"broken_{case}.py", body=body)
    before = set(sys.modules)
    with pytest.raises(InvalidTaskError) as info:
        check_task(f"{path}:make")
    assert message in str(info.value) and "\n" not in str(info.value)
    if case == "syntax_error":
        assert set(sys.modules) == before  # a file that fails to import leaves no half module


def test_names_that_are_nothing_are_unknown_tasks(tmp_path):
    with pytest.raises(UnknownTaskError, match="FILE.py:FUNCTION"):
        check_task("no-such-task")
    with pytest.raises(InvalidTaskError, match="no file"):
        check_task(f"{tmp_path}/absent.py:make")
    with pytest.raises(InvalidTaskError, match="defines no 'build'"):
        check_task(f"{write_task_file(tmp_path)}:build")
