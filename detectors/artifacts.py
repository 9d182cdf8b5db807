"""Trained detectors on disk, and loaded detectors ready for inference.

An artifact is a folder `<models_dir>/<name>/` holding
  * `model.safetensors` - the state dict in float16 (float32 for models fp16 would change; integer buffers keep their dtype); never a pickle;
  * `manifest.json`     - a Manifest: what to build (architecture, kwargs, input size, normalisation), the
                          calibration (temperature, threshold), the weights' sha256, and where they came from;
  * `model.onnx`        - when the model has an ONNX form: its inference graph without weights (detectors.onnx_graph),
                          with its own sha256 in the manifest.
Loading checks the manifest, the checksums and the architecture and the weights' shapes against a rebuild. A
detector with a graph scores faces with ONNX Runtime, its weights filled in from the checked safetensors, and builds
its PyTorch model (strict load) only when Grad-CAM or feature maps ask for it; one without a graph loads the PyTorch
model at once. Every refusal is an ArtifactError with a one-line message.
"""
from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from torch import nn

from detectors.checksums import sha256_bytes
from detectors.onnx_graph import GRAPH_FILE, GraphError, GraphSession, export_graph
from detectors.preprocess import to_tensor_batch
from detectors.registry import DetectorSpec, build_model, detector_names, get_spec, model_kwargs_for

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"
WEIGHTS_DTYPE = "float16"
# float32 is for models whose logits fp16 rounding would move (train/convert.py falls back to it)
WEIGHTS_DTYPES = {"float16": torch.float16, "float32": torch.float32}
MODELS_ENV = "DEEPFAKE_MODELS_DIR"
PROJECT_MODELS_DIR = Path(__file__).resolve().parent.parent / "converted_models"
ENGINES = ("onnxruntime", "pytorch")

log = logging.getLogger(__name__)


def default_models_dir() -> Path:
    """The models folder every front-end uses by default: $DEEPFAKE_MODELS_DIR (read on every call; a relative path
    is taken from the project root), else the project's converted_models/."""
    value = os.environ.get(MODELS_ENV)
    if not value:
        return PROJECT_MODELS_DIR
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_MODELS_DIR.parent / path


