"""The quality gate: which detectors vote in the default ensemble, and how every interface says so."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.analyzer import Analyzer
from analysis.report import not_voting_text
from analysis.settings import AnalysisSettings
from detectors.artifacts import MANIFEST_FILE
from detectors.gate import GATE_FLOOR, NO_SOURCE_AUC, GateDecision, gate_decision
from detectors.registry import detector_names

SWIN_REASON = "validation AUC below 0.75 on dfdc (0.501)"


def manifest(by_source) -> dict:
    return {"name": "x", "metrics": {"val_auc": 0.8, "val_auc_by_source": by_source}}


def set_by_source(models_dir: Path, name: str, by_source: dict | None) -> None:
    """Rewrite one artifact's per-source validation AUC (the checksum covers the weights only)."""
    path = models_dir / name / MANIFEST_FILE
    data = json.loads(path.read_text())
    if by_source is None:
        data["metrics"].pop("val_auc_by_source", None)
    else:
        data["metrics"]["val_auc_by_source"] = by_source
    path.write_text(json.dumps(data))


# --------------------------------------------------------------------------------------------- gate_decision
def test_floor_is_075():
    assert GATE_FLOOR == 0.75


def test_every_source_at_or_above_the_floor_votes():
    d = gate_decision(manifest({"dfdc": 0.75, "ffhq_stylegan2": 0.93}))
    assert d == GateDecision(votes=True, reason=None, auc_by_source={"dfdc": 0.75, "ffhq_stylegan2": 0.93})


def test_one_source_below_the_floor_fails_and_names_it():
    d = gate_decision(manifest({"dfdc": 0.5634, "ffhq_stylegan2": 0.93}))
    assert not d.votes
    assert d.reason == "validation AUC below 0.75 on dfdc (0.563)"


def test_every_failing_source_is_listed_in_order():
    d = gate_decision(manifest({"dfdc": 0.5632985, "ffhq_stylegan2": 0.7204861, "celeb": 0.9}))
    assert d.reason == "validation AUC below 0.75 on dfdc (0.563), ffhq_stylegan2 (0.720)"
    assert "\n" not in d.reason


def test_null_sources_are_skipped():
    d = gate_decision(manifest({"dfdc": 0.8, "videos": None, "nan": float("nan")}))
    assert d.votes and d.reason is None and d.auc_by_source == {"dfdc": 0.8}
    failing = gate_decision(manifest({"dfdc": 0.6, "videos": None}))
    assert not failing.votes and failing.reason == "validation AUC below 0.75 on dfdc (0.600)"


@pytest.mark.parametrize("data", [
    {"name": "x"},                                              # no metrics at all
    {"name": "x", "metrics": {}},
    {"name": "x", "metrics": {"val_auc": 0.99}},                # an overall AUC is not enough
    manifest({}),
    manifest({"videos": None, "dfdc": None}),                   # every source had one class only
    manifest("0.9"),
    manifest({"dfdc": True}),
])
def test_no_per_source_auc_does_not_vote(data):
    d = gate_decision(data)
    assert d.votes is False and d.reason == NO_SOURCE_AUC == "no per-source validation AUC in its manifest"


def test_floor_argument_and_manifest_gate_entry():
    data = manifest({"dfdc": 0.7})
    assert gate_decision(data, floor=0.6).votes
    assert gate_decision(data, floor=0.71).reason == "validation AUC below 0.71 on dfdc (0.700)"
    data["gate"] = {"floor": 0.5}          # ignored: the floor is GATE_FLOOR unless passed
    assert not gate_decision(data).votes
    with pytest.raises(ValueError):
        gate_decision(data, floor=1.5)


def test_shipped_style_manifest_with_gate_floor_is_ignored():
    data = manifest({"dfdc": 0.743, "ffhq_stylegan2": 0.936, "videos": None})
    data["gate"] = {"floor": 0.7}
    assert gate_decision(data).reason == "validation AUC below 0.75 on dfdc (0.743)"


def test_not_voting_text():
    assert not_voting_text([{"name": "swin", "reason": SWIN_REASON}, {"name": "x", "reason": "r"}]) == \
        f"swin ({SWIN_REASON}); x (r)"
    assert not_voting_text([]) == ""


# --------------------------------------------------------------------------------------- the analysis core
@pytest.fixture(scope="module")
def gated_dir(tiny_models_dir, tmp_path_factory) -> Path:
    """The tiny models, with swin failing the gate on one source."""
    out = tmp_path_factory.mktemp("gated") / "models"
    shutil.copytree(tiny_models_dir, out)
    set_by_source(out, "swin", {"dfdc": 0.501, "ffhq_stylegan2": 0.9, "videos": None})
    return out


@pytest.fixture(scope="module")
def gated(gated_dir) -> Analyzer:
    return Analyzer(gated_dir)


def test_default_set_leaves_out_a_failing_detector(gated):
    assert set(gated.detectors) == set(detector_names())
    assert gated.default_detectors() == [n for n in detector_names() if n != "swin"]
    assert gated.active_detectors(AnalysisSettings()) == gated.default_detectors()
    assert not gated.gate_fallback and gated.gate_note() is None
    assert gated.not_voting(AnalysisSettings()) == [{"name": "swin", "reason": SWIN_REASON}]


def test_image_report_says_who_does_not_vote(gated, face_photo):
    report = gated.analyze_image(face_photo)
    assert report.error is None and report.message is None
    assert "swin" not in report.models_used and len(report.models_used) == 4
    assert "swin" not in report.faces[0].models and "swin" not in report.model_checksums
    assert report.models_not_voting == [{"name": "swin", "reason": SWIN_REASON}]
    assert json.loads(json.dumps(report.to_dict()))["models_not_voting"] == report.models_not_voting


