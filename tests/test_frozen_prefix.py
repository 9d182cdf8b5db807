"""Frozen-prefix fine-tuning: the split computes the model, the cache resumes, a short real run converts to an
artifact whose frozen part is still the ImageNet start."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from detectors.registry import build_model
from train import frozen_prefix as fp
from train.synthetic import write_dataset


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'stray.db'}")


@pytest.mark.parametrize("name,cut", [("xception", "block11"), ("cnn_transformer", "backbone.blocks.4"),
                                      ("cross_attention", "rgb.blocks.3")])
def test_prefix_then_suffix_is_the_model(name, cut):
    model = build_model(name, input_size=64).eval()
    split = fp.split_model(model, cut)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(split.forward_suffix(split.forward_prefix(x), pixels=x), model(x), atol=1e-5)
    assert split.needs_pixels == (name == "cross_attention")
    frozen = {id(p) for m in split.frozen for p in m.parameters()}
    assert frozen and not frozen & {id(p) for p in split.trainable()}
    assert {id(p) for p in split.head_parameters()} <= {id(p) for p in split.trainable()}


def test_bad_cuts_are_refused():
    with pytest.raises(ValueError, match="cannot be cut"):
        fp.split_model(build_model("xception", input_size=64), "block99")
    with pytest.raises(ValueError, match="cannot be cut"):
        fp.split_model(build_model("cnn_transformer", input_size=64), "backbone.blocks.9")


def test_auc_by_source_pairs_a_fake_only_source_with_its_partner_reals():
    labels = np.array([0, 0, 1, 1, 1, 1])
    probs = np.array([0.1, 0.2, 0.9, 0.8, 0.95, 0.05])
    sources = ["photos", "photos", "photos", "photos", "diffusion", "diffusion"]
    out = fp.auc_by_source(labels, probs, sources, {"diffusion": "photos"})
    assert out["photos"] == 1.0 and out["diffusion"] == 0.5
    assert fp.auc_by_source(labels, probs, sources, {})["diffusion"] is None


def test_cache_resumes_without_recomputing(tmp_path):
    data = write_dataset(tmp_path / "tex", "splits", n=12, size=48)
    from train.data import load_samples
    samples = load_samples([str(data)])
    split = fp.split_model(build_model("cross_attention", input_size=64).eval(), "rgb.blocks.3")
    rows = [(i, "clean", s.label) for i, s in enumerate(samples)]
    first, pixels = fp.build_cache(split, samples, rows, tmp_path / "c", "all", 64, (0.5,) * 3, (0.5,) * 3, 0)
    first, pixels = np.array(first), np.array(pixels)
    # the cached pixels, normalised, are exactly what inference feeds the model
    from detectors.preprocess import to_tensor_batch
    from train.dataset import read_rgb
    want = to_tensor_batch([read_rgb(s.path) for s in samples[:3]], 64, (0.5,) * 3, (0.5,) * 3)
    assert torch.equal(fp.pixels_tensor(pixels[:3], (0.5,) * 3, (0.5,) * 3), want)
    calls = []
    original = split.forward_prefix
    split.forward_prefix = lambda x: (calls.append(len(x)), original(x))[1]
    again, _ = fp.build_cache(split, samples, rows, tmp_path / "c", "all", 64, (0.5,) * 3, (0.5,) * 3, 0)
    assert calls == [1]            # only the shape probe; every row came from disk
    assert np.array_equal(first, np.asarray(again)) and first.dtype == np.float16


def test_short_run_converts_and_keeps_the_imagenet_prefix(tmp_path):
    from detectors.artifacts import load_artifact
    from detectors.gate import gate_decision
    from train.convert import convert

    data = write_dataset(tmp_path / "tex", "splits", n=24, size=64)
    argv = ["--name", "xception", "--data", str(data), "--size", "64", "--cut", "block11", "--sbi", "4",
            "--epochs", "2", "--samples-per-epoch", "32", "--batch-size", "16", "--probe", "--no-mlflow",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    best = fp.run(fp.build_parser().parse_args(argv))
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    start = build_model("xception", pretrained=True, input_size=64).state_dict()
    assert torch.equal(ckpt["model"]["block5.rep.1.pointwise.weight"], start["block5.rep.1.pointwise.weight"])
    assert not torch.equal(ckpt["model"]["conv4.pointwise.weight"], start["conv4.pointwise.weight"])
    # the frozen BatchNorm statistics too: caching ran the prefix in eval mode
    assert torch.equal(ckpt["model"]["block5.rep.2.running_mean"], start["block5.rep.2.running_mean"])
    assert torch.equal(ckpt["model"]["bn1.running_var"], start["bn1.running_var"])
    assert len(ckpt["training"]["history"]) == 2
    probe = json.loads((tmp_path / "run" / "probe.json").read_text())
    assert 0.0 <= probe["test_auc"] <= 1.0
    folder = convert(best, tmp_path / "models", log_to_mlflow=False)
    detector = load_artifact(folder)
    assert detector.input_size == 64
    assert set(detector.manifest.metrics["val_auc_by_source"]) == {"tex"}
    assert gate_decision(json.loads((folder / "manifest.json").read_text())).auc_by_source
    # a different schedule cannot resume
    argv[argv.index("--epochs") + 1] = "4"
    with pytest.raises(SystemExit, match="--resume needs"):
        fp.run(fp.build_parser().parse_args(argv + ["--resume"]))


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch):
    data = write_dataset(tmp_path / "tex", "splits", n=16, size=64)
    argv = ["--name", "cross_attention", "--data", str(data), "--size", "64", "--cut", "rgb.blocks.3",
            "--sbi", "0", "--epochs", "3", "--samples-per-epoch", "16", "--batch-size", "8", "--no-mlflow",
            "--threads", "1", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    from train import epochs
    saves = []
    real_save = epochs.save_checkpoint

    def killed_during_epoch_two(path, state):
        if path.name == "last.pt" and state["epoch"] == 1:
            raise KeyboardInterrupt
        saves.append(path.name)
        real_save(path, state)

    monkeypatch.setattr(epochs, "save_checkpoint", killed_during_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        fp.run(fp.build_parser().parse_args(argv))
    monkeypatch.setattr(epochs, "save_checkpoint", real_save)
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["history"]
    assert [h["epoch"] for h in first] == [0]
    best = fp.run(fp.build_parser().parse_args(argv + ["--resume"]))
    history = torch.load(best, weights_only=True)["training"]["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2] and history[0] == first[0]


def test_a_detector_without_an_offline_start_is_refused(tmp_path):
    argv = ["--name", "swin", "--data", str(tmp_path), "--cut", "layers", "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="no offline ImageNet start"):
        fp.run(fp.build_parser().parse_args(argv))


def test_a_hybrid_on_a_lite2_trunk_records_the_variant_and_converts(tmp_path):
    from detectors.artifacts import load_artifact
    from train.convert import convert

    data = write_dataset(tmp_path / "tex", "splits", n=16, size=64)
    argv = ["--name", "cnn_transformer", "--data", str(data), "--size", "64", "--cut", "backbone.blocks.3",
            "--model-kwarg", "trunk_variant=2", "--sbi", "2", "--epochs", "1", "--samples-per-epoch", "16",
            "--batch-size", "8", "--no-mlflow", "--threads", "1", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "run")]
    best = fp.run(fp.build_parser().parse_args(argv))
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert ckpt["model_kwargs"]["trunk_variant"] == 2
    # Lite2's stride-16 stage is 120 channels wide (Lite0's is 112): the ImageNet Lite2 start was used
    start = build_model("cnn_transformer", pretrained=True, input_size=64, trunk_variant=2).state_dict()
    assert torch.equal(ckpt["model"]["backbone.blocks.2.0.conv_pw.weight"], start["backbone.blocks.2.0.conv_pw.weight"])
    assert ckpt["model"]["proj.0.weight"].shape[1] == 120
    assert any("model_kwargs" in json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*/key.json"))
    detector = load_artifact(convert(best, tmp_path / "models", log_to_mlflow=False))
    assert detector.model.backbone.variant == 2


@pytest.mark.parametrize("bad", ["trunk_variant", "2=trunk_variant", "trunk_variant=two"])
def test_a_bad_model_kwarg_is_one_line(bad):
    with pytest.raises(SystemExit, match="KEY=JSON"):
        fp.parse_model_kwargs([bad])


def test_the_probe_of_a_hybrid_sees_only_its_imagenet_trunk(tmp_path):
    """The baseline of a hybrid is its ImageNet trunk's pooled features, not its freshly initialised Transformer."""
    model = build_model("cnn_transformer", input_size=64, trunk_variant=2).eval()
    split = fp.split_model(model, "backbone.blocks.3")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = split.probe_features(split.forward_prefix(x))
        assert torch.allclose(feats, model.backbone(x).mean(dim=(2, 3)), atol=1e-5)
    assert feats.shape == (2, 120)
    data = write_dataset(tmp_path / "tex", "splits", n=16, size=64)
    argv = ["--name", "cnn_transformer", "--data", str(data), "--size", "64", "--cut", "backbone.blocks.3",
            "--model-kwarg", "trunk_variant=2", "--sbi", "2", "--probe-only", "--no-mlflow", "--threads", "1",
            "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")]
    out = fp.run(fp.build_parser().parse_args(argv))
    probe = json.loads(out.read_text())
    assert "efficientnet_lite2 trunk" in probe["name"] and 0.0 <= probe["test_auc"] <= 1.0
    assert not (tmp_path / "run" / "best.pt").exists()