class ArtifactError(Exception):
    """An artifact cannot be written or loaded; the message is one line, shown to users as it is."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Manifest:
    format_version: int
    name: str
    architecture: str
    model_kwargs: dict[str, Any]
    input_size: int
    mean: list[float]
    std: list[float]
    temperature: float
    threshold: float
    weights_file: str
    sha256: str
    dtype: str
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    run_id: str = ""
    modality: str = "face"          # "face" (detectors.registry) or "audio" (detectors.audio_registry)
    audio: dict[str, Any] = field(default_factory=dict)   # audio detectors: sample_rate, window_seconds
    graph_file: str = ""            # face detectors with an ONNX form: model.onnx (detectors.onnx_graph)
    graph_sha256: str = ""

    @property
    def channels(self) -> int:
        """How many numbers `mean` and `std` hold: 3 (RGB) for faces, 1 for audio's log-mel input."""
        return 1 if self.modality == "audio" else 3

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "manifest") -> "Manifest":
        """Validate types and ranges; unknown keys (from newer writers of the same format) are ignored."""
        if not isinstance(data, dict):
            raise ArtifactError(f"{where} is not a JSON object")
        missing = [f.name for f in fields(cls) if f.name not in data and f.name not in _OPTIONAL]
        if missing:
            raise ArtifactError(f"{where} lacks {', '.join(missing)}")
        version = data["format_version"]
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= FORMAT_VERSION:
            raise ArtifactError(f"{where} has format_version {version!r}; this program reads up to {FORMAT_VERSION}")
        expected = {"name": str, "architecture": str, "model_kwargs": dict, "weights_file": str, "sha256": str,
                    "dtype": str, "training": dict, "metrics": dict, "created": str, "run_id": str,
                    "modality": str, "audio": dict, "graph_file": str, "graph_sha256": str}
        for key, kind in expected.items():
            if key in data and not isinstance(data[key], kind):
                raise ArtifactError(f"{where}: {key} must be a {kind.__name__}, not {type(data[key]).__name__}")
        size = data["input_size"]
        if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 4096:
            raise ArtifactError(f"{where}: input_size must be an integer from 16 to 4096, not {size!r}")
        modality = data.get("modality", "face")
        if modality not in MODALITIES:
            raise ArtifactError(f"{where}: modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
        channels = 1 if modality == "audio" else 3
        for key in ("mean", "std"):
            value = data[key]
            if (not isinstance(value, list) or len(value) != channels
                    or not all(_is_number(v) and math.isfinite(v) for v in value)):
                raise ArtifactError(f"{where}: {key} must be a list of {channels} numbers, not {value!r}")
        if not all(v > 0 for v in data["std"]):
            raise ArtifactError(f"{where}: std must be positive, not {data['std']!r}")
        graph = data.get("graph_file", "")
        if graph and (Path(graph).name != graph or not graph.endswith(".onnx") or modality != "face"):
            raise ArtifactError(f"{where}: graph_file must be an .onnx file name inside the folder of a face "
                                f"detector, not {graph!r}")
        if graph and not data.get("graph_sha256"):
            raise ArtifactError(f"{where}: graph_file {graph!r} comes without its graph_sha256")
        temperature, threshold = data["temperature"], data["threshold"]
        if not _is_number(temperature) or not math.isfinite(temperature) or temperature <= 0:
            raise ArtifactError(f"{where}: temperature must be a positive number, not {temperature!r}")
        if not _is_number(threshold) or not 0.0 <= threshold <= 1.0:
            raise ArtifactError(f"{where}: threshold must be a number from 0 to 1, not {threshold!r}")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["mean"] = [float(v) for v in values["mean"]]
        values["std"] = [float(v) for v in values["std"]]
        values["temperature"], values["threshold"] = float(temperature), float(threshold)
        return cls(**values)


_OPTIONAL = {"training", "metrics", "created", "run_id", "modality", "audio", "graph_file", "graph_sha256"}
MODALITIES = ("face", "audio")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _jsonable(value: Any) -> Any:
    """Turn numpy scalars/arrays, tuples and paths into JSON types; refuse anything else unknown."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ArtifactError(f"cannot store a {type(value).__name__} in manifest.json: {value!r}"[:200])


def _stored_state_dict(model: nn.Module, dtype: str = WEIGHTS_DTYPE) -> dict[str, torch.Tensor]:
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if tensor.is_floating_point():
            tensor = tensor.to(WEIGHTS_DTYPES[dtype])
            if not torch.isfinite(tensor).all():
                raise ArtifactError(f"weight {key} is not finite in {dtype} (overflow or NaN in training)")
        state[key] = tensor.contiguous()
    return state


def _shape_problems(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> str | None:
    """One line describing missing / unexpected / mis-shaped keys, or None when `state` fits `expected`."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("mismatched shapes", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    return "; ".join(parts) or None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)   # mkstemp makes 0600; the web / batch workers may run as other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_artifact(model: nn.Module, name: str, out_dir: str | Path, *, input_size: int | None = None,
                  model_kwargs: dict[str, Any] | None = None, temperature: float = 1.0, threshold: float = 0.5,
                  training: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
                  run_id: str | None = None, dtype: str = WEIGHTS_DTYPE, graph: bool = True) -> Path:
    """Write `<out_dir>/<name>/model.safetensors` (float16, or float32 on request), `manifest.json` and, when
    `graph` is true and the model has an ONNX form, `model.onnx`; return the folder.

    input_size / model_kwargs default to what build_model recorded on the model, then to the spec's defaults.
    The weights are checked against a model rebuilt from the manifest before anything is written, so a saved
    artifact always loads. A model without an ONNX form is saved without a graph and runs in PyTorch.
    """
    spec = get_spec(name)
    if input_size is None:
        input_size = getattr(model, "detector_input_size", None) or spec.input_size
    if model_kwargs is None:
        model_kwargs = getattr(model, "detector_kwargs", None)
        if model_kwargs is None:
            model_kwargs = model_kwargs_for(name, input_size)
    model_kwargs = _jsonable(dict(model_kwargs))
    if dtype not in WEIGHTS_DTYPES:
        raise ArtifactError(f"weights dtype {dtype!r} is not supported (choose {', '.join(WEIGHTS_DTYPES)})")
    state = _stored_state_dict(model, dtype)
    with torch.device("meta"):   # shapes only: no memory, no initialisation cost
        reference = build_model(name, pretrained=False, **model_kwargs).state_dict()
    problem = _shape_problems(state, reference)
    if problem:
        raise ArtifactError(f"{name}: the model does not match {spec.architecture} built with {model_kwargs}: "
                            f"{problem}")
    run_id = run_id or (training or {}).get("run_id") or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    data = safetensors_save(state, metadata={"name": name, "architecture": spec.architecture})
    graph_bytes = b""
    if graph:
        try:
            graph_bytes = export_graph(model, int(input_size))
        except GraphError as exc:
            log.warning("%s: no ONNX graph, it will run in PyTorch (%s)", name, exc)
    manifest = Manifest(
        format_version=FORMAT_VERSION, name=name, architecture=spec.architecture, model_kwargs=model_kwargs,
        input_size=int(input_size), mean=[float(v) for v in spec.mean], std=[float(v) for v in spec.std],
        temperature=float(temperature), threshold=float(threshold), weights_file=WEIGHTS_FILE,
        sha256=sha256_bytes(data), dtype=dtype, training=_jsonable(dict(training or {})),
        metrics=_jsonable(dict(metrics or {})), created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        run_id=str(run_id))
    Manifest.from_dict(manifest.to_dict(), where=f"{name} manifest")   # same checks as loading
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(folder / WEIGHTS_FILE, data)
    _write_graph_and_manifest(folder, manifest, graph_bytes)
    return folder


