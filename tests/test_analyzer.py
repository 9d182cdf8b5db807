"""The analysis core end to end on tiny random-weight artifacts: faces, five detectors, ensemble, report."""
import json

import numpy as np
import pytest
from PIL import Image

from analysis.analyzer import Analyzer
from analysis.ensemble import count_votes, verdict_for
from analysis.report import face_count_text
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
    assert face.votes == count_votes(face.models, 0.5, 0.1) and sum(face.votes.values()) == 5
    total = sum(analyzer.weights.values())      # the default strategy is "weighted": shares of the AUC weights
    assert face.weights == pytest.approx({n: w / total for n, w in analyzer.weights.items()}, abs=1e-4)
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
    used = report.to_dict()["settings"]
    assert report.probability == report.faces[0].probability
    assert report.verdict == verdict_for(report.probability, used["threshold"], used["band"])
    assert report.whole_image and report.to_dict()["whole_image"] is True
    assert report.message == "no face found; the whole picture was scored instead (whole-picture fallback is on)"
    assert face_count_text(len(report.faces), report.whole_image) == "0 faces (whole picture scored)"
    assert face_count_text(1) == "1 face" and face_count_text(3) == "3 faces"
    plain = analyzer.analyze_image(path)
    assert not plain.whole_image and plain.faces == []


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


# ------------------------------------------------------------------------- the validated operating point
import logging
import math

from conftest import OP_BAND, OP_THRESHOLD, linked_models, write_operating_point

from pipeline.dispatch import analyze_path
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD

P_BETWEEN = 0.65   # FAKE under the built-in 0.5 ± 0.1 (0.65 >= 0.6); REAL under the test operating point 0.72 ± 0.05


def scoring(a: Analyzer, p: float) -> Analyzer:
    """Every detector gives every face the calibrated probability p (the tiny manifests' temperature is 1.5)."""
    z = 1.5 * math.log(p / (1 - p))
    a.score_crops = lambda crops, names, mirror=False: {n: np.full(len(crops), z, np.float32) for n in names}
    return a


def test_the_default_verdict_uses_the_operating_point(op_models_dir, tiny_models_dir, face_photo):
    with_op = scoring(Analyzer(op_models_dir), P_BETWEEN)
    report = with_op.analyze_image(face_photo)
    assert report.error is None and report.probability == pytest.approx(P_BETWEEN, abs=1e-4)
    assert (report.settings["threshold"], report.settings["band"]) == (OP_THRESHOLD, OP_BAND)
    assert report.verdict == "REAL" and report.faces[0].verdict == "REAL"
    assert report.operating_point == {"source": "validation", "reason": None, "max_fpr": 0.05, "val_fpr": 0.04,
                                      "val_tpr": 0.61, "explicit": []}
    json.dumps(report.to_dict())
    # the same scores without an ensemble.json: the built-in defaults call it FAKE
    plain = scoring(Analyzer(tiny_models_dir), P_BETWEEN).analyze_image(face_photo)
    assert plain.verdict == "FAKE"
    assert (plain.settings["threshold"], plain.settings["band"]) == (DEFAULT_THRESHOLD, DEFAULT_BAND)
    assert plain.operating_point["source"] == "default"
    assert plain.operating_point["reason"] == "no ensemble.json in the models folder"


def test_explicit_values_win_over_the_operating_point(op_models_dir, face_photo):
    a = scoring(Analyzer(op_models_dir), P_BETWEEN)
    report = a.analyze_image(face_photo, AnalysisSettings(threshold=0.5))
    assert (report.settings["threshold"], report.settings["band"]) == (0.5, OP_BAND)   # the band still from it
    assert report.verdict == "FAKE"
    assert report.operating_point["source"] == "validation" and report.operating_point["explicit"] == ["threshold"]
    both = a.analyze_image(face_photo, AnalysisSettings(threshold=0.5, band=0.1))
    assert (both.settings["threshold"], both.settings["band"]) == (0.5, 0.1) and both.verdict == "FAKE"
    assert both.operating_point["source"] == "explicit" and both.operating_point["explicit"] == ["threshold", "band"]
    assert both.operating_point["val_fpr"] is None


