"""Checkpoint -> artifact: `converted_models/<name>/` (fp16 safetensors + manifest) via detectors.artifacts.

    python -m train.convert --checkpoint runs/xception/<stamp>/best.pt --out converted_models [--name NAME]
    python -m train.convert --add-graph converted_models/swin   # an older artifact gains its ONNX graph

The checkpoint may come from a GPU (it is read with map_location="cpu"). The manifest carries the temperature
fitted on validation, the metrics, the training data summary and the MLflow run id. The artifact is then loaded
back through `load_artifact` and its logits on a random batch are compared with the checkpoint model's: exactly
(1e-3) against the same weights rounded to fp16, loosely against the fp32 originals. An artifact with an ONNX graph
is checked twice, through ONNX Runtime (what scores faces) and through its PyTorch model (Grad-CAM, feature maps).
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from train.checkpoints import load_checkpoint

log = logging.getLogger("train.convert")

EXACT_TOL = 1e-3         # artifact vs the same model with fp16-rounded weights (both computed in fp32)
FP16_ABS, FP16_REL, FP16_PROB = 0.05, 0.02, 2e-3   # artifact vs the fp32 checkpoint model


class ConversionError(RuntimeError):
    pass


class EngineMismatch(ConversionError):
    """The exported graph computes something else than the PyTorch model: the artifact is kept without it."""


@dataclass
class Check:
    max_diff_fp16: float
    max_diff_fp32: float
    n: int
    engine: str


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    from detectors.registry import build_model
    model = build_model(ckpt["name"], pretrained=False, **dict(ckpt["model_kwargs"]))
    model.load_state_dict(ckpt["model"], strict=True)
    return model.float().eval()


def verify(model: torch.nn.Module, folder: Path, n: int = 6, seed: int = 0) -> Check:
    """Logits of the loaded artifact against the checkpoint model on `n` random crops (smooth textures, half of
    them with noise): equal to the fp16-rounded model; within fp16 tolerance of the fp32 one, in logits or, where
    a logit is so large that rounding moves it, in calibrated probability."""
    from detectors.artifacts import load_artifact
    from detectors.preprocess import to_tensor_batch
    from train.calibration import apply_temperature
    from train.synthetic import texture

    detector = load_artifact(folder)
    rng = np.random.default_rng(seed)
    size = detector.input_size
    crops = []
    for i in range(n):
        crop = texture(rng, size + 17).astype(np.float32)
        if i % 2:
            crop += rng.normal(0, 20, crop.shape).astype(np.float32)
        crops.append(np.clip(crop, 0, 255).astype(np.uint8))
    got = detector.logits(crops).astype(np.float64)
    x = to_tensor_batch(crops, size, detector.mean, detector.std)
    if detector.engine != "pytorch":
        with torch.inference_mode():
            eager = detector.model(x).reshape(-1).double().numpy()
        if np.abs(got - eager).max() > EXACT_TOL * max(1.0, float(np.abs(eager).max())):
            raise EngineMismatch(f"{detector.engine} and PyTorch disagree on the artifact by "
                                  f"{np.abs(got - eager).max():.2e} in logits")
    rounded = copy.deepcopy(model)
    stored = {"float16": torch.float16, "float32": torch.float32}[detector.manifest.dtype]
    with torch.no_grad():
        for p in list(rounded.parameters()) + list(rounded.buffers()):
            if p.is_floating_point():
                p.copy_(p.to(stored).float())
        want16 = rounded(x).reshape(-1).double().numpy()
        want32 = model(x).reshape(-1).double().numpy()
    d16, d32 = np.abs(got - want16), np.abs(got - want32)
    if d16.max() > EXACT_TOL * max(1.0, float(np.abs(want16).max())):
        raise ConversionError(f"artifact logits differ from the {detector.manifest.dtype} checkpoint model by "
                              f"{d16.max():.2e}")
    t = detector.temperature
    dp = np.abs(apply_temperature(got, t) - apply_temperature(want32, t))
    ok = (d32 <= FP16_ABS + FP16_REL * np.abs(want32)) | (dp <= FP16_PROB)
    if not ok.all():
        raise ConversionError(f"fp16 weights change the logits by up to {d32.max():.2e} "
                              f"(probabilities by {dp.max():.2e}): the model is not safe to store in fp16")
    return Check(max_diff_fp16=float(d16.max()), max_diff_fp32=float(d32.max()), n=n, engine=detector.engine)


def _save_verified(model: torch.nn.Module, name: str, save: Callable[[str, bool], Path],
                   dtype: str) -> tuple[Path, Check]:
    """save(dtype, graph) until verify passes: without the ONNX graph when it disagrees with PyTorch, in float32
    when float16 weights would change what the model says."""
    graph = True
    while True:
        folder = save(dtype, graph)
        try:
            return folder, verify(model, folder)
        except EngineMismatch as exc:
            if not graph:
                raise
            log.warning("%s; storing %s without its ONNX graph", exc, name)
            graph = False
        except ConversionError as exc:
            if dtype == "float32":
                raise
            # fp16 keeps the repository small, but never at the cost of changing what the model says
            log.warning("%s; storing %s in float32 instead", exc, name)
            dtype = "float32"


def add_graph(folder: str | Path) -> Path:
    """Give an artifact made before graphs existed (its checkpoint may be gone) its ONNX graph: the weights file
    stays byte for byte, the manifest gains the graph's name and checksum, and the artifact is then verified like
    a conversion; a graph that disagrees with PyTorch is taken away again. A model without an ONNX form is left as
    it is."""
    from detectors.artifacts import attach_graph, load_artifact
    from detectors.onnx_graph import GraphError, export_graph

    folder = Path(folder)
    detector = load_artifact(folder)
    model = detector.model
    try:
        graph = export_graph(model, detector.input_size)
    except GraphError as exc:
        raise ConversionError(f"{exc}; {folder} is left as it is") from None
    attach_graph(folder, graph)
    try:
        check = verify(model, folder)
    except ConversionError:
        attach_graph(folder, None)
        raise
    log.info("artifact %s gained its graph (%s): max |logit diff| %.2e", folder, check.engine, check.max_diff_fp16)
    return folder


def convert(checkpoint: str | Path, out_dir: str | Path, name: str | None = None, *, threshold: float = 0.5,
            tracking_uri: str | None = None, experiment: str | None = None, log_to_mlflow: bool = True) -> Path:
    """Write the artifact and verify it; returns the artifact folder. Logs it to the checkpoint's MLflow run."""
    from analysis.report import json_safe
    from detectors.artifacts import save_artifact
    from detectors.registry import get_spec

    ckpt = load_checkpoint(checkpoint, map_location="cpu")
    name = name or ckpt["name"]
    try:
        spec, trained = get_spec(name), get_spec(ckpt["name"])
    except KeyError as exc:
        raise ConversionError(str(exc.args[0])) from None
    if spec.architecture != trained.architecture:
        raise ConversionError(f"{checkpoint} holds a {ckpt['name']} ({trained.architecture}); "
                              f"{name} is a {spec.architecture}")
    model = model_from_checkpoint(ckpt)
    training = dict(ckpt.get("training") or {})
    epoch = ckpt.get("epoch", -1)   # None for a soup of several runs
    training.update({"checkpoint": str(Path(checkpoint).resolve()), "epoch": None if epoch is None else int(epoch) + 1,
                     "run_id": ckpt.get("run_id") or ""})
    def save(dtype: str, graph: bool) -> Path:
        return save_artifact(model, name, out_dir, input_size=int(ckpt["input_size"]),
                             model_kwargs=dict(ckpt["model_kwargs"]),
                             temperature=float(ckpt.get("temperature") or 1.0), threshold=threshold,
                             training=json_safe(training), metrics=json_safe(dict(ckpt.get("metrics") or {})),
                             run_id=ckpt.get("run_id") or None, dtype=dtype, graph=graph)

    folder, check = _save_verified(model, name, save, "float16")
    log.info("artifact %s verified (%s): max |logit diff| %.2e vs fp16 weights, %.2e vs fp32", folder,
             check.engine, check.max_diff_fp16, check.max_diff_fp32)
    if log_to_mlflow and ckpt.get("run_id"):
        from train.tracking import DEFAULT_EXPERIMENT, Tracker
        tracker = Tracker(tracking_uri=tracking_uri, experiment=experiment or DEFAULT_EXPERIMENT)
        if tracker.enabled:
            try:
                tracker.client.get_run(ckpt["run_id"])
            except Exception:  # noqa: BLE001 - a checkpoint from another machine's store
                log.info("run %s is not in %s: artifact not logged to MLflow", ckpt["run_id"], tracker.uri)
            else:
                tracker.run_id = ckpt["run_id"]
                tracker.log_artifact(folder, f"artifact/{name}")
                tracker.set_tags({"artifact": str(Path(folder).resolve())})
    return Path(folder)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.convert", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="best.pt (or last.pt) of a training run")
    source.add_argument("--add-graph", metavar="ARTIFACT", help="re-save an existing artifact folder with its ONNX "
                        "graph (its weights file stays as it is)")
    p.add_argument("--out", default="converted_models", help="models folder; the artifact goes to OUT/NAME")
    p.add_argument("--name", default=None, help="registered detector name (default: the checkpoint's)")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold stored in the manifest")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--experiment", default=None)
    p.add_argument("--no-mlflow", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if args.add_graph:
            folder = add_graph(args.add_graph)
        else:
            folder = convert(args.checkpoint, args.out, args.name, threshold=args.threshold,
                             tracking_uri=args.tracking_uri, experiment=args.experiment,
                             log_to_mlflow=not args.no_mlflow)
    except (ConversionError, FileNotFoundError, ValueError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - e.g. ArtifactError: one line for the user
        print(f"error: {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print(f"artifact: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
