"""The analysis core end to end on tiny random-weight artifacts: faces, five detectors, ensemble, report."""
import json

import numpy as np
import pytest
from PIL import Image

from analysis.analyzer import Analyzer
from analysis.ensemble import verdict_for
from analysis.settings import AnalysisSettings
from detectors.registry import detector_names


def test_one_face_five_models(analyzer, face_photo):
    report = analyzer.analyze_image(face_photo)
    assert report.error is None
    assert len(report.faces) == 1
    face = report.faces[0]
    x1, y1, x2, y2 = face.box
    assert 150 < x1 < 210 and 30 < y1 < 100 and 240 < x2 < 300 and 140 < y2 < 210  # the astronaut's face
    assert set(face.models) == set(detector_names())
    assert all(0.0 <= p <= 1.0 for p in face.models.values())
    assert report.probability == face.probability
    assert report.verdict == verdict_for(face.probability, 0.5, 0.1)
    assert report.sha256 and report.width == 512 and report.height == 512
    assert set(report.model_checksums) == set(detector_names())
    assert report.models_not_voting == [] and report.message is None   # every tiny detector passes the gate
    assert {"decode", "faces", "ensemble", "total"} <= set(report.timings)
    json.dumps(report.to_dict())  # serialisable as it is


def test_calibration_uses_the_manifest_temperature(analyzer, face_photo):
    face = analyzer.analyze_image(face_photo).faces[0]
    for name, p in face.models.items():
        temperature = analyzer.detectors[name].manifest.temperature
        expected = 1 / (1 + np.exp(-face.logits[name] / temperature))
        assert p == pytest.approx(expected, abs=1e-3)


def test_image_verdict_is_its_most_suspicious_face(analyzer, astronaut_rgb, tmp_path):
    head = astronaut_rgb[20:220, 130:330]
    canvas = np.full((300, 700, 3), 255, np.uint8)
    canvas[50:250, 50:250] = head
    canvas[50:250, 450:650] = head[:, ::-1]
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    report = analyzer.analyze_image(path)
    assert len(report.faces) == 2
    assert report.probability == max(f.probability for f in report.faces)


def test_detector_subset_and_strategy(analyzer, face_photo):
    s = AnalysisSettings(detectors=["swin", "xception"], strategy="majority")
    report = analyzer.analyze_image(face_photo, s)
    assert set(report.faces[0].models) == {"swin", "xception"}
    assert report.models_used == ["swin", "xception"]
    assert report.faces[0].probability in (0.0, 0.5, 1.0)


def test_unknown_detector_is_a_clear_error(analyzer, face_photo):
    report = analyzer.analyze_image(face_photo, AnalysisSettings(detectors=["nope"]))
    assert "unknown detector" in report.error and report.faces == []


def test_no_face(analyzer, tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(path)
    report = analyzer.analyze_image(path)
    assert report.error is None and report.faces == [] and report.verdict is None
    assert report.message == "no face found"


def test_whole_image_fallback(analyzer, tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(path)
    report = analyzer.analyze_image(path, AnalysisSettings(whole_image_fallback=True))
    assert len(report.faces) == 1 and report.faces[0].box == [0.0, 0.0, 300.0, 200.0]
    assert report.verdict in ("FAKE", "REAL", "UNCERTAIN")


@pytest.mark.parametrize("content,needle", [(b"", "empty"), (b"hello, not an image", "not"),
                                            (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "")])
def test_bad_bytes_give_one_line_errors(analyzer, tmp_path, content, needle):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    report = analyzer.analyze_image(path)
    assert report.error and "\n" not in report.error and needle in report.error.lower()


def test_missing_models_are_reported(tiny_models_dir, tmp_path, face_photo):
    import shutil
    partial = tmp_path / "models"
    shutil.copytree(tiny_models_dir, partial)
    shutil.rmtree(partial / "swin")
    (partial / "xception" / "model.safetensors").write_bytes(b"tampered")
    a = Analyzer(partial)
    assert set(a.detectors) == set(detector_names()) - {"swin", "xception"}
    report = a.analyze_image(face_photo)
    assert report.error is None
    assert set(report.models_missing) == {"swin", "xception"}
    assert set(report.faces[0].models) == set(detector_names()) - {"swin", "xception"}


def test_no_models_at_all(tmp_path, face_photo):
    a = Analyzer(tmp_path / "empty")
    report = a.analyze_image(face_photo)
    assert report.error.startswith("no detector available")
    assert "train" in report.error
    info = a.model_info()
    assert len(info) == 5 and not any(m["loaded"] for m in info)
