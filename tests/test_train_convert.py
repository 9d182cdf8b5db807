"""Checkpoint -> artifact (train/convert.py) and MLflow tracking (train/tracking.py), without training."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from train import tracking
from train.convert import ConversionError, convert, main
from train.checkpoints import cpu_state, load_checkpoint, save_checkpoint


def _checkpoint(path: Path, name: str = "cnn_transformer", size: int = 64, run_id: str = "") -> Path:
    from detectors.registry import build_model
    torch.manual_seed(0)
    model = build_model(name, input_size=size)
    opt = torch.optim.AdamW(model.parameters())
    save_checkpoint(path, {"model": cpu_state(model), "name": name, "input_size": size,
                           "model_kwargs": dict(model.detector_kwargs), "epoch": 4, "optimizer": opt.state_dict(),
                           "scheduler": {}, "best_auc": 0.9, "temperature": 1.7,
                           "metrics": {"val_auc": 0.91, "test_auc": float("nan")},
                           "training": {"data": {"total": 10}, "args": {"lr": 0.001}}, "run_id": run_id})
    return path


def test_convert_writes_a_verified_artifact(tmp_path):
    from detectors.artifacts import load_artifact
    ckpt = _checkpoint(tmp_path / "best.pt")
    folder = convert(ckpt, tmp_path / "models", log_to_mlflow=False)
    assert folder == tmp_path / "models" / "cnn_transformer"
    det = load_artifact(folder)
    m = det.manifest
    assert m.temperature == pytest.approx(1.7) and m.input_size == 64 and m.model_kwargs == {"img_size": 64}
    assert m.metrics["val_auc"] == 0.91 and m.metrics["test_auc"] is None  # NaN stored as null: strict JSON
    assert m.training["epoch"] == 5 and m.training["data"] == {"total": 10}
    json.loads((folder / "manifest.json").read_text())  # parses as strict JSON
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (80, 80, 3), dtype=np.uint8) for _ in range(3)]
    reference = load_checkpoint(ckpt)
    from detectors.preprocess import to_tensor_batch
    from train.convert import model_from_checkpoint
    with torch.no_grad():
        want = model_from_checkpoint(reference)(to_tensor_batch(crops, 64, det.mean, det.std)).reshape(-1).numpy()
    assert np.allclose(det.logits(crops), want, atol=2e-2)


def test_convert_refuses_another_architecture(tmp_path):
    ckpt = _checkpoint(tmp_path / "best.pt")
    with pytest.raises(ConversionError, match="cnn_transformer"):
        convert(ckpt, tmp_path / "models", name="swin", log_to_mlflow=False)
    with pytest.raises(ConversionError, match="unknown detector"):
        convert(ckpt, tmp_path / "models", name="nope", log_to_mlflow=False)


def test_convert_cli(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path / "best.pt")
    assert main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "m"), "--no-mlflow"]) == 0
    assert "artifact:" in capsys.readouterr().out
    assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m"), "--no-mlflow"]) == 2


def test_convert_logs_to_the_training_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = tracking.Tracker(tracking_uri=uri, experiment="t")
    run_id = tracker.start(run_name="r")
    ckpt = _checkpoint(tmp_path / "best.pt", run_id=run_id)
    convert(ckpt, tmp_path / "models", tracking_uri=uri, experiment="t")
    logged = {p.name for p in (tmp_path / "mlartifacts").rglob("*")}
    assert {"model.safetensors", "manifest.json"} <= logged


def test_tracking_defaults(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.default_tracking_uri() == f"sqlite:///{tracking.REPO_ROOT / 'mlflow.db'}"
    assert tracking.artifact_root_for(tracking.default_tracking_uri()) == (tracking.REPO_ROOT / "mlartifacts").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.local:5000")
    assert tracking.default_tracking_uri() == "http://mlflow.local:5000"
    assert tracking.artifact_root_for("http://mlflow.local:5000") is None
    assert tracking.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_tracker_logs_offline_and_disabled_is_a_no_op(tmp_path, monkeypatch):
    from mlflow import MlflowClient
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    t = tracking.Tracker(tracking_uri=uri, experiment="exp")
    run_id = t.start(run_name="unit", tags={"detector": "x"})
    t.log_params({"lr": 0.001, "nested": {"a": 1}, "long": "x" * 9000})
    t.log_metrics({"val_auc": 0.75, "skip": float("nan"), "flag": True}, step=3)
    t.log_dict({"k": 1}, "summary.json")
    t.end()
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["nested.a"] == "1"
    assert run.data.metrics == {"val_auc": 0.75} and run.data.tags["detector"] == "x"
    assert (tmp_path / "store" / "mlartifacts" / "exp" / run_id / "artifacts" / "summary.json").is_file()
    assert not (tmp_path / "mlruns").exists()  # nothing in the working directory
    off = tracking.Tracker(enabled=False)
    assert off.start() is None
    off.log_metrics({"a": 1.0})
    off.end()
