"""Detector registry: every model builds, gives (B, 1) logits, offers its stages and a Grad-CAM target that gets a
gradient (detectors.contract); the hybrids' parts do what they claim; the offline efficientnet_lite0 weights map
onto timm exactly."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import timm
import torch

from detectors.cross_attention import LogSpectrum, SRMResidual
from detectors.lite0 import (LITE0_MEAN, LITE0_STD, Lite0WeightsError, create_lite0, map_lite0_state_dict,
                             read_lite0_state_dict)
from detectors.registry import DetectorSpec, build_model, detector_names, get_spec, model_kwargs_for, register
from detectors.swin import swin_window_for

SMALL = 64
NAMES = ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]

torch.set_num_threads(1)


def _stages_and_cam(model, x, grad=False):
    """Run the model, return (logits, its named stages, the cam target's (activation, gradient) maps)."""
    target = model.cam_target()
    reshape = target.reshape or (lambda t: t)
    seen = {}

    def hook(_module, _inputs, output):
        seen["act"] = output
        if grad:
            output.register_hook(lambda g: seen.__setitem__("grad", g))

    handle = target.layers[0].register_forward_hook(hook)
    try:
        y = model(x)
        if grad:
            y.sum().backward()
    finally:
        handle.remove()
    stages = model.forward_intermediates(x)
    return y, stages, reshape(seen["act"]), reshape(seen["grad"]) if grad else None


def test_registry_lists_the_five_detectors_with_complete_specs():
    assert detector_names() == NAMES
    for name in NAMES:
        spec = get_spec(name)
        assert spec.name == name
        assert spec.family in ("cnn", "transformer")
        assert len(spec.mean) == len(spec.std) == 3
        assert set(spec.train_defaults) == {"lr", "batch_size", "epochs", "train_size"}
    assert [get_spec(n).family for n in NAMES] == ["cnn", "cnn", "transformer", "transformer", "transformer"]


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError) as info:
        get_spec("resnet")
    message = info.value.args[0]
    assert message.startswith("unknown detector 'resnet'; known: ")
    assert all(name in message for name in NAMES)
    with pytest.raises(KeyError, match="unknown detector 'resnet'"):
        build_model("resnet")


def test_duplicate_registration_and_bad_specs_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        register(get_spec("swin"))
    base = get_spec("xception")
    with pytest.raises(ValueError, match="family must be one of"):
        DetectorSpec(**{**base.__dict__, "name": "x2", "family": "rnn"})
    with pytest.raises(ValueError, match="mean and std need 3 values"):
        DetectorSpec(**{**base.__dict__, "name": "x3", "std": (0.5, 0.5)})
    with pytest.raises(ValueError, match="must be a Python identifier"):
        DetectorSpec(**{**base.__dict__, "name": "x/4"})
    assert "x2" not in detector_names() and "x3" not in detector_names()


def test_timm_normalisation_matches_timm_pretrained_configs():
    for name in ("efficientnet_b3", "swin"):
        spec = get_spec(name)
        cfg = timm.get_pretrained_cfg(spec.architecture.removeprefix("timm/"))
        assert spec.mean == tuple(cfg.mean) and spec.std == tuple(cfg.std)
    # the Keras-started Xception scales as Keras's preprocess_input does, which is also timm's tf_in1k config
    from detectors.xception_start import MEAN, STD
    cfg = timm.get_pretrained_cfg("legacy_xception")
    assert get_spec("xception").mean == MEAN == tuple(cfg.mean) and get_spec("xception").std == STD == tuple(cfg.std)


