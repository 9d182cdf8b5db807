"""Distillation of a detector without an ImageNet start: teachers' soft labels on the cached training views, a
student that converts to an ordinary artifact, clear refusals of mismatched inputs."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from train import distill
from train import frozen_prefix as fp
from train.synthetic import write_dataset


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A tiny pixel-reading teacher (cross-attention hybrid at 64 px) trained by frozen_prefix, and its cache."""
    from train.convert import convert

    root = tmp_path_factory.mktemp("distill")
    data = write_dataset(root / "tex", "splits", n=16, size=64)
    argv = ["--name", "cross_attention", "--data", str(data), "--size", "64", "--cut", "rgb.blocks.3", "--sbi", "4",
            "--epochs", "1", "--samples-per-epoch", "16", "--batch-size", "8", "--no-mlflow", "--threads", "1",
            "--cache", str(root / "cache"), "--out", str(root / "teacher_run")]
    best = fp.run(fp.build_parser().parse_args(argv))
    teacher = convert(best, root / "models", log_to_mlflow=False)
    (cache,) = (root / "cache").iterdir()
    return {"data": data, "cache": cache, "teacher": teacher, "root": root}


def _argv(run, out, *extra):
    return ["--name", "efficientnet_b3", "--data", str(run["data"]), "--pixels", str(run["cache"]),
            "--teacher", str(run["teacher"]), "--size", "64", "--epochs", "1", "--samples-per-epoch", "16",
            "--batch-size", "8", "--threads", "1", "--no-mlflow", "--out", str(out), *extra]


@pytest.mark.slow
def test_a_student_learns_from_the_teachers_and_converts(teacher_run, tmp_path, monkeypatch):
    from detectors.artifacts import load_artifact
    from train.convert import convert

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'stray.db'}")
    best = distill.run(distill.build_parser().parse_args(_argv(teacher_run, tmp_path / "run")))
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert ckpt["name"] == "efficientnet_b3" and ckpt["input_size"] == 64
    training = ckpt["training"]
    assert training["start"].startswith("random initialisation")
    assert [t["name"] for t in training["teachers"]] == ["cross_attention"]
    assert training["train_rows"]["kinds"]["sbi"] == 4
    assert set(ckpt["metrics"]["val_auc_by_source"]) and ckpt["metrics"]["temperature"] > 0

    # the soft labels are the teacher's calibrated probabilities of exactly the cached training views
    soft = np.load(tmp_path / "run" / "teacher.npy")
    views = np.load(teacher_run["cache"] / "train_pixels.npy")
    teacher = load_artifact(teacher_run["teacher"])
    assert np.allclose(soft, teacher.predict(list(views)), atol=1e-5)

    folder = convert(best, tmp_path / "models", log_to_mlflow=False)
    student = load_artifact(folder)
    probs = student.predict(list(views[:3]))
    assert probs.shape == (3,) and np.all((probs >= 0) & (probs <= 1))
    # its card says what it is: a student of named teachers, from random weights
    from train.model_card import model_card
    card = model_card(folder)
    assert "a student from random weights" in card and "`cross_attention` (sha256" in card
    assert "No ImageNet start" in card


@pytest.mark.slow
def test_an_interrupted_run_resumes_without_asking_the_teachers_again(teacher_run, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = _argv(teacher_run, out, "--epochs", "2")
    from train import epochs
    real_auc, calls = epochs.auc_by_source, []

    def interrupt_in_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_auc(*args, **kwargs)

    monkeypatch.setattr(epochs, "auc_by_source", interrupt_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        distill.run(distill.build_parser().parse_args(argv))
    assert torch.load(out / "last.pt", map_location="cpu", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(epochs, "auc_by_source", real_auc)
    soft = np.load(out / "teacher.npy")

    def no_teacher_pass(*args, **kwargs):
        raise AssertionError("the teachers' labels were computed again")

    monkeypatch.setattr(distill.LoadedDetector, "logits", no_teacher_pass)
    distill.run(distill.build_parser().parse_args([*argv, "--resume"]))
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1 and [h["epoch"] for h in last["history"]] == [0, 1]
    assert np.array_equal(np.load(out / "teacher.npy"), soft)


@pytest.mark.slow
def test_a_teacher_with_its_own_cache_runs_only_after_its_cut(teacher_run, tmp_path):
    from detectors.artifacts import load_artifact

    argv = _with(_argv(teacher_run, tmp_path / "run"), "--teacher", f"{teacher_run['teacher']}={teacher_run['cache']}")
    distill.run(distill.build_parser().parse_args(argv))
    soft = np.load(tmp_path / "run" / "teacher.npy")
    views = np.load(teacher_run["cache"] / "train_pixels.npy")
    # the cached prefix is float16: the same probabilities as the whole model, to rounding
    assert np.allclose(soft, load_artifact(teacher_run["teacher"]).predict(list(views)), atol=2e-3)


def _with(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


def test_mismatched_inputs_are_refused_in_one_line(teacher_run, tmp_path):
    parse = distill.build_parser().parse_args
    with pytest.raises(SystemExit, match="cannot be its own teacher"):
        distill.run(parse(_with(_argv(teacher_run, tmp_path / "a"), "--name", "cross_attention")))
    with pytest.raises(SystemExit, match="not a frozen-prefix cache"):
        distill.run(parse(_with(_argv(teacher_run, tmp_path / "b"), "--pixels", str(tmp_path))))
    # a cache made from other data: its rows do not line up with this crop index
    other = tmp_path / "other_cache"
    shutil.copytree(teacher_run["cache"], other)
    key = json.loads((other / "key.json").read_text())
    (other / "key.json").write_text(json.dumps({**key, "sbi": key["sbi"] + 3}))
    with pytest.raises(SystemExit, match="made from other data"):
        distill.run(parse(_with(_argv(teacher_run, tmp_path / "c"), "--pixels", str(other))))
    renamed = tmp_path / "renamed_cache"
    shutil.copytree(teacher_run["cache"], renamed)
    (renamed / "key.json").write_text(json.dumps({**key, "name": "xception"}))
    with pytest.raises(SystemExit, match="caches xception at 64 px, not the teacher cross_attention"):
        distill.run(parse(_with(_argv(teacher_run, tmp_path / "e"), "--teacher",
                                f"{teacher_run['teacher']}={renamed}")))
    with pytest.raises(SystemExit, match="--alpha"):
        distill.run(parse([*_argv(teacher_run, tmp_path / "d"), "--alpha", "1.5"]))
