"""The seed-style reference pipeline that `bench.table` measures next to ours, in the same run.

The naive way: models built with their random initialisation and then overwritten by a second, upcast copy of
the weights; OpenCV seeking to and decoding each sampled frame; MTCNN on each full frame separately; each face
scored one crop at a time through each detector.

  python -m bench.reference cold PHOTO [--models-dir DIR]   # a cold start of that pipeline on one photo
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings
from detectors.artifacts import LoadedDetector, _read_weights, read_manifest
from detectors.registry import build_model, detector_names, get_spec


def load_naive(folder: Path) -> LoadedDetector:
    """Build with random initialisation, then copy the upcast weights in (what the seed did)."""
    manifest = read_manifest(folder)
    state = _read_weights(folder, manifest)
    model = build_model(manifest.name, pretrained=False, **manifest.model_kwargs)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    model.float().eval()
    return LoadedDetector(name=manifest.name, spec=get_spec(manifest.name), manifest=manifest, model=model,
                          folder=folder)


def decode_by_seeking(clip: Path, indices: list[int]) -> tuple[list[np.ndarray], float]:
    """Each sampled frame read by seeking OpenCV to it; (RGB frames, seconds)."""
    t = time.perf_counter()
    cap = cv2.VideoCapture(str(clip))
    frames = []
    for i in indices:
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, bgr = cap.read()
        if ok:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames, time.perf_counter() - t


def video_stages(analyzer: Analyzer, clip: Path, indices: list[int]) -> dict[str, float]:
    """Seconds per frame of the reference pipeline's stages on these frames: decode, faces, detectors, total."""
    start = time.perf_counter()
    frames, decode = decode_by_seeking(clip, indices)
    finder = analyzer.face_finder(AnalysisSettings())
    faces_s = detectors_s = 0.0
    for rgb in frames:
        t = time.perf_counter()
        faces = finder.detect(rgb)
        faces_s += time.perf_counter() - t
        t = time.perf_counter()
        for face in faces:
            for det in analyzer.detectors.values():
                det.logits([face.crop])
        detectors_s += time.perf_counter() - t
    n = max(1, len(frames))
    return {"decode": decode / n, "faces": faces_s / n, "detectors": detectors_s / n,
            "total": (time.perf_counter() - start) / n}


def cold(photo: Path, models_dir: Path) -> int:
    from analysis.faces import FaceFinder
    from analysis.media import load_image

    loaded = {n: load_naive(models_dir / n) for n in detector_names() if (models_dir / n).is_dir()}
    image = load_image(photo, max_pixels=40_000_000)
    for face in FaceFinder().detect(image.rgb):
        for det in loaded.values():
            print(det.name, float(det.predict([face.crop])[0]))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["cold"])
    p.add_argument("photo", type=Path)
    p.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "converted_models")
    args = p.parse_args()
    return cold(args.photo, args.models_dir)


if __name__ == "__main__":
    sys.exit(main())