def write_manifest(folder: Path, manifest: Manifest) -> None:
    _atomic_write(folder / MANIFEST_FILE, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())


def _write_graph_and_manifest(folder: Path, manifest: Manifest, graph: bytes) -> None:
    """The last step of writing a face artifact: its graph (b"": none, and a graph of earlier weights goes) and the
    manifest that names it, checked like loading first."""
    manifest.graph_file = GRAPH_FILE if graph else ""
    manifest.graph_sha256 = sha256_bytes(graph) if graph else ""
    Manifest.from_dict(manifest.to_dict(), where=f"{manifest.name} manifest")
    if graph:
        _atomic_write(folder / GRAPH_FILE, graph)
    write_manifest(folder, manifest)
    if not graph:
        (folder / GRAPH_FILE).unlink(missing_ok=True)


def attach_graph(folder: str | Path, graph: bytes | None) -> Manifest:
    """Give an existing face artifact the graph `graph` (None: take its graph away), leaving its weights file as it
    is; returns the new manifest. The caller checks that the graph computes what the weights' model computes."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.modality != "face":
        raise ArtifactError(f"{folder} holds an {manifest.modality} detector; only face detectors have graphs")
    _write_graph_and_manifest(folder, manifest, graph or b"")
    return manifest


def read_manifest(folder: str | Path) -> Manifest:
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise ArtifactError(f"no artifact folder at {folder}")
    if not path.is_file():
        raise ArtifactError(f"{folder} has no {MANIFEST_FILE}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from None
    return Manifest.from_dict(data, where=str(path))


def _read_weights(folder: Path, manifest: Manifest) -> dict[str, torch.Tensor]:
    name = manifest.weights_file
    if Path(name).name != name or name in ("", ".", ".."):
        raise ArtifactError(f"{folder}: weights_file must be a file name inside the folder, not {name!r}")
    if not name.endswith(".safetensors"):
        raise ArtifactError(f"{folder}: weights_file {name!r} is not a .safetensors file; only safetensors "
                            "weights are loaded (pickles can run code)")
    path = folder / name
    if not path.is_file():
        raise ArtifactError(f"{folder} has no weights file {name}")
    data = path.read_bytes()   # hash and parse the same bytes
    digest = sha256_bytes(data)
    if digest != manifest.sha256.lower():
        raise ArtifactError(f"checksum mismatch for {path}: sha256 {digest[:12]}..., manifest says "
                            f"{manifest.sha256[:12]}...; the file is corrupt or was replaced")
    try:
        return safetensors_load(data)
    except Exception as exc:   # SafetensorError or a header that is not JSON
        kind = " (it looks like a pickle)" if data[:1] == b"\x80" or data[:2] == b"PK" else ""
        raise ArtifactError(f"{path} is not a valid safetensors file{kind}: {str(exc).splitlines()[0][:120]}") \
            from None


class Calibrated:
    """What every loaded artifact (face or audio) reads from its manifest: temperature, threshold, checksum, and
    the temperature-scaled probability of "fake"."""
    manifest: Manifest

    @property
    def temperature(self) -> float:
        return self.manifest.temperature

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def checksum(self) -> str:
        """sha256 of the weights file (verified at load time)."""
        return self.manifest.sha256

    def calibrate(self, logits: np.ndarray | Iterable[float]) -> np.ndarray:
        """Temperature-scaled probabilities of "fake": sigmoid(logit / T)."""
        z = np.asarray(logits, dtype=np.float64) / self.manifest.temperature
        return 0.5 * (1.0 + np.tanh(0.5 * z))   # sigmoid without overflow


class LoadedDetector(Calibrated):
    """A detector ready for inference on the CPU. Faces are scored by ONNX Runtime when the artifact has a graph
    (`engine` says which), else by the PyTorch model in eval mode, float32. `model` is the PyTorch model for
    Grad-CAM and feature maps: with a graph it is built on first use from the same checked weights file.
    Inference is read-only, so one instance can serve several threads."""

    def __init__(self, name: str, spec: DetectorSpec, manifest: Manifest, folder: Path, *,
                 model: nn.Module | None = None, graph: GraphSession | None = None) -> None:
        if (model is None) == (graph is None):
            raise ValueError("a LoadedDetector has either a PyTorch model or a graph session at first")
        self.name, self.spec, self.manifest, self.folder = name, spec, manifest, Path(folder)
        self._model, self._graph = model, graph
        self._model_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LoadedDetector({self.name!r}, engine={self.engine!r}, folder={str(self.folder)!r})"

    @property
    def engine(self) -> str:
        return ENGINES[0] if self._graph is not None else ENGINES[1]

    @property
    def model(self) -> nn.Module:
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    manifest, spec, state = _verified_state(self.folder, self.name, "face", get_spec)
                    if manifest.sha256 != self.manifest.sha256:
                        raise ArtifactError(f"{self.folder}: the weights changed since the detector was loaded; "
                                            "reload the models")
                    model = _loaded_model(self.folder, manifest, spec, state, _build_face)
                    model.detector_input_size = manifest.input_size
                    self._model = model
        return self._model

    @property
    def input_size(self) -> int:
        return self.manifest.input_size

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.manifest.mean)

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.manifest.std)

    def preprocess(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """HxWx3 uint8 RGB crops -> (N, 3, S, S) normalised float32 tensor at the artifact's input size."""
        return to_tensor_batch(crops, self.input_size, self.manifest.mean, self.manifest.std)

    def logits(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Raw "fake" logits, shape (N,), float32."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        out = np.empty(len(crops), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), batch_size):
                batch = self.preprocess(crops[start:start + batch_size])
                scores = self._graph.run(batch.numpy()) if self._graph is not None else self._model(batch)
                out[start:start + len(batch)] = np.asarray(scores, dtype=np.float32).reshape(-1)
        return out

    def predict(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.calibrate(self.logits(crops, batch_size=batch_size))


def _verified_state(folder: Path, expected_name: str | None, modality: str,
                    get_spec_fn: Callable[[str], Any]) -> tuple[Manifest, Any, dict[str, torch.Tensor]]:
    """Manifest, name, modality, registry architecture, dtype and the sha256 of the weights, then the weights."""
    manifest = read_manifest(folder)
    if expected_name is not None and manifest.name != expected_name:
        raise ArtifactError(f"{folder} holds detector {manifest.name!r}, expected {expected_name!r}")
    if manifest.modality != modality:
        def article(word: str) -> str:
            return ("an " if word[:1] in "aeiou" else "a ") + word
        raise ArtifactError(f"{folder} holds {article(manifest.modality)} detector, not {article(modality)} detector")
    try:
        spec = get_spec_fn(manifest.name)
    except KeyError as exc:
        raise ArtifactError(f"{folder}: {exc.args[0]}") from None
    if manifest.architecture != spec.architecture:
        raise ArtifactError(f"{folder}: architecture {manifest.architecture!r} does not match the registry's "
                            f"{spec.architecture!r} for {manifest.name}; re-convert it with this version")
    if manifest.dtype not in WEIGHTS_DTYPES:
        raise ArtifactError(f"{folder}: weights dtype {manifest.dtype!r} is not supported "
                            f"(expected {' or '.join(WEIGHTS_DTYPES)})")
    return manifest, spec, _read_weights(folder, manifest)


def _built(folder: Path, manifest: Manifest, spec: Any, build_fn: Callable[..., nn.Module]) -> nn.Module:
    try:
        return build_fn(manifest.name, **manifest.model_kwargs)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder}: cannot build {manifest.name} with model_kwargs {manifest.model_kwargs}: "
                            f"{str(exc).splitlines()[0]}") from None


