"""The training engine (train.engine and the modules it drives): arguments, schedules, checkpoints, datasets, and short real runs of all five detectors
(MLflow into a temporary SQLite store, conversion, loading through detectors.artifacts)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from train import engine
from train.augment import SelfBlend
from train.checkpoints import load_checkpoint
from train.dataset import CropDataset
from train.passes import recalibrate_batchnorm
from train.schedules import Schedule, WarmupCosine
from train.synthetic import make_pair, write_dataset

FIVE = ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic") / "tex", "splits", n=40)


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch, tmp_path):
    # whatever a test forgets to pass, nothing may land in the repository's own store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'stray.db'}")


def _argv(data, out, uri, *extra):
    return ["--data", str(data), "--out", str(out), "--tracking-uri", uri, "--no-progress", "--threads", "1",
            *extra]


# ---------------------------------------------------------------------------------------------- fast
@pytest.mark.parametrize("name", FIVE)
def test_parser_defaults_come_from_the_registry(name):
    from detectors.registry import get_spec
    defaults = get_spec(name).train_defaults
    args = engine.parse_args(name, ["--data", "x"])
    assert args.lr == defaults["lr"] and args.batch_size == defaults["batch_size"]
    assert args.epochs == defaults["epochs"] and args.size == defaults.get("train_size", get_spec(name).input_size)
    assert engine.parse_args(name, ["--data", "x", "--lr", "0.1", "--size", "96"]).lr == 0.1


def test_parser_requires_data_and_sane_fractions(capsys):
    with pytest.raises(SystemExit):
        engine.parse_args("xception", [])
    with pytest.raises(SystemExit):
        engine.parse_args("xception", ["--data", "x", "--label-noise", "2"])


def test_warmup_cosine_shape():
    f = WarmupCosine(warmup_steps=10, total_steps=110, floor=0.01)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(110) == pytest.approx(0.01) and f(500) == pytest.approx(0.01)


@pytest.mark.parametrize("kind", ["cosine", "plateau"])
def test_schedule_state_roundtrip_through_weights_only(kind, tmp_path):
    def make():
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-3)
        return opt, Schedule(opt, kind, steps_per_epoch=5, epochs=4, warmup_epochs=1, floor=0.01)
    opt, sched = make()
    for _ in range(7):
        opt.step()
        sched.step_batch()
    sched.step_epoch(0.7)
    torch.save({"s": sched.state_dict(), "o": opt.state_dict()}, tmp_path / "s.pt")
    opt2, sched2 = make()
    saved = torch.load(tmp_path / "s.pt", weights_only=True)
    opt2.load_state_dict(saved["o"])  # the engine's resume order: optimizer, then schedule
    sched2.load_state_dict(saved["s"])
    assert sched2.step_count == 7
    sched.step_batch()
    sched2.step_batch()
    assert sched2.lr == pytest.approx(sched.lr)
    if kind == "plateau":
        assert sched.lr == pytest.approx(1e-3)  # warm-up over after 5 steps


def test_load_checkpoint_refuses_foreign_files(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_dataset_self_blend_turns_reals_into_fakes(synthetic):
    from train.data import discover
    samples = [s for s in discover(synthetic) if s.label == 0][:6]
    plain = CropDataset(samples, 48, (0.5,) * 3, (0.5,) * 3)
    sbi = CropDataset(samples, 48, (0.5,) * 3, (0.5,) * 3, sbi=SelfBlend(), sbi_fraction=1.0)
    torch.manual_seed(0)
    for i in range(len(samples)):
        x0, y0, _ = plain[i]
        x1, y1, _ = sbi[i]
        assert x0.shape == (3, 48, 48) and y0.item() == 0.0 and y1.item() == 1.0
        assert not torch.equal(x0, x1)


def test_precise_bn_recomputes_statistics():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    data = [(torch.randn(8, 3, 4, 4) * 3 + 5, torch.zeros(8), torch.arange(8)) for _ in range(4)]
    used = recalibrate_batchnorm(model, data, torch.device("cpu"), batches=3)
    assert used == 3 and not model.training
    with torch.no_grad():
        feats = torch.cat([model[0](x) for x, _, _ in data[:3]])
    bn = model[1]
    assert torch.allclose(bn.running_mean, feats.mean(dim=(0, 2, 3)), atol=1e-5)
    assert bn.momentum == 0.1


# ---------------------------------------------------------------------------------------------- real runs
def _check_mlflow(uri: str, run_id: str, epochs: int, converted: bool = True) -> None:
    from mlflow import MlflowClient
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run_id, "val_auc")] == list(range(1, epochs + 1))
    assert "final_val_auc" in run.data.metrics and "final_temperature" in run.data.metrics
    assert run.data.params["input_size"] == "64"
    root = Path(uri[len("sqlite:///"):]).parent / "mlartifacts"
    logged = {p.name for p in root.rglob("*") if run_id in str(p)}
    assert {"eval_report.json", "data_summary.json", "val_roc.png", "test_reliability.png", "best.pt"} <= logged
    if converted:
        assert {"model.safetensors", "manifest.json"} <= logged


@pytest.mark.slow
@pytest.mark.parametrize("name", FIVE)
def test_short_run_trains_converts_and_loads(name, synthetic, mlflow_uri, tmp_path):
    from detectors.artifacts import load_artifact
    out, models = tmp_path / "run", tmp_path / "models"
    result = engine.run(name, _argv(synthetic, out, mlflow_uri, "--size", "64", "--epochs", "2", "--batch-size",
                                    "8", "--limit", "16", "--augment", "light", "--sbi-fraction", "0.2",
                                    "--precise-bn", "2", "--convert-to", str(models)))
    assert result.epochs_run == 2 and result.stopped == "completed"
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "eval_report.json", "history.json", "plots",
                                                 "train.log", "data_summary.json"}
    ckpt = torch.load(out / "best.pt", weights_only=True)  # plain types only
    assert {"model", "name", "input_size", "model_kwargs", "epoch", "optimizer", "scheduler", "best_auc",
            "temperature", "metrics", "training", "run_id"} <= set(ckpt)
    assert ckpt["name"] == name and ckpt["input_size"] == 64 and ckpt["run_id"] == result.run_id
    assert all(t.device.type == "cpu" for t in ckpt["model"].values())
    assert ckpt["temperature"] == pytest.approx(result.temperature) and "val_auc" in ckpt["metrics"]
    assert ckpt["training"]["data"]["splits"]["train"]["n"] == 16
    _check_mlflow(mlflow_uri, result.run_id, 2)

    detector = load_artifact(result.artifact)
    assert detector.input_size == 64 and detector.temperature == pytest.approx(result.temperature)
    assert detector.manifest.run_id == result.run_id and "val_auc" in detector.manifest.metrics
    crops = list(make_pair(np.random.default_rng(1), 80))
    probs = detector.predict(crops)
    assert probs.shape == (2,) and np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow
def test_learning_happens(tmp_path, mlflow_uri):
    """cnn_transformer learns the seam task: AUC > 0.8 on its test split and on freshly generated images."""
    from detectors.artifacts import load_artifact
    from train.metrics import roc_auc
    data = write_dataset(tmp_path / "learn", "flat", n=70, seed=5)
    result = engine.run("cnn_transformer", _argv(data, tmp_path / "run", mlflow_uri, "--size", "64", "--epochs",
                                                 "3", "--batch-size", "16", "--augment", "flip",
                                                 "--convert-to", str(tmp_path / "models")))
    assert result.report["test"]["calibrated"]["auc"] > 0.8
    rng = np.random.default_rng(1234)
    pairs = [make_pair(rng, 64) for _ in range(20)]
    crops = [c for pair in pairs for c in pair]
    labels = [0, 1] * 20
    probs = load_artifact(result.artifact).predict(crops)
    assert roc_auc(labels, probs) > 0.8


@pytest.mark.slow
def test_resume_continues_the_same_run(synthetic, mlflow_uri, tmp_path):
    common = ["--size", "64", "--batch-size", "8", "--limit", "16", "--augment", "none", "--precise-bn", "2"]
    first = engine.run("cnn_transformer", _argv(synthetic, tmp_path / "run", mlflow_uri, "--epochs", "1", *common))
    assert first.epochs_run == 1
    second = engine.run("cnn_transformer", ["--resume", str(first.last_path), "--epochs", "2", "--no-progress"])
    assert second.out_dir == first.out_dir and second.epochs_run == 2 and second.run_id == first.run_id
    ckpt = load_checkpoint(second.last_path)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 2
    assert ckpt["training"]["args"]["limit"] == 16  # arguments came back from the checkpoint
    _check_mlflow(mlflow_uri, first.run_id, 2, converted=False)


@pytest.mark.slow
def test_time_limit_and_faults(synthetic, tmp_path):
    result = engine.run("cnn_transformer", ["--data", str(synthetic), "--out", str(tmp_path / "run"), "--no-mlflow",
                                            "--no-progress", "--size", "64", "--epochs", "5", "--batch-size", "8",
                                            "--max-minutes", "0.0001", "--label-noise", "0.25", "--precise-bn", "0"])
    assert result.stopped == "time_limit" and result.epochs_run == 1 and result.best_path.is_file()
    summary = load_checkpoint(result.best_path)["training"]["data"]
    assert summary["faults"]["label_noise"]["flipped"] == round(0.25 * summary["splits"]["train"]["n"])
    assert not math.isnan(result.temperature)