def test_resolve_settings_returns_a_filled_copy(op_models_dir):
    a = Analyzer(op_models_dir)
    given = AnalysisSettings(detectors=None)
    resolved = a.resolve_settings(given)
    assert (resolved.threshold, resolved.band) == (OP_THRESHOLD, OP_BAND) and resolved is not given
    assert given.threshold is None and given.band is None
    assert a.resolve_settings(AnalysisSettings(threshold=0.3, band=0.2)).threshold == 0.3
    info = a.operating_point_info()
    assert info["source"] == "validation" and (info["threshold"], info["band"]) == (OP_THRESHOLD, OP_BAND)
    assert (info["val_fpr"], info["val_tpr"], info["val_n_real"], info["max_fpr"]) == (0.04, 0.61, 800, 0.05)


@pytest.mark.parametrize("settings,fragment", [
    (AnalysisSettings(detectors=["swin", "xception"]), "chosen for other detectors"),
    (AnalysisSettings(strategy="mean_logit"), "chosen for the weighted strategy, not mean_logit"),
    (AnalysisSettings(mirror=True), "chosen with mirrored views off, not on"),
])
def test_a_mismatching_operating_point_falls_back_to_the_defaults(op_models_dir, face_photo, settings, fragment):
    a = scoring(Analyzer(op_models_dir), P_BETWEEN)
    report = a.analyze_image(face_photo, settings)
    assert report.error is None
    assert (report.settings["threshold"], report.settings["band"]) == (DEFAULT_THRESHOLD, DEFAULT_BAND)
    assert report.operating_point["source"] == "default" and fragment in report.operating_point["reason"]
    assert report.verdict == "FAKE"


def test_an_operating_point_for_the_chosen_detectors_applies(tiny_models_dir, tmp_path, face_photo):
    folder = linked_models(tiny_models_dir, tmp_path / "models")
    write_operating_point(folder, detectors=["xception", "swin"], strategy="mean_logit", threshold=0.4)
    a = Analyzer(folder)
    assert a.operating_point_info()["source"] == "default"   # the default ensemble is all five, weighted
    s = a.resolve_settings(AnalysisSettings(detectors=["swin", "xception"], strategy="mean_logit"))
    assert (s.threshold, s.band) == (0.4, OP_BAND)


def test_a_corrupt_operating_point_warns_and_uses_the_defaults(tiny_models_dir, tmp_path, face_photo, caplog):
    folder = linked_models(tiny_models_dir, tmp_path / "models")
    (folder / "ensemble.json").write_text('{"strategy": "weighted", "threshold": ')
    with caplog.at_level(logging.WARNING, logger="analysis.analyzer"):
        a = scoring(Analyzer(folder), P_BETWEEN)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "not valid JSON" in warnings[0] and "\n" not in warnings[0]
    assert a.operating_point is None and len(a.detectors) == 5
    report = a.analyze_image(face_photo)
    assert report.error is None and report.verdict == "FAKE"
    assert (report.settings["threshold"], report.settings["band"]) == (DEFAULT_THRESHOLD, DEFAULT_BAND)
    assert report.operating_point["source"] == "default"
    assert report.operating_point["reason"].startswith("ensemble.json ignored:")
    assert "not valid JSON" in report.operating_point["reason"]


def test_failed_inputs_and_videos_record_the_resolved_settings(op_models_dir, tmp_path):
    from video.engine import analyze_video
    from video.sampling import VideoOptions
    from video_fixtures import two_faces_frames, write_clip

    a = scoring(Analyzer(op_models_dir), P_BETWEEN)
    missing = analyze_path(tmp_path / "missing.jpg", a)
    assert missing.error and missing.settings["threshold"] == OP_THRESHOLD
    assert missing.operating_point["source"] == "validation"
    frames, _ = two_faces_frames(4, width=320, height=240, face_side=90, people=1)
    clip = write_clip(tmp_path / "one.mp4", frames, fps=4)
    video = analyze_video(clip, a, options=VideoOptions(frames=2, keep_thumbnails=False))
    assert video.error is None and video.frames
    assert (video.settings["threshold"], video.settings["band"]) == (OP_THRESHOLD, OP_BAND)
    assert video.operating_point["source"] == "validation" and video.to_dict()["operating_point"]["val_tpr"] == 0.61
    assert video.probability == pytest.approx(P_BETWEEN, abs=1e-3) and video.verdict == "REAL"
