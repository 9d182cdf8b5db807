"""The shipped weights in converted_models/: all five load (checksums verified, strict), and on the held-out
FFHQ / StyleGAN2 photographs (never used for training or tuning; listed in converted_models/heldout_photos.csv)
the full pipeline — MTCNN, five detectors, calibrated weighted ensemble — separates real from fake."""
import csv
from pathlib import Path

import pytest

from detectors.registry import detector_names

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "converted_models"

pytestmark = pytest.mark.skipif(
    not all((SHIPPED / n / "manifest.json").is_file() for n in detector_names()),
    reason="no shipped weights in converted_models/ yet")


@pytest.fixture(scope="module")
def shipped():
    from analysis.analyzer import Analyzer
    return Analyzer(SHIPPED)


def test_all_five_load_verified(shipped):
    assert shipped.load_errors == {}
    assert set(shipped.detectors) == set(detector_names())
    for d in shipped.detectors.values():
        assert d.manifest.metrics.get("test_auc") is not None, "model card numbers come from the manifest"
        assert 0.05 <= d.temperature <= 20


@pytest.mark.slow
def test_heldout_photographs(shipped, shared_data):
    from sklearn.metrics import roc_auc_score

    rows = list(csv.DictReader((SHIPPED / "heldout_photos.csv").open()))
    labels, scores = [], []
    for row in rows:
        report = shipped.analyze_image(shared_data / row["path"])
        assert report.error is None, report.error
        assert len(report.faces) >= 1
        labels.append(row["label"] == "fake")
        scores.append(report.probability)
    auc = roc_auc_score(labels, scores)
    print(f"held-out photographs: n={len(rows)}, ensemble AUC {auc:.3f}")
    assert auc >= 0.9
