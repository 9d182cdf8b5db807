"""The detector contract (detectors.contract): every architecture, also built with non-default kwargs, offers
forward_features / forward_head / forward_intermediates / cam_target as the models were built (depth, trunk and stage
counts), and Grad-CAM and feature maps work through them; a sixth architecture registered from this module (one
class and its config) goes through the same paths as the five: build, artifact, prediction, stages, Grad-CAM."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from detectors.contract import (CamTarget, DetectorModel, adopt, cam_target_at, check_intermediates,
                                drop_class_token, nhwc_to_nchw, tokens_to_nchw)
from detectors.registry import (IMAGENET_MEAN, IMAGENET_STD, DetectorSpec, build_model, detector_names, register,
                                unregister)

NAMES = ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]

torch.set_num_threads(1)

# (name, build kwargs, expected stage names, expected Grad-CAM layer): non-default sizes, depths and trunks
BUILDS = [
    ("xception", {"input_size": 96}, ["act2", "block1", "block2", "block11", "act4"], "act4"),
    ("efficientnet_b3", {"input_size": 80}, ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"], "bn2"),
    ("swin", {"input_size": 96}, ["layers.0", "layers.1", "layers.2", "layers.3"], "layers.3.blocks.1.norm1"),
    ("swin", {"input_size": 64, "depths": (2, 2, 2), "num_heads": (3, 6, 12)}, ["layers.0", "layers.1", "layers.2"],
     "layers.2.blocks.1.norm1"),
    ("cross_attention", {"input_size": 64, "depth": 1, "trunk_variant": 1, "embed_dim": 128, "num_heads": 4},
     ["freq.srm", "freq.spectrum", "rgb.blocks.2", "rgb.blocks.4", "blocks.0"], "blocks.0"),
    ("cross_attention", {"input_size": 96, "depth": 3, "trunk_variant": 2},
     ["freq.srm", "freq.spectrum", "rgb.blocks.2", "rgb.blocks.4", "blocks.2"], "blocks.2"),
    # the shipped cnn_transformer's kwargs: depth 2 on a Lite2 trunk
    ("cnn_transformer", {"input_size": 64, "depth": 2, "trunk_variant": 2, "embed_dim": 192, "num_heads": 6},
     ["backbone.blocks.1", "backbone.blocks.2", "backbone.blocks.4", "encoder.layers.0", "encoder.layers.1"],
     "encoder.layers.0"),
    ("cnn_transformer", {"input_size": 64, "depth": 1, "embed_dim": 64, "num_heads": 2},
     ["backbone.blocks.1", "backbone.blocks.2", "backbone.blocks.4", "encoder.layers.0"], "proj"),
    ("cnn_transformer", {"input_size": 64, "depth": 3, "backbone_stride": 32},
     ["backbone.blocks.1", "backbone.blocks.2", "backbone.blocks.6", "encoder.layers.1", "encoder.layers.2"],
     "encoder.layers.1"),
]


def _wake(model: nn.Module) -> nn.Module:
    """timm zero-initialises some heads, which makes every gradient (and so every CAM) zero: all-zero tensors get
    small random values."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 1 and torch.count_nonzero(p) == 0:
                p.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("name,kwargs,stages,cam_layer", BUILDS,
                         ids=[f"{b[0]}-{'-'.join(f'{k}{v}' for k, v in b[1].items())}" for b in BUILDS])
def test_each_architecture_honours_the_contract_as_built(name, kwargs, stages, cam_layer):
    from visualization.gradcam import compute_cam

    torch.manual_seed(0)
    model = _wake(build_model(name, **kwargs).eval())
    assert isinstance(model, DetectorModel)
    size = kwargs["input_size"]
    x = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        logits = model(x)
        assert torch.equal(logits, model.forward_head(model.forward_features(x)))
        assert logits.shape == (2, 1)
        found = check_intermediates(model.forward_intermediates(x), batch=2, where=name)
    assert list(found) == stages
    for stage, fmap in found.items():
        assert fmap.shape[2] == fmap.shape[3] and torch.isfinite(fmap).all(), stage
    target = model.cam_target()
    assert target.name == cam_layer and target.layers == (model.get_submodule(cam_layer),)
    cam, other = compute_cam(model, x[:1], target="fake"), compute_cam(model, x[:1], target="real")
    assert cam.layer == cam_layer and cam.maps.shape == (1, size, size)
    # a random model's evidence may all point one way: then that side's map is zero, the other's is not
    peak = max(float(cam.maps.max()), float(other.maps.max()))
    assert peak == pytest.approx(1.0, abs=1e-5), "no gradient reached the Grad-CAM layer"
    assert cam.logits[0] == pytest.approx(float(logits[0, 0]), abs=1e-4)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_the_contract_is_what_build_model_and_adopt_ask_for():
    spec = DetectorSpec(name="not_a_detector", architecture="linear", builder=lambda pretrained=False: nn.Linear(2, 1),
                        input_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, family="cnn")
    register(spec)
    try:
        with pytest.raises(TypeError, match="not_a_detector: Linear lacks forward_features, forward_head, "
                                            "forward_intermediates, cam_target"):
            build_model("not_a_detector")
    finally:
        unregister("not_a_detector")
    assert detector_names() == NAMES
    from detectors.swin import SwinDetector
    with pytest.raises(TypeError, match="SwinDetector does not extend Linear"):
        adopt(nn.Linear(2, 1), SwinDetector)
    with pytest.raises(KeyError, match="unknown detector 'not_a_detector'"):
        unregister("not_a_detector")


