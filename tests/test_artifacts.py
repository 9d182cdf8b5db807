"""Artifacts: round trips give the same logits, every kind of broken artifact is refused with a one-line message,
one broken detector never stops the others, and LoadedDetector's preprocessing / calibration are exact."""
from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from detectors.artifacts import (ArtifactError, LoadedDetector, Manifest, load_artifact, load_detectors,
                                 save_artifact)
from detectors.preprocess import to_tensor_batch
from detectors.registry import build_model, detector_names, get_spec, model_kwargs_for

SMALL = 64
CHEAP = "cnn_transformer"

torch.set_num_threads(1)


def _crops(n=5, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [(80, 70), (64, 64), (40, 52), (200, 180), (33, 90)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(n)]


def _random_bn_stats(model):
    """Non-trivial BatchNorm statistics, so a round trip that dropped buffers would change the logits."""
    gen = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.1, generator=gen)
            module.running_var.uniform_(0.5, 1.5, generator=gen)
    return model


@pytest.fixture(scope="module")
def cheap_artifact(tmp_path_factory):
    """(folder, the model it was saved from) for the cheapest detector at 64 px."""
    torch.manual_seed(0)
    model = _random_bn_stats(build_model(CHEAP, input_size=SMALL)).eval()
    folder = save_artifact(model, CHEAP, tmp_path_factory.mktemp("models"), temperature=1.5, threshold=0.6,
                           training={"data": "random init", "epochs": 0}, metrics={"val_auc": np.float32(0.75)},
                           run_id="run-42")
    return folder, model


@pytest.fixture
def artifact_copy(cheap_artifact, tmp_path):
    folder = shutil.copytree(cheap_artifact[0], tmp_path / "models" / CHEAP)
    return Path(folder)


def _edit_manifest(folder: Path, **changes):
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _replace_weights(folder: Path, data: bytes, name: str = "model.safetensors"):
    """Swap the weights and fix the checksum, so the check that must fire is the one after the checksum."""
    (folder / name).write_bytes(data)
    _edit_manifest(folder, weights_file=name, sha256=hashlib.sha256(data).hexdigest())


def _state(folder: Path) -> dict[str, torch.Tensor]:
    return safetensors_load((folder / "model.safetensors").read_bytes())   # in memory: the file gets rewritten


def _refused(folder, match, **kwargs):
    with pytest.raises(ArtifactError, match=match) as info:
        load_artifact(folder, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("name", [pytest.param("xception", marks=pytest.mark.slow), "efficientnet_b3",
                                  pytest.param("swin", marks=pytest.mark.slow), "cross_attention", "cnn_transformer"])
def test_round_trip_gives_the_same_logits(name, tmp_path):
    torch.manual_seed(0)
    model = _random_bn_stats(build_model(name, input_size=SMALL)).eval()
    folder = save_artifact(model, name, tmp_path)
    assert folder == tmp_path / name
    detector = load_artifact(folder, expected_name=name)
    crops = _crops()
    got = detector.logits(crops)
    x = detector.preprocess(crops)
    with torch.inference_mode():
        original = model(x).reshape(-1).numpy()
        model.half().float()                      # what float16 storage does to the weights
        rounded = model(x).reshape(-1).numpy()
    assert got.shape == (5,) and got.dtype == np.float32
    np.testing.assert_allclose(got, rounded, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got, original, rtol=2e-2, atol=2e-2 * max(1.0, float(np.abs(original).max())))
    assert detector.manifest.model_kwargs == model_kwargs_for(name, SMALL)
    assert detector.input_size == detector.model.detector_input_size == SMALL
    assert not detector.model.training
    assert all(p.dtype == torch.float32 for p in detector.model.parameters())


def test_files_and_manifest(cheap_artifact):
    folder, model = cheap_artifact
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "model.onnx", "model.safetensors"]
    data = json.loads((folder / "manifest.json").read_text())
    manifest = Manifest.from_dict(data)
    spec = get_spec(CHEAP)
    assert manifest.name == CHEAP and manifest.architecture == spec.architecture == "cnn_transformer_v1"
    assert manifest.model_kwargs == {"img_size": SMALL} and manifest.input_size == SMALL
    assert manifest.mean == list(spec.mean) and manifest.std == list(spec.std)
    assert (manifest.temperature, manifest.threshold) == (1.5, 0.6)
    assert manifest.weights_file == "model.safetensors" and manifest.dtype == "float16"
    assert manifest.sha256 == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert manifest.training == {"data": "random init", "epochs": 0}
    assert manifest.metrics == {"val_auc": 0.75} and manifest.run_id == "run-42"
    assert datetime.fromisoformat(manifest.created).tzinfo is not None
    assert manifest.format_version == 1
    state = _state(folder)
    assert set(state) == set(model.state_dict())
    floats = {k: v.dtype for k, v in state.items() if v.is_floating_point()}
    assert set(floats.values()) == {torch.float16}
    assert state["backbone.bn1.num_batches_tracked"].dtype == torch.int64
    assert manifest.graph_file == "model.onnx"
    assert manifest.graph_sha256 == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    for name in ("model.safetensors", "model.onnx"):
        assert (folder / name).stat().st_mode & 0o044 == 0o044   # readable by other service users