def _check_shapes(folder: Path, spec: Any, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    problem = _shape_problems(state, expected)
    if problem:
        raise ArtifactError(f"{folder}: weights do not fit {spec.architecture}: {problem}")


def load_verified(folder: str | Path, expected_name: str | None, modality: str, get_spec_fn: Callable[[str], Any],
                  build_fn: Callable[..., nn.Module]) -> tuple[Manifest, Any, nn.Module]:
    """The checks every artifact passes, for any modality: manifest, name, modality, registry architecture, dtype,
    sha256 of the weights, shapes against a rebuild, strict load. Returns (manifest, spec, model in eval mode);
    raises ArtifactError (one line) if anything is wrong."""
    folder = Path(folder)
    manifest, spec, state = _verified_state(folder, expected_name, modality, get_spec_fn)
    return manifest, spec, _loaded_model(folder, manifest, spec, state, build_fn)


def _loaded_model(folder: Path, manifest: Manifest, spec: Any, state: dict[str, torch.Tensor],
                  build_fn: Callable[..., nn.Module]) -> nn.Module:
    model = _built(folder, manifest, spec, build_fn)
    _check_shapes(folder, spec, state, model.state_dict())
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)   # the upcast tensors become the parameters: one copy
    del state
    return model.float().eval()


def _build_face(name: str, **kwargs: Any) -> nn.Module:
    return build_model(name, pretrained=False, **kwargs)