def test_stage_and_layout_helpers():
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)   # class token + 4x4 grid
    maps = drop_class_token(tokens)
    assert maps.shape == (2, 3, 4, 4) and maps[1, 2, 0, 1] == tokens[1, 1 + 1, 2]   # token (row 0, col 1)
    assert torch.equal(tokens_to_nchw(tokens[:, 1:]), maps)
    with pytest.raises(ValueError, match="17 tokens .* do not form a square grid"):
        tokens_to_nchw(tokens)
    nhwc = torch.randn(1, 5, 5, 8)
    assert nhwc_to_nchw(nhwc)[0, 7, 2, 3] == nhwc[0, 2, 3, 7]
    with pytest.raises(ValueError, match="expected a \\(B, H, W, C\\)"):
        nhwc_to_nchw(tokens)
    good = {f"s{i}": torch.zeros(1, 4, 8 >> i, 8 >> i) for i in range(3)}
    assert check_intermediates(good, batch=1) == good
    with pytest.raises(ValueError, match="m: forward_intermediates must give 3 to 5 named stages, not 2"):
        check_intermediates(dict(list(good.items())[:2]), batch=1, where="m")
    with pytest.raises(ValueError, match="stage 't' is \\(1, 5, 4\\), not \\(1, C, H, W\\)"):
        check_intermediates({**good, "t": torch.zeros(1, 5, 4)}, batch=1)
    with pytest.raises(ValueError, match="layer 'nope' is not in Linear"):
        cam_target_at(nn.Linear(2, 1), "nope")


def test_importing_any_detectors_module_registers_the_five_in_order():
    code = ("import detectors.cnn_transformer; from detectors.registry import detector_names; "
            "print(','.join(detector_names()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ",".join(NAMES)


# ------------------------------------------------------------------ a sixth detector: one class and its config
class TinyCNN(nn.Module):
    """Three conv stages and a linear head: the whole of what a new architecture has to write."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU())
            for cin, cout in ((3, width), (width, 2 * width), (2 * width, 4 * width)))
        self.head = nn.Linear(4 * width, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for k, stage in enumerate(self.stages):
            x = stage(x)
            out[f"stages.{k}"] = x
        return out

    def cam_target(self) -> CamTarget:
        return cam_target_at(self, f"stages.{len(self.stages) - 1}")


TINY_SPEC = DetectorSpec(name="tiny_cnn", architecture="tiny_cnn_v1",
                         builder=lambda pretrained=False, **kwargs: TinyCNN(**kwargs), input_size=48,
                         mean=IMAGENET_MEAN, std=IMAGENET_STD, family="cnn",
                         train_defaults={"lr": 1e-3, "batch_size": 8, "epochs": 1, "train_size": 48})


@pytest.fixture
def sixth():
    register(TINY_SPEC)
    try:
        yield TINY_SPEC.name
    finally:
        unregister(TINY_SPEC.name)


def test_a_sixth_detector_takes_one_class_and_its_config(sixth, tmp_path, astronaut_rgb):
    from analysis.analyzer import Analyzer
    from detectors.artifacts import load_artifact, save_artifact
    from visualization.feature_maps import capture_feature_maps
    from visualization.gradcam import explain_crop

    assert detector_names() == [*NAMES, sixth]
    torch.manual_seed(0)
    model = build_model(sixth, width=4)
    assert model.detector_kwargs == {"width": 4} and model.detector_input_size == 48
    save_artifact(model.eval(), sixth, tmp_path, temperature=2.0,
                  metrics={"val_auc_by_source": {"dfdc": 0.9}})
    loaded = load_artifact(tmp_path / sixth, expected_name=sixth)
    crops = [np.ascontiguousarray(astronaut_rgb[30:230, 140:340]), np.ascontiguousarray(astronaut_rgb[::4, ::4])]
    with torch.inference_mode():
        expected = model(loaded.preprocess(crops)).reshape(-1).numpy()
    np.testing.assert_allclose(loaded.logits(crops), expected, rtol=1e-3, atol=1e-3)   # through fp16 weights
    probs = loaded.predict(crops)
    assert probs.shape == (2,) and ((0 < probs) & (probs < 1)).all()

    analyzer = Analyzer(tmp_path, names=[sixth])
    assert analyzer.load_errors == {}
    np.testing.assert_allclose(analyzer.score_crops(crops, [sixth])[sixth], loaded.logits(crops), atol=1e-6)

    stages = capture_feature_maps(loaded, crops[0])
    assert {k: v.maps.shape for k, v in stages.items()} == {"stages.0": (4, 24, 24), "stages.1": (8, 12, 12),
                                                            "stages.2": (16, 6, 6)}
    cam = explain_crop(loaded, crops[0])
    assert cam.layer == "stages.2" and cam.cam.shape == (48, 48) and cam.logit == pytest.approx(
        float(loaded.logits(crops[:1])[0]), abs=1e-4)


def test_the_sixth_detector_is_gone_afterwards():
    assert detector_names() == NAMES