@pytest.mark.parametrize("name", NAMES)
def test_small_model_logits_stages_and_cam(name):
    torch.manual_seed(0)
    model = build_model(name, input_size=SMALL).eval()
    assert model.detector_kwargs == model_kwargs_for(name, SMALL)
    assert model.detector_input_size == SMALL
    x = torch.randn(2, 3, SMALL, SMALL)
    y, stages, cam, cam_grad = _stages_and_cam(model, x, grad=True)
    assert y.shape == (2, 1) and torch.isfinite(y).all()
    assert 3 <= len(stages) <= 5
    sides = []
    for layer, fmap in stages.items():
        assert fmap.ndim == 4 and fmap.shape[0] == 2, (layer, fmap.shape)
        assert fmap.shape[2] == fmap.shape[3]
        sides.append(fmap.shape[2])
    assert sides == sorted(sides, reverse=True), f"stages not shallow to deep: {sides}"
    assert cam.ndim == 4 and cam.shape[0] == 2 and cam.shape[2] >= 2
    assert cam_grad.shape == cam.shape
    assert cam_grad.abs().sum() > 0, "Grad-CAM layer gets no gradient from the logit"


def test_stages_come_out_under_inference_mode():
    # nn.TransformerEncoderLayer takes a fused path without grad; the encoder layers' outputs must still come out
    model = build_model("cnn_transformer", input_size=SMALL).eval()
    with torch.inference_mode():
        stages = model.forward_intermediates(torch.randn(1, 3, SMALL, SMALL))
    assert list(stages) == ["backbone.blocks.1", "backbone.blocks.2", "backbone.blocks.4", "encoder.layers.1",
                            "encoder.layers.3"]
    assert stages["encoder.layers.3"].shape == (1, 256, 4, 4)


@pytest.mark.parametrize("name", [
    pytest.param("xception", marks=pytest.mark.slow),
    "efficientnet_b3",
    pytest.param("swin", marks=pytest.mark.slow),
    "cross_attention",
    "cnn_transformer",
])
def test_default_size(name):
    spec = get_spec(name)
    model = build_model(name).eval()
    assert model.detector_input_size == spec.input_size
    with torch.inference_mode():
        y = model(torch.randn(1, 3, spec.input_size, spec.input_size))
    assert y.shape == (1, 1) and torch.isfinite(y).all()


def test_swin_window_divides_every_stage_grid():
    assert [swin_window_for(s) for s in (64, 96, 128, 160, 224)] == [2, 3, 4, 5, 7]
    assert model_kwargs_for("swin", 128) == {"img_size": 128, "window_size": 4}
    assert model_kwargs_for("swin") == {"img_size": 224, "window_size": 7}
    with pytest.raises(ValueError, match="swin cannot use input size 100"):
        swin_window_for(100)
    model = build_model("swin", input_size=128)
    grids = [32, 16, 8, 4]
    for stage, grid in zip(model.layers, grids):
        for block in stage.blocks:
            assert grid % block.window_size[0] == 0
    with pytest.raises(ValueError, match="contradicts"):
        build_model("swin", input_size=128, img_size=64)


def test_hybrid_position_embeddings_follow_the_input_size():
    model = build_model("cnn_transformer", input_size=SMALL).eval()
    assert model.pos_embed.shape == (1, 1 + 4 * 4, 256)
    with torch.inference_mode():   # other sizes interpolate the learned grid
        assert model(torch.randn(1, 3, 96, 96)).shape == (1, 1)
    assert build_model("cnn_transformer", input_size=128).pos_embed.shape == (1, 1 + 8 * 8, 256)


def test_cross_attention_queries_rgb_tokens_against_frequency_tokens():
    model = build_model("cross_attention", input_size=SMALL).eval()
    seen = []
    handle = model.blocks[0].attn.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append((args or ()) + tuple(kwargs.get(k) for k in ("query", "key", "value")
                                                                  if k in kwargs)), with_kwargs=True)
    x = torch.randn(2, 3, SMALL, SMALL)
    with torch.inference_mode():
        rgb_tokens = model.rgb(x)
        model(x)
    handle.remove()
    query, key, value = seen[0][:3]
    assert query.shape == (2, 16, 256)             # 4 x 4 RGB grid
    assert key.shape == value.shape == (2, 32, 256)  # 4 x 4 residual + 4 x 4 spectrum tokens
    assert key is value and key is not query
    assert rgb_tokens.shape == (2, 112, 4, 4)
    # the frequency view changes the decision: same RGB, perturbed keys -> different logit
    with torch.inference_mode():
        base = model(x)
        memory = model.freq(x)
        queries = model.rgb_proj(model.rgb(x)).flatten(2).transpose(1, 2) + model.rgb_pos
        shuffled = queries
        for block in model.blocks:
            shuffled = block(shuffled, memory.flip(0))
        assert torch.allclose(model.head(model.norm(model.forward_features(x)).mean(1)), base)
        assert not torch.allclose(model.head(model.norm(shuffled).mean(1)), base)