def test_a_soup_averages_two_runs_and_evaluates_like_a_run(tmp_path):
    from train.convert import convert

    data = write_dataset(tmp_path / "tex", "splits", n=16, size=64)
    base = ["--name", "cross_attention", "--data", str(data), "--size", "64", "--cut", "rgb.blocks.3", "--sbi", "0",
            "--samples-per-epoch", "16", "--batch-size", "8", "--no-mlflow", "--threads", "1",
            "--cache", str(tmp_path / "cache")]
    runs = [fp.run(fp.build_parser().parse_args(base + ["--epochs", str(e), "--seed", "0", "--out",
                                                           str(tmp_path / f"run{e}")])) for e in (1, 2)]
    states = [torch.load(r, weights_only=True)["model"] for r in runs]
    soup = fp.run(fp.build_parser().parse_args(base + ["--soup", *map(str, runs), "--out", str(tmp_path / "soup")]))
    ckpt = torch.load(soup, weights_only=True)
    name = "head.weight" if "head.weight" in ckpt["model"] else next(k for k, v in ckpt["model"].items()
                                                                      if v.is_floating_point() and v.ndim == 2)
    assert not torch.equal(states[0][name], states[1][name])
    assert torch.allclose(ckpt["model"][name], (states[0][name] + states[1][name]) / 2, atol=1e-6)
    assert [i["weight"] for i in ckpt["training"]["soup"]] == [0.5, 0.5]
    assert ckpt["training"]["history"] == [] and ckpt["temperature"] > 0
    assert "model soup" in ckpt["training"]["recipe"]
    assert set(ckpt["metrics"]["val_auc_by_source"]) == {"tex"}
    convert(soup, tmp_path / "models", log_to_mlflow=False)     # an ordinary artifact
    with pytest.raises(SystemExit, match="--soup: a soup needs at least two"):
        fp.run(fp.build_parser().parse_args(base + ["--soup", str(runs[0]), "--out", str(tmp_path / "bad")]))
    with pytest.raises(SystemExit, match="--soup-weights needs --soup"):
        fp.run(fp.build_parser().parse_args(base + ["--soup-weights", "1", "2", "--out", str(tmp_path / "bad")]))


