"""ONNX graphs in artifacts: a saved detector scores faces with ONNX Runtime exactly as its PyTorch model does, the
graph is checksummed and carries no weights, PyTorch is built only when explanations ask for it, a model without an
ONNX form runs in PyTorch, and conversion refuses a graph that computes something else."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from detectors.artifacts import ArtifactError, load_artifact, save_artifact
from detectors.onnx_graph import GRAPH_FILE, GraphSession, export_graph
from detectors.registry import build_model
from train import convert as convert_mod

SMALL = 64
CHEAP = "cnn_transformer"

torch.set_num_threads(1)


def _crops(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (SMALL + 7 * i, SMALL + 3 * i, 3), dtype=np.uint8) for i in range(n)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model(CHEAP, input_size=SMALL).eval()
    folder = save_artifact(model, CHEAP, tmp_path_factory.mktemp("models"), temperature=1.3)
    return folder, model


@pytest.fixture
def copy(saved, tmp_path):
    return Path(shutil.copytree(saved[0], tmp_path / "models" / CHEAP))


def test_graph_is_stored_with_its_checksum_and_without_weights(saved):
    folder, model = saved
    manifest = json.loads((folder / "manifest.json").read_text())
    graph = (folder / GRAPH_FILE).read_bytes()
    assert manifest["graph_file"] == GRAPH_FILE
    import hashlib
    assert manifest["graph_sha256"] == hashlib.sha256(graph).hexdigest()
    proto = onnx.load_from_string(graph)
    external = [i.name for i in proto.graph.initializer if i.data_location == onnx.TensorProto.EXTERNAL]
    weights = sum(p.numel() for p in model.parameters())
    assert set(external) <= set(model.state_dict()) and len(external) > 10
    assert len(graph) < weights * 4 / 20    # operators only: the weights live in model.safetensors alone


def test_onnxruntime_scores_like_pytorch_and_pytorch_waits_until_asked(saved):
    folder, model = saved
    detector = load_artifact(folder)
    assert detector.engine == "onnxruntime"
    assert detector._model is None                      # nothing built for scoring
    crops = _crops()
    got = detector.logits(crops, batch_size=4)          # batches of 4 and 2: the batch axis is dynamic
    with torch.inference_mode():
        eager = detector.model(detector.preprocess(crops)).reshape(-1).numpy()
    assert detector._model is not None and not detector.model.training
    np.testing.assert_allclose(got, eager, atol=1e-4)
    rounded = build_model(CHEAP, input_size=SMALL).eval()
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})
    with torch.inference_mode():
        want = rounded(detector.preprocess(crops)).reshape(-1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)    # the graph ran on the artifact's own (fp16) weights
    assert "engine='onnxruntime'" in repr(detector)


def test_a_replaced_or_missing_graph_is_refused(copy):
    graph = copy / GRAPH_FILE
    data = bytearray(graph.read_bytes())
    data[-3] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch for .*model.onnx"):
        load_artifact(copy)
    graph.unlink()
    with pytest.raises(ArtifactError, match="has no graph file model.onnx"):
        load_artifact(copy)


def test_a_graph_name_outside_the_folder_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graph_file"] = "../model.onnx"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="graph_file must be an .onnx file name inside the folder"):
        load_artifact(copy)


def test_weights_swapped_after_loading_are_not_used_for_explanations(copy, saved):
    detector = load_artifact(copy)
    other = build_model(CHEAP, input_size=SMALL).eval()
    save_artifact(other, CHEAP, copy.parent)
    with pytest.raises(ArtifactError, match="changed since the detector was loaded"):
        detector.model


def test_a_graph_needs_every_weight_it_names(saved):
    folder, model = saved
    state = dict(model.state_dict())
    state.pop(next(k for k in state if k.endswith("weight")))
    with pytest.raises(Exception, match="lacks"):
        GraphSession((folder / GRAPH_FILE).read_bytes(), state)


def test_a_model_without_an_onnx_form_runs_in_pytorch(tmp_path, caplog):
    model = build_model("cross_attention", input_size=SMALL).eval()   # its frequency branch uses fft2
    folder = tmp_path / "cross_attention"
    folder.mkdir()
    (folder / GRAPH_FILE).write_bytes(b"stale")                       # from an earlier save
    save_artifact(model, "cross_attention", tmp_path)
    assert not (folder / GRAPH_FILE).exists()
    assert json.loads((folder / "manifest.json").read_text())["graph_file"] == ""
    assert "no ONNX graph" in caplog.text and "fft" in caplog.text
    detector = load_artifact(folder)
    assert detector.engine == "pytorch"
    with torch.inference_mode():
        want = model(detector.preprocess(_crops(2))).reshape(-1).numpy()
    np.testing.assert_allclose(detector.logits(_crops(2)), want, atol=1e-2)


def test_add_graph_keeps_the_weights(tmp_path):
    model = build_model(CHEAP, input_size=SMALL).eval()
    folder = save_artifact(model, CHEAP, tmp_path, graph=False, temperature=2.0, metrics={"val_auc": 0.7})
    before = json.loads((folder / "manifest.json").read_text())
    weights = (folder / "model.safetensors").read_bytes()
    old = load_artifact(folder)
    assert old.engine == "pytorch"
    convert_mod.add_graph(folder)
    after = json.loads((folder / "manifest.json").read_text())
    new = load_artifact(folder)
    assert new.engine == "onnxruntime" and after["graph_file"] == GRAPH_FILE
    assert {k: v for k, v in after.items() if not k.startswith("graph_")} == \
        {k: v for k, v in before.items() if not k.startswith("graph_")}
    assert (folder / "model.safetensors").read_bytes() == weights
    np.testing.assert_allclose(new.logits(_crops()), old.logits(_crops()), atol=1e-4)


def test_add_graph_takes_back_a_graph_that_disagrees(tmp_path, monkeypatch):
    folder = save_artifact(build_model(CHEAP, input_size=SMALL).eval(), CHEAP, tmp_path, graph=False)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_run = GraphSession.run
    monkeypatch.setattr(GraphSession, "run", lambda self, x: real_run(self, x) - 1.0)
    with pytest.raises(convert_mod.EngineMismatch):
        convert_mod.add_graph(folder)
    assert load_artifact(folder).engine == "pytorch"
    assert {p.name: p.read_bytes() for p in folder.iterdir()}.keys() == before.keys()


def test_add_graph_leaves_a_model_without_an_onnx_form_alone(tmp_path):
    folder = save_artifact(build_model("cross_attention", input_size=SMALL).eval(), "cross_attention", tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(convert_mod.ConversionError, match="left as it is"):
        convert_mod.add_graph(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_conversion_drops_a_graph_that_disagrees_with_pytorch(tmp_path, monkeypatch, caplog):
    model = build_model(CHEAP, input_size=SMALL).eval()
    folder = save_artifact(model, CHEAP, tmp_path)
    real_run = GraphSession.run
    monkeypatch.setattr(GraphSession, "run", lambda self, x: real_run(self, x) + 0.5)
    with pytest.raises(convert_mod.EngineMismatch, match="disagree"):
        convert_mod.verify(model, folder)

    def save(dtype, graph):
        return save_artifact(model, CHEAP, tmp_path, dtype=dtype, graph=graph)

    out, check = convert_mod._save_verified(model, CHEAP, save, "float16")
    assert check.engine == "pytorch" and not (out / GRAPH_FILE).exists()
    assert "without its ONNX graph" in caplog.text


def test_export_names_the_state_dict(saved):
    _, model = saved
    proto = onnx.load_from_string(export_graph(model, SMALL))
    assert [i.name for i in proto.graph.input] == ["x"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