def test_explicit_detectors_override_the_gate(gated, face_photo):
    report = gated.analyze_image(face_photo, AnalysisSettings(detectors=["swin", "xception"]))
    assert report.error is None
    assert report.models_used == ["swin", "xception"] and set(report.faces[0].models) == {"swin", "xception"}
    assert report.models_not_voting == []


def test_detectors_setting_of_a_ui_selection(gated):
    assert gated.detectors_setting(list(reversed(gated.default_detectors()))) is None
    assert gated.detectors_setting(["swin", *gated.default_detectors()]) == ["swin", *gated.default_detectors()]
    assert gated.detectors_setting(["xception"]) == ["xception"]


def test_model_info_carries_the_gate(gated):
    info = {m["name"]: m for m in gated.model_info()}
    assert info["swin"]["votes"] is False and info["swin"]["gate_reason"] == SWIN_REASON
    assert all(m["votes"] is True and m["gate_reason"] is None for n, m in info.items() if n != "swin")
    assert all(m["gate_floor"] == GATE_FLOOR for m in info.values())
    json.dumps(info)


def test_not_loaded_detectors_do_not_vote(tmp_path):
    info = Analyzer(tmp_path / "empty").model_info()
    assert all(m["votes"] is False and m["gate_reason"] is None for m in info)


def test_when_none_passes_every_loaded_detector_votes_and_the_report_says_so(tiny_models_dir, tmp_path,
                                                                            face_photo):
    models = tmp_path / "models"
    for name in ("swin", "xception"):
        shutil.copytree(tiny_models_dir / name, models / name)
    set_by_source(models, "swin", {"dfdc": 0.6})
    set_by_source(models, "xception", None)
    a = Analyzer(models, names=["swin", "xception"])
    assert a.gate_fallback and a.default_detectors() == ["swin", "xception"]
    report = a.analyze_image(face_photo)
    assert report.models_used == ["swin", "xception"] and report.models_not_voting == []
    assert report.message == a.gate_note() and "no detector passes the quality gate" in report.message
    info = {m["name"]: m for m in a.model_info()}
    assert info["swin"]["votes"] and info["swin"]["gate_reason"] == "validation AUC below 0.75 on dfdc (0.600)"
    assert info["xception"]["votes"] and info["xception"]["gate_reason"] == NO_SOURCE_AUC
    explicit = a.analyze_image(face_photo, AnalysisSettings(detectors=["swin"]))
    assert explicit.message is None and explicit.models_used == ["swin"]


def test_video_report_says_who_does_not_vote(gated, tmp_path):
    from video.engine import analyze_video
    from video.sampling import VideoOptions
    from video_fixtures import two_faces_frames, write_clip

    frames, _ = two_faces_frames(4, width=320, height=240, face_side=90, people=1)
    clip = write_clip(tmp_path / "one.mp4", frames, fps=4)
    report = analyze_video(clip, gated, options=VideoOptions(frames=2))
    assert report.error is None and report.frames
    assert report.models_not_voting == [{"name": "swin", "reason": SWIN_REASON}]
    assert "swin" not in report.models_used and all("swin" not in f.models for f in report.faces)
    assert report.to_dict()["models_not_voting"] == report.models_not_voting
    chosen = analyze_video(clip, gated, AnalysisSettings(detectors=["swin"]), options=VideoOptions(frames=2))
    assert chosen.models_used == ["swin"] and chosen.models_not_voting == []


# ------------------------------------------------------------------------------------------------ interfaces
def test_cli_models_json_and_text_carry_votes(gated_dir, capsys):
    import cli

    assert cli.main(["models", "--json", "--models-dir", str(gated_dir)]) == 0
    info = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert info["swin"]["votes"] is False and info["swin"]["gate_reason"] == SWIN_REASON
    assert info["xception"]["votes"] is True and info["xception"]["gate_floor"] == 0.75
    assert cli.main(["models", "--models-dir", str(gated_dir)]) == 0
    text = capsys.readouterr().out
    assert f"VOTES no ({SWIN_REASON})" in text and text.count("VOTES yes") == 4


def test_cli_analyze_prints_who_does_not_vote(gated_dir, face_photo, capsys):
    import cli

    assert cli.main(["analyze", str(face_photo), "--models-dir", str(gated_dir)]) == 0
    assert f"not voting: swin ({SWIN_REASON})" in capsys.readouterr().out
    assert cli.main(["analyze", str(face_photo), "--models-dir", str(gated_dir), "--detectors", "swin"]) == 0
    out = capsys.readouterr().out
    assert "not voting" not in out and "swin" in out


def test_api_models_and_report(gated, tmp_path, face_photo):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.config import ApiConfig

    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads")), analyzer=gated)
    with TestClient(app) as c:
        models = {m["name"]: m for m in c.get("/v1/models").json()["models"]}
        assert models["swin"]["votes"] is False and models["swin"]["gate_reason"] == SWIN_REASON
        assert models["xception"]["votes"] is True and models["xception"]["gate_floor"] == GATE_FLOOR
        resp = c.post("/v1/analyze", files={"file": ("a.jpg", face_photo.read_bytes(), "image/jpeg")})
        assert resp.status_code == 200, resp.text
        assert resp.json()["models_not_voting"] == [{"name": "swin", "reason": SWIN_REASON}]
        resp = c.post("/v1/analyze", files={"file": ("a.jpg", face_photo.read_bytes(), "image/jpeg")},
                      data={"detectors": "swin"})
        assert resp.json()["models_used"] == ["swin"] and resp.json()["models_not_voting"] == []