def test_frequency_view_filters():
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert SRMResidual()(flat).abs().max() < 1e-5                # high-pass: no residual on a flat image
    ramp = torch.linspace(-1, 1, 32).expand(1, 3, 32, 32)
    assert SRMResidual()(ramp)[..., 2:-2, 2:-2].abs().max() < 1e-4   # nor on a linear gradient
    noise = SRMResidual()(torch.randn(1, 3, 32, 32))
    assert noise.shape == (1, 9, 32, 32) and noise.abs().max() <= 1.0 and noise.abs().mean() > 0.1
    spectrum = LogSpectrum()(flat)[0, 0]
    assert spectrum.shape == (32, 32)
    assert spectrum.argmax() == 16 * 32 + 16                     # all energy at the centred DC bin
    assert (spectrum[16, 16] - spectrum.flatten()[spectrum.flatten().argsort()[-2]]) > 5


def _cat_batch():
    from skimage import data
    rgb = cv2.resize(data.chelsea(), (224, 224), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = (rgb - np.array(LITE0_MEAN, np.float32)) / np.array(LITE0_STD, np.float32)
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def test_lite0_offline_weights_classify_a_cat():
    model = create_lite0(pretrained=True).eval()
    with torch.inference_mode():
        probs = model(_cat_batch()).softmax(1)[0]
    assert 281 <= int(probs.argmax()) <= 285          # ImageNet domestic cats (tabby ... Egyptian cat)
    assert float(probs[281:286].sum()) > 0.8
    random_model = create_lite0(pretrained=False).eval()
    with torch.inference_mode():
        assert float(random_model(_cat_batch()).softmax(1)[0, 281:286].sum()) < 0.1


def test_lite0_mapping_is_complete_and_refuses_partial_sources():
    source = read_lite0_state_dict()
    model = create_lite0()
    mapped = map_lite0_state_dict(source, model)
    assert set(mapped) == set(model.state_dict()) and len(mapped) == len(source) == 296
    assert torch.equal(mapped["blocks.1.0.conv_pwl.weight"], source["_blocks.1._project_conv.weight"])
    assert torch.equal(mapped["blocks.0.0.conv_pw.weight"], source["_blocks.0._project_conv.weight"])
    with pytest.raises(Lite0WeightsError, match="have no source weight"):
        map_lite0_state_dict({k: v for k, v in source.items() if k != "_bn1.running_var"}, model)
    with pytest.raises(Lite0WeightsError, match="shape"):
        map_lite0_state_dict({**source, "_fc.bias": torch.zeros(10)}, model)
    with pytest.raises(Lite0WeightsError, match="no counterpart"):
        map_lite0_state_dict({**source, "_extra.weight": torch.zeros(1)}, model)


@pytest.mark.parametrize("name,trunk", [("cnn_transformer", "backbone"), ("cross_attention", "rgb")])
def test_hybrids_start_from_the_offline_imagenet_trunk(name, trunk):
    reference = create_lite0(pretrained=True).state_dict()
    model = build_model(name, pretrained=True, input_size=SMALL)
    assert "pretrained" not in model.detector_kwargs
    state = model.get_submodule(trunk).state_dict()
    stride16 = ("conv_stem.", "bn1.", *(f"blocks.{i}." for i in range(5)))
    assert len(state) == sum(key.startswith(stride16) for key in reference) == 198
    for key, value in state.items():
        assert torch.equal(value, reference[key]), key