def _read_graph(folder: Path, manifest: Manifest) -> bytes:
    path = folder / manifest.graph_file
    if not path.is_file():
        raise ArtifactError(f"{folder} has no graph file {manifest.graph_file}")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != manifest.graph_sha256.lower():
        raise ArtifactError(f"checksum mismatch for {path}: sha256 {digest[:12]}..., manifest says "
                            f"{manifest.graph_sha256[:12]}...; the file is corrupt or was replaced")
    return data


def load_artifact(folder: str | Path, expected_name: str | None = None) -> LoadedDetector:
    """Load and verify the face detector artifact in `folder`; raise ArtifactError (one line) if anything is wrong."""
    folder = Path(folder)
    manifest, spec, state = _verified_state(folder, expected_name, "face", get_spec)
    if not manifest.graph_file:
        model = _loaded_model(folder, manifest, spec, state, _build_face)
        model.detector_input_size = manifest.input_size   # size-agnostic CNNs record no size in their kwargs
        return LoadedDetector(manifest.name, spec, manifest, folder, model=model)
    with torch.device("meta"):   # shapes only
        reference = _built(folder, manifest, spec, _build_face).state_dict()
    _check_shapes(folder, spec, state, reference)
    try:
        graph = GraphSession(_read_graph(folder, manifest), state)
    except GraphError as exc:
        raise ArtifactError(f"{folder / manifest.graph_file}: {exc}") from None
    return LoadedDetector(manifest.name, spec, manifest, folder, graph=graph)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_detectors(models_dir: str | Path | None = None,
                   names: Iterable[str] | None = None) -> tuple[dict[str, LoadedDetector], dict[str, str]]:
    """Load every registered detector (or `names`) from `<models_dir>/<name>/`.

    Returns (loaded, missing): name -> LoadedDetector, and name -> one-line reason for each one that did not load.
    A failing detector never stops the others.
    """
    models_dir = default_models_dir() if models_dir is None else Path(models_dir)
    loaded: dict[str, LoadedDetector] = {}
    missing: dict[str, str] = {}
    for name in (detector_names() if names is None else list(dict.fromkeys(names))):
        folder = models_dir / name
        try:
            get_spec(name)
        except KeyError as exc:
            missing[name] = str(exc.args[0])
            continue
        if not folder.exists():
            missing[name] = (f"no artifact at {_display(folder)}; train one with train/train_{name}.py "
                             "and train/convert.py")
            continue
        try:
            loaded[name] = load_artifact(folder, expected_name=name)
        except ArtifactError as exc:
            missing[name] = str(exc)
        except Exception as exc:   # a broken artifact must not take the others down
            missing[name] = " ".join(f"{name}: cannot load {folder}: {type(exc).__name__}: {exc}".split())[:300]
    _return_freed_memory()
    return loaded, missing


def _return_freed_memory() -> None:
    """Loading passes each weights file through several short-lived copies (bytes, fp16 tensors, fp32 arrays for
    ONNX Runtime); glibc keeps ~300 MB of that freed memory mapped unless asked to give it back."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to do
        pass
