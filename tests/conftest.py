"""Shared fixtures: tiny random-weight artifacts written through the real save path, an analyzer on them,
a real face photograph, and the shared data folder (skipped cleanly when absent)."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO_ROOT.parent / "shared" / "data").resolve()
TINY_SIZE = 64
# every tiny detector passes the quality gate (detectors.gate), so the default ensemble is all five;
# tests/test_gate.py rewrites manifests to make some fail
PASSING_AUCS = {"dfdc": 0.9, "ffhq_stylegan2": 0.8, "videos": None}


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory) -> Path:
    import torch

    from detectors.artifacts import save_artifact
    from detectors.registry import build_model, detector_names, model_kwargs_for

    out = tmp_path_factory.mktemp("tiny_models")
    torch.manual_seed(0)
    for name in detector_names():
        kwargs = model_kwargs_for(name, TINY_SIZE)
        model = build_model(name, pretrained=False, **kwargs)
        save_artifact(model, name, out, input_size=TINY_SIZE, model_kwargs=kwargs, temperature=1.5,
                      threshold=0.5, training={"data": "random initialisation (tests)"},
                      metrics={"val_auc": 0.5 + 0.05 * (len(name) % 5), "val_auc_by_source": PASSING_AUCS},
                      run_id="test")
    return out


@pytest.fixture(scope="session")
def analyzer(tiny_models_dir):
    from analysis.analyzer import Analyzer
    return Analyzer(tiny_models_dir)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present (only on the developers' machines)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def astronaut_rgb() -> np.ndarray:
    from skimage import data
    return data.astronaut()


@pytest.fixture(scope="session")
def face_photo(tmp_path_factory, astronaut_rgb) -> Path:
    from PIL import Image
    path = tmp_path_factory.mktemp("photos") / "astronaut.jpg"
    Image.fromarray(astronaut_rgb).save(path, quality=92)
    return path


# ------------------------------------------------------------------------------------------ operating points
OP_THRESHOLD, OP_BAND = 0.72, 0.05   # the test operating point: above the built-in 0.5 ± 0.1


def linked_models(source: Path, dest: Path) -> Path:
    """A models folder whose detector folders are links to `source`'s: cheap, and free for an ensemble.json."""
    dest.mkdir(parents=True, exist_ok=True)
    for sub in source.iterdir():
        if sub.name != "ensemble.json":
            (dest / sub.name).symlink_to(sub, target_is_directory=sub.is_dir())
    return dest


def write_operating_point(models_dir: Path, **changes) -> Path:
    """`<models_dir>/ensemble.json` for the tiny detectors (all five, weighted) unless `changes` say otherwise."""
    from analysis.operating_point import OperatingPoint, ValidationRates
    from detectors.registry import detector_names

    fields = {"strategy": "weighted", "threshold": OP_THRESHOLD, "band": OP_BAND, "max_fpr": 0.05,
              "val": ValidationRates(fpr=0.04, tpr=0.61, uncertain_real=0.2, uncertain_fake=0.15, n_real=800,
                                     n_fake=700),
              "detectors": list(detector_names()), "created": "2025-01-01T12:00:00", **changes}
    return OperatingPoint(**fields).write(models_dir)


@pytest.fixture
def op_models_dir(tiny_models_dir, tmp_path) -> Path:
    """The tiny detectors with a valid operating point (threshold OP_THRESHOLD, band OP_BAND) for all five."""
    folder = linked_models(tiny_models_dir, tmp_path / "op_models")
    write_operating_point(folder)
    return folder