def test_reframed_views_are_extra_rows_and_leave_the_older_rows_alone(tmp_path):
    data = write_dataset(tmp_path / "tex", "splits", n=40, size=48)
    from train.data import load_samples
    samples = load_samples([str(data)])
    plain = fp.training_views(samples, 0.5, 5, seed=3)
    framed = fp.training_views(samples, 0.5, 5, seed=3, reframe_fraction=0.5)
    assert framed[:len(plain)] == plain
    extra = framed[len(plain):]
    assert extra and all(kind == "reframed" and label == samples[i].label for i, kind, label in extra)
    assert 0.2 * len(samples) < len(extra) < 0.8 * len(samples)
    both = fp.training_views(samples, 0.5, 5, seed=3, reframe_fraction=0.5, context_fraction=1.0)
    assert both[:len(framed)] == framed                     # context rows come last, on their own random stream
    context = both[len(framed):]
    assert [(i, label) for i, _, label in context] == [(i, s.label) for i, s in enumerate(samples)]
    assert {kind for _, kind, _ in context} == {"context"}


def test_a_soup_of_different_models_is_refused(tmp_path):
    from train.checkpoints import average_states, save_checkpoint
    w = torch.ones(2, 2)
    paths = []
    for i, (name, size, tensor) in enumerate([("xception", 64, w), ("xception", 64, 3 * w), ("xception", 96, w),
                                              ("swin", 64, w), ("xception", 64, torch.ones(3))]):
        paths.append(tmp_path / f"{i}.pt")
        save_checkpoint(paths[-1], {"name": name, "model": {"fc.weight": tensor, "n": torch.tensor(i)},
                                    "model_kwargs": {}, "input_size": size, "epoch": i})
    state, ingredients = average_states(paths[:2], [1, 3])
    assert torch.allclose(state["fc.weight"], 2.5 * w) and state["n"].item() == 0
    assert [i["epoch"] for i in ingredients] == [0, 1] and len(ingredients[0]["sha256"]) == 64
    for other in paths[2:]:
        with pytest.raises(ValueError):
            average_states([paths[0], other])
    with pytest.raises(ValueError, match="non-negative weight"):
        average_states(paths[:2], [1])