def test_loaded_detector_preprocess_calibrate_predict(cheap_artifact):
    folder, _ = cheap_artifact
    detector = load_artifact(folder)
    assert isinstance(detector, LoadedDetector)
    assert detector.name == CHEAP and detector.spec is get_spec(CHEAP)
    assert detector.checksum == hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert detector.mean == (0.5, 0.5, 0.5) and detector.std == (0.5, 0.5, 0.5)
    grey = np.full((100, 50, 3), 191, np.uint8)
    x = detector.preprocess([grey, _crops(1)[0]])
    assert x.shape == (2, 3, SMALL, SMALL) and x.dtype == torch.float32
    assert torch.allclose(x[0], torch.full((3, SMALL, SMALL), (191 / 255 - 0.5) / 0.5))
    crops = _crops(7)
    logits = detector.logits(crops)
    np.testing.assert_allclose(detector.logits(crops, batch_size=3), logits, rtol=1e-5, atol=1e-6)
    assert detector.logits([]).shape == (0,)
    probs = detector.calibrate(np.array([0.0, 1.5, -3.0, 1e4, -1e4]))
    np.testing.assert_allclose(probs, [0.5, 1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(2.0)), 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(detector.predict(crops), 1 / (1 + np.exp(-logits.astype(np.float64) / 1.5)),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="crop 1 has dtype float32, expected uint8"):
        detector.preprocess([grey, grey.astype(np.float32)])
    with pytest.raises(ValueError, match=r"crop 0 has shape \(10, 10\), expected \(H, W, 3\) RGB"):
        detector.logits([np.zeros((10, 10), np.uint8)])


def test_preprocess_helper_resizes_both_ways():
    small, large = np.zeros((20, 30, 3), np.uint8), np.full((300, 200, 3), 255, np.uint8)
    batch = to_tensor_batch([small, large], 48, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert batch.shape == (2, 3, 48, 48)
    assert float(batch[0].max()) == 0.0 and float(batch[1].min()) == 1.0
    assert to_tensor_batch([], 48, (0, 0, 0), (1, 1, 1)).shape == (0, 3, 48, 48)


def test_refuses_missing_pieces(tmp_path, artifact_copy):
    _refused(tmp_path / "nowhere", "no artifact folder at")
    (artifact_copy / "model.safetensors").unlink()
    _refused(artifact_copy, "has no weights file model.safetensors")
    (artifact_copy / "manifest.json").unlink()
    _refused(artifact_copy, "has no manifest.json")


def test_refuses_bad_json_and_bad_fields(artifact_copy):
    manifest = artifact_copy / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(good[:-20])
    _refused(artifact_copy, "is not valid JSON")
    manifest.write_text("[1, 2]")
    _refused(artifact_copy, "is not a JSON object")
    for changes, match in [({"format_version": 2}, "format_version 2; this program reads up to 1"),
                           ({"temperature": 0}, "temperature must be a positive number"),
                           ({"threshold": 1.5}, "threshold must be a number from 0 to 1"),
                           ({"input_size": "64"}, "input_size must be an integer"),
                           ({"std": [0.5, 0.5]}, "std must be a list of 3 numbers"),
                           ({"model_kwargs": {"img_size": 64, "depth": "x"}}, "cannot build cnn_transformer"),
                           ({"dtype": "bfloat16"}, "weights dtype 'bfloat16' is not supported")]:
        manifest.write_text(good)
        _edit_manifest(artifact_copy, **changes)
        _refused(artifact_copy, match)
    manifest.write_text(good)
    data = json.loads(good)
    del data["sha256"]
    manifest.write_text(json.dumps(data))
    _refused(artifact_copy, "lacks sha256")


def test_refuses_a_wrong_checksum(artifact_copy):
    weights = artifact_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    _refused(artifact_copy, "checksum mismatch for .*model.safetensors.*corrupt or was replaced")


def test_refuses_another_architecture_or_name(artifact_copy):
    _refused(artifact_copy, "holds detector 'cnn_transformer', expected 'swin'", expected_name="swin")
    _edit_manifest(artifact_copy, architecture="cnn_transformer_v0")
    _refused(artifact_copy, "architecture 'cnn_transformer_v0' does not match the registry's 'cnn_transformer_v1'")
    _edit_manifest(artifact_copy, architecture="cnn_transformer_v1", name="resnet")
    _refused(artifact_copy, "unknown detector 'resnet'")


def test_refuses_weights_that_do_not_fit(artifact_copy):
    state = _state(artifact_copy)
    shrunk = {**state, "head.weight": state["head.weight"][:, :128].contiguous()}
    _replace_weights(artifact_copy, safetensors_save(shrunk))
    _refused(artifact_copy, r"1 mismatched shapes: head.weight \(1, 128\) != \(1, 256\)")
    _replace_weights(artifact_copy, safetensors_save({k: v for k, v in state.items() if k != "cls_token"}))
    _refused(artifact_copy, "weights do not fit cnn_transformer_v1: 1 missing keys: cls_token")
    _replace_weights(artifact_copy, safetensors_save({**state, "extra.weight": torch.zeros(2)}))
    _refused(artifact_copy, "1 unexpected keys: extra.weight")


def test_refuses_pickles(artifact_copy):
    state = _state(artifact_copy)
    path = artifact_copy / "model.safetensors"
    torch.save(state, path)          # a zip pickle under the safetensors name
    _replace_weights(artifact_copy, path.read_bytes())
    _refused(artifact_copy, r"model.safetensors is not a valid safetensors file \(it looks like a pickle\)")
    _replace_weights(artifact_copy, pickle.dumps({"a": 1}))
    _refused(artifact_copy, r"is not a valid safetensors file \(it looks like a pickle\)")
    _replace_weights(artifact_copy, b"")
    _refused(artifact_copy, "is not a valid safetensors file")
    _replace_weights(artifact_copy, pickle.dumps({"a": 1}), name="model.pt")
    _refused(artifact_copy, "weights_file 'model.pt' is not a .safetensors file; only safetensors weights")
    _edit_manifest(artifact_copy, weights_file="../model.safetensors")
    _refused(artifact_copy, "weights_file must be a file name inside the folder")


def test_save_refuses_a_model_that_does_not_match_its_kwargs(tmp_path):
    model = build_model("swin", input_size=SMALL)
    with pytest.raises(ArtifactError, match="does not match timm/swin_tiny_patch4_window7_224 .* mismatched shapes"):
        save_artifact(model, "swin", tmp_path, model_kwargs=model_kwargs_for("swin", 128))
    with pytest.raises(ArtifactError,
                       match="does not match cross_attention_v1 .* 292 missing keys: rgb_pos, rgb.conv_stem"):
        save_artifact(build_model("cnn_transformer", input_size=SMALL), "cross_attention", tmp_path)
    with pytest.raises(ArtifactError, match="cannot store a object in manifest.json"):
        save_artifact(build_model(CHEAP, input_size=SMALL), CHEAP, tmp_path, training={"x": object()})
    assert not any(tmp_path.iterdir())


def test_load_detectors_keeps_going_past_broken_ones(cheap_artifact, tmp_path, monkeypatch):
    models = tmp_path / "converted_models"
    shutil.copytree(cheap_artifact[0], models / CHEAP)
    broken = shutil.copytree(cheap_artifact[0], models / "cross_attention")   # another detector's files
    (models / "swin").mkdir()                                                 # an empty folder
    monkeypatch.chdir(tmp_path)
    loaded, missing = load_detectors("converted_models")
    assert list(loaded) == [CHEAP]
    assert loaded[CHEAP].logits(_crops(2)).shape == (2,)
    assert set(missing) == set(detector_names()) - {CHEAP}
    assert "holds detector 'cnn_transformer', expected 'cross_attention'" in missing["cross_attention"]
    assert missing["swin"].endswith("has no manifest.json")
    assert missing["xception"] == ("no artifact at converted_models/xception; train one with "
                                   "train/train_xception.py and train/convert.py")
    (broken / "manifest.json").write_text("{")
    loaded, missing = load_detectors(models, names=[CHEAP, "cross_attention", "resnet"])
    assert list(loaded) == [CHEAP]
    assert "is not valid JSON" in missing["cross_attention"]
    assert missing["resnet"].startswith("unknown detector 'resnet'; known: xception")
    assert all("\n" not in reason for reason in missing.values())


def test_float32_artifacts_round_trip_exactly(tmp_path):
    """Models whose logits fp16 would move are stored in float32 (train/convert.py falls back to it)."""
    torch.manual_seed(0)
    model = build_model("cnn_transformer", input_size=64).eval()
    folder = save_artifact(model, "cnn_transformer", tmp_path, dtype="float32")
    detector = load_artifact(folder)
    assert detector.manifest.dtype == "float32"
    assert {t.dtype for t in safetensors_load((folder / "model.safetensors").read_bytes()).values()
            if t.is_floating_point()} == {torch.float32}
    crops = [np.random.default_rng(i).integers(0, 255, (80, 80, 3), dtype=np.uint8) for i in range(3)]
    with torch.no_grad():
        want = model(to_tensor_batch(crops, 64, detector.mean, detector.std)).reshape(-1).numpy()
    np.testing.assert_allclose(detector.logits(crops), want, rtol=0, atol=1e-5)
    with pytest.raises(ArtifactError, match="not supported"):
        save_artifact(model, "cnn_transformer", tmp_path, dtype="int8")
