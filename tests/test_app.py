"""The dashboard's pages under streamlit.testing (AppTest), on tiny random models: every page and control, real
uploads, bad uploads, no weights at all, and the private temporary folder being gone afterwards."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ui.exports import report_html
from ui.uploads import TEMP_PREFIX, MediaInput, materialized, private_workdir

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 240
IMAGE, VIDEO, FEATURES, MODELS = "pages/1_Image.py", "pages/2_Video.py", "pages/3_Feature_maps.py", "pages/4_Models.py"
NAMES = ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]


@pytest.fixture
def models_env(tiny_models_dir, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(tiny_models_dir))
    return tiny_models_dir


def app(page: str = "app.py", **state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def images(at) -> list:
    return at.get("image")


def texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [cap for img in images(at) for cap in img.captions]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(parts)


def chart_text(at) -> str:
    """The Plotly specs (JSON, non-ASCII as is) of every chart on the page."""
    import json

    return "\n".join(json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart"))


def ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def temp_folders() -> set[str]:
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith(TEMP_PREFIX)}


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> Path:
    from tests.e2e.test_browser import face_clip as make

    return make(tmp_path_factory.mktemp("clips") / "face.mp4", frames=24, fps=8.0)


@pytest.fixture(scope="module")
def no_face_png(tmp_path_factory) -> Path:
    ramp = np.linspace(0, 255, 320 * 240, dtype=np.float32).reshape(240, 320)
    path = tmp_path_factory.mktemp("noface") / "sky.png"
    Image.fromarray(np.stack([ramp, ramp, np.full_like(ramp, 200)], -1).astype(np.uint8)).save(path)
    return path


# ------------------------------------------------------------------------------------------------ uploads on disk
def test_private_workdir_is_private_and_always_removed():
    with private_workdir() as folder:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        kept = folder
    assert not kept.exists()
    with pytest.raises(RuntimeError):
        with private_workdir() as folder:
            kept = folder
            raise RuntimeError("analysis failed")
    assert not kept.exists()
    item = MediaInput(name="../../etc/passwd", data=b"secret")
    with materialized(item) as path:
        assert path.parent.name.startswith(TEMP_PREFIX) and path.name == "passwd"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == b"secret"
    assert not path.exists() and not path.parent.exists()


# ------------------------------------------------------------------------------------------------------ pages
def test_home_page(models_env):
    at = app()
    ok(at)
    assert "Deepfake check" in at.title[0].value
    body = texts(at)
    assert "How to read a result" in body and "LIKELY FAKE" in body and "never as proof" in body
    assert "5 of 5 detectors loaded" in body
    assert len(at.sidebar.slider) == 3 and at.sidebar.selectbox[0].value == "weighted"


def test_models_page_shows_every_manifest(models_env):
    at = app(MODELS)
    ok(at)
    table = at.dataframe[0].value
    assert list(table["Detector"]) == NAMES
    assert set(table["Loaded"]) == {"✓ yes"}
    assert set(table["Input size"]) == {"64 px"}
    assert list(table["Training data"]) == ["random initialisation (tests)"] * 5
    assert table["Held-out AUC"].between(0.5, 0.75).all()
    assert set(table["Votes by default"]) == {"✓ yes"}      # the tiny detectors pass the quality gate
    assert len(at.expander) == 5 + 1        # one per detector, plus the sidebar's face-detection settings
    assert "5 of 5 detectors loaded" in texts(at)
    assert "Default decision threshold 0.500 ± band 0.100**: built-in defaults — no ensemble.json" in texts(at)


def test_without_weights_the_app_says_what_is_missing_and_still_runs(tmp_path, monkeypatch, face_photo):
    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(tmp_path))
    at = app(MODELS)
    ok(at)
    assert "No detector weights were found" in texts(at)
    assert set(at.dataframe[0].value["Loaded"]) == {"✗ no"}
    codes = "\n".join(c.value for c in at.code)
    assert all(f"python -m train.train_{n}" in codes for n in NAMES) and "train.convert" in codes
    at = app(IMAGE, image_paths=[str(face_photo)])
    ok(at)
    assert any("was not scored: no detector weights are loaded" in e.value for e in at.error)
    assert "Input quality" in texts(at)
    at = app(FEATURES)
    ok(at)
    assert "need at least one detector" in texts(at)


def test_image_upload_shows_faces_verdict_quality_and_downloads(models_env, face_photo):
    before = temp_folders()
    at = app(IMAGE)
    at.file_uploader(key="image_uploads").upload("astronaut.jpg", face_photo.read_bytes(), "image/jpeg").run()
    ok(at)
    body = texts(at)
    assert "astronaut.jpg" in body and "Verdict for this picture" in body and "1 face found" in body
    assert "Input quality" in body and "Input SHA-256" in body
    assert len(images(at)) == 2, "the picture and the face crop should be shown"
    assert [b.proto.label for b in at.get("download_button")] == ["Download this report (JSON)",
                                                                   "Download report (HTML)"]
    assert len(at.get("plotly_chart")) == 1
    view = next(iter(at.session_state["image_views"].values()))
    report = view.report
    assert report.error is None and len(report.faces) == 1 and len(view.crops) == 1
    page = report_html(report, view.picture, view.crops).decode("utf-8")    # what the HTML button downloads
    assert page.count("data:image/jpeg;base64,") == 2 and "astronaut.jpg" in page
    assert sorted(report.models_used) == sorted(NAMES) and set(report.model_checksums) == set(NAMES)
    assert len(report.sha256) == 64 and "total" in report.timings and report.quality["jpeg_quality"]
    assert view.picture.shape[2] == 3
    assert temp_folders() == before, "the upload was not deleted"


def test_sidebar_controls_drive_the_analysis(models_env, face_photo):
    from analysis.ensemble import verdict_for

    at = app(IMAGE, image_paths=[str(face_photo)])
    ok(at)

    def report():
        return at.session_state["image_views"][at.session_state["image_current"][0]].report

    at.sidebar.slider(key="sb_threshold").set_value(0.3).run()
    at.sidebar.slider(key="sb_band").set_value(0.25).run()
    ok(at)
    r = report()
    assert r.settings["threshold"] == 0.3 and r.settings["band"] == 0.25
    assert r.verdict == verdict_for(r.probability, 0.3, 0.25)
    assert "threshold 0.30 ± 0.25" in texts(at)
    body = texts(at)
    assert "probability of fake" in body and "the threshold does not change it" in body   # agreement, explained
    at.sidebar.selectbox(key="sb_strategy").set_value("majority").run()
    assert report().settings["strategy"] == "majority" and "combined by majority" in texts(at)
    votes = report().faces[0].votes
    assert sum(votes.values()) == 5
    body = texts(at)
    assert f"{votes['fake']} of 5 detectors say fake" in body and "probability of fake" not in body
    assert "Majority vote" in chart_text(at)
    at.sidebar.pills(key="sb_detectors").set_value(["swin", "xception"]).run()
    ok(at)
    assert sorted(report().models_used) == ["swin", "xception"]
    assert set(report().faces[0].models) == {"swin", "xception"}
    at.sidebar.pills(key="sb_detectors").set_value([]).run()
    assert "Select at least one detector" in texts(at)
    at.sidebar.button(key="sb_reset").click().run()
    ok(at)
    assert at.sidebar.slider(key="sb_threshold").value == 0.5 and report().settings["threshold"] == 0.5
    assert sorted(report().models_used) == sorted(NAMES)
    plain = report().faces[0].logits
    assert report().settings["mirror"] is False
    at.sidebar.checkbox(key="sb_mirror").check().run()
    ok(at)
    assert report().settings["mirror"] is True and report().faces[0].logits != plain
    at.sidebar.checkbox(key="sb_mirror").uncheck().run()
    at.sidebar.slider(key="sb_min_face").set_value(150).run()
    assert report().settings["min_face_size"] == 150 and "No face found" in texts(at)   # the face is 110 px
    at.sidebar.checkbox(key="sb_fallback").check().run()
    ok(at)
    r = report()
    assert r.whole_image and len(r.faces) == 1 and r.verdict
    assert r.message == "no face found; the whole picture was scored instead (whole-picture fallback is on)"
    body = texts(at)
    assert "0 faces (whole picture scored)" in body and "1 face found" not in body
    assert "score the whole picture" not in body        # no advice to turn on what is already on
    assert "Whole picture" in body and "Face 1" not in body


def test_quality_gate_in_the_models_page_sidebar_and_image_view(tiny_models_dir, tmp_path, monkeypatch,
                                                                face_photo):
    import json
    import shutil

    models = tmp_path / "gated"
    shutil.copytree(tiny_models_dir, models)
    manifest = json.loads((models / "swin" / "manifest.json").read_text())
    manifest["metrics"]["val_auc_by_source"] = {"dfdc": 0.501, "ffhq_stylegan2": 0.9}
    (models / "swin" / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(models))
    reason = "validation AUC below 0.75 on dfdc (0.501)"

    at = app(MODELS)
    ok(at)
    votes = dict(zip(at.dataframe[0].value["Detector"], at.dataframe[0].value["Votes by default"]))
    assert votes.pop("swin") == f"✗ no: {reason}" and set(votes.values()) == {"✓ yes"}
    assert "Quality gate" in texts(at)

    at = app(IMAGE, image_paths=[str(face_photo)])
    ok(at)
    voting = [n for n in NAMES if n != "swin"]
    assert at.sidebar.pills(key="sb_detectors").value == voting      # the default selection: the voting ones
    report = at.session_state["image_views"][at.session_state["image_current"][0]].report
    assert report.models_used == voting and report.models_not_voting == [{"name": "swin", "reason": reason}]
    assert f"Not voting (quality gate): swin ({reason})" in texts(at)
    spec = chart_text(at)
    assert "swin · not voting" in spec and f"not voting: {reason}" in spec and "weight " in spec
    assert "Grey: detectors the quality gate keeps out of the vote" in texts(at)
    at.sidebar.pills(key="sb_detectors").set_value(NAMES).run()       # a user can still include it
    ok(at)
    report = at.session_state["image_views"][at.session_state["image_current"][0]].report
    assert sorted(report.models_used) == sorted(NAMES) and report.models_not_voting == []
    assert "Not voting" not in texts(at)


def test_settings_survive_a_page_switch(models_env):
    at = app()
    at.switch_page(IMAGE).run()
    at.sidebar.slider(key="sb_threshold").set_value(0.35).run()
    at.sidebar.pills(key="sb_detectors").set_value(["swin"]).run()
    at.switch_page(MODELS).run()
    ok(at)
    assert at.sidebar.slider(key="sb_threshold").value == 0.35
    assert at.sidebar.pills(key="sb_detectors").value == ["swin"]


def test_bad_uploads_give_one_line_messages(models_env, no_face_png, face_photo):
    before = temp_folders()
    at = app(IMAGE)
    broken = face_photo.read_bytes()[:2000]
    at.file_uploader(key="image_uploads").set_value([
        ("notes.jpg", b"just some text, not a picture\n" * 20, "image/jpeg"),
        ("broken.jpg", broken, "image/jpeg"),
        ("sky.png", no_face_png.read_bytes(), "image/png"),
    ]).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert len(errors) == 2 and any("notes.jpg" in e for e in errors) and any("broken.jpg" in e for e in errors)
    assert all("Traceback" not in e and len(e.splitlines()) == 1 for e in errors)
    assert any("No face found" in w.value for w in at.warning)
    assert "Overview" in texts(at) and at.dataframe[0].value.shape[0] == 3
    assert temp_folders() == before


def test_video_page_analyses_scrubs_and_exports(models_env, face_clip):
    before = temp_folders()
    at = app("app.py")
    at.switch_page(VIDEO).run()
    at.file_uploader(key="video_upload").upload("face.mp4", face_clip.read_bytes(), "video/mp4").run()
    ok(at)
    assert "3.0 s" in texts(at) and "24 frames" in texts(at)
    at.slider(key="video_frames").set_value(10).run()
    assert "About 10 frames will be analysed" in texts(at)
    at.button(key="video_go").click().run()
    ok(at)
    body = texts(at)
    assert "Verdict for the video" in body and "People in the video" in body and "Person 1" in body
    report = at.session_state["video_view"].report
    assert report.decisive_track == 0 and report.decision.startswith("Person 1 (seen in ")
    assert report.decision in body and "The line follows Person 1, who decides the video." in body
    assert report.error is None and len(report.frames) == 10 and len(report.tracks) == 1
    assert len(report.sha256) == 64 and report.quality and report.timings["total"] > 0
    assert at.metric[0].value == "10"
    frame_slider = at.select_slider(key="video_frame")
    assert frame_slider.value == 0 and "Frame 0 at 0.00 s" in texts(at)
    frame_slider.set_value(5).run()
    ok(at)
    shown = report.frames[5]
    assert f"Frame {shown.index} at {shown.time:.2f} s" in texts(at)
    assert [b.proto.label for b in at.get("download_button")] == [
        "Download report (JSON)", "Download report (HTML)", "Download per-frame scores (CSV)"]
    assert "Person 1" in report_html(report).decode("utf-8")
    assert temp_folders() == before

    # options: a sampling rate inside a time range
    at.radio(key="video_mode").set_value("rate").run()
    at.number_input(key="video_rate").set_value(2.0).run()
    at.checkbox(key="video_part").check().run()
    at.slider(key="video_range_3.0").set_value((0.5, 2.0)).run()
    assert "About 3 frames will be analysed" in texts(at)
    at.button(key="video_go").click().run()
    ok(at)
    report = at.session_state["video_view"].report
    assert report.options["rate"] == 2.0 and report.options["start"] == 0.5 and report.options["end"] == 2.0
    assert 2 <= len(report.frames) <= 4 and all(0.5 <= f.time < 2.0 for f in report.frames)

    # a frame of this video on the feature-map page
    at.switch_page(FEATURES).run()
    ok(at)
    assert at.radio(key="fm_source").value == "video"
    assert "frame at" in texts(at)


def test_video_page_rejects_bad_input(models_env, tmp_path, face_photo, face_clip):
    """A file already known to be unreadable cannot be analysed: the button is disabled and says why."""
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    at = app(VIDEO, video_path=str(text))
    ok(at)
    assert any("notes.mp4 is not a video this tool can read" in e.value for e in at.error)
    go = at.button(key="video_go")
    assert go.disabled and "not a video" in go.help
    at = app(VIDEO, video_path=str(face_photo))
    ok(at)
    assert any("is a picture: analyse it on the Image page" in e.value for e in at.error)
    assert at.button(key="video_go").disabled
    at = app(VIDEO)
    at.file_uploader(key="video_upload").upload("empty.mp4", b"", "video/mp4").run()
    ok(at)
    assert any("empty.mp4 is empty (0 bytes)" in e.value for e in at.error) and at.button(key="video_go").disabled
    at = app(VIDEO, video_path=str(face_clip))
    ok(at)
    assert not at.error and not at.button(key="video_go").disabled


def test_feature_page_controls(models_env, face_photo, no_face_png):
    at = app("app.py")
    at.switch_page(IMAGE)
    at.session_state["image_paths"] = [str(face_photo)]
    at.run()
    at.switch_page(FEATURES).run()
    ok(at)
    assert at.radio(key="fm_source").value == "image"
    captions = [cap for img in images(at) for cap in img.captions]
    assert any("most active of" in c for c in captions)
    assert all(any(c.startswith(f"{n} · ") and "fake" in c for c in captions) for n in NAMES), captions
    at.selectbox(key="fm_detector").set_value("swin").run()
    at.selectbox(key="fm_layer").set_value("layers.0").run()
    ok(at)
    assert "swin · layers.0" in texts(at)
    at.select_slider(key="fm_count").set_value(36).run()
    assert "the 36 most active of 96 channels, each 16×16" in texts(at)   # Swin's channels-last made NCHW
    at.selectbox(key="fm_detector").set_value("cnn_transformer").run()
    assert at.selectbox(key="fm_layer").options[-1] == "5. encoder.layers.3"
    at.radio(key="fm_target").set_value("real").run()
    at.selectbox(key="fm_method").set_value("HiResCAM").run()
    ok(at)
    cams = [v for v in at.session_state["fm_cam_cache"].values()]
    assert any(all(r.target == "real" and r.method == "HiResCAM" for r in res.values()) for res, _ in cams)
    at.radio(key="fm_source").set_value("sample").run()
    ok(at)
    assert "sample photo" in texts(at)
    at.radio(key="fm_source").set_value("upload").run()
    at.file_uploader(key="fm_upload").upload("sky.png", no_face_png.read_bytes(), "image/png").run()
    ok(at)
    assert any("no face found" in w.value for w in at.warning)


def test_models_page_with_a_trained_style_manifest(tmp_path, monkeypatch):
    """One detector with the manifest a training run writes (nested metrics, nulls), four missing."""
    import torch

    from detectors.artifacts import save_artifact
    from detectors.registry import build_model, model_kwargs_for

    torch.manual_seed(0)
    kwargs = model_kwargs_for("cnn_transformer", 64)
    training = {"data": {"total": 1200, "sources": {"ffhq_stylegan2": {}, "dfdc": {}}, "splits": {}},
                "args": {"epochs": 3}}
    metrics = {"temperature": 1.7, "val_auc": 0.93, "test_auc": 0.88, "test_eer": None, "test_n": 240,
               "test_ece_before": 0.1, "test_ece_after": 0.03, "test_auc_by_source": {"ffhq_stylegan2": 0.91,
                                                                                       "dfdc": None}}
    save_artifact(build_model("cnn_transformer", **kwargs), "cnn_transformer", tmp_path, input_size=64,
                  model_kwargs=kwargs, temperature=1.7, threshold=0.5, training=training, metrics=metrics,
                  run_id="abc123")
    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(tmp_path))
    at = app(MODELS)
    ok(at)
    table = at.dataframe[0].value.set_index("Detector")
    assert table.loc["cnn_transformer", "Loaded"] == "✓ yes" and table.loc["swin", "Loaded"] == "✗ no"
    assert table.loc["cnn_transformer", "Held-out AUC"] == pytest.approx(0.88)
    assert table.loc["cnn_transformer", "Training data"] == "ffhq_stylegan2, dfdc (1,200 faces)"
    body = texts(at)
    assert "expected calibration error 0.100 → 0.030" in body and "4 of 5 detectors are not available" in body
    assert "run abc123" in body
    metric_rows = [df.value for df in at.dataframe if list(df.value.columns) == ["metric", "value"]]
    assert metric_rows and dict(zip(metric_rows[0]["metric"], metric_rows[0]["value"]))["test_eer"] == "n/a"


def test_sliders_start_at_the_validated_operating_point(op_models_dir, monkeypatch, face_photo):
    from conftest import OP_BAND, OP_THRESHOLD

    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(op_models_dir))
    at = app(IMAGE, image_paths=[str(face_photo)])
    ok(at)

    def report():
        return at.session_state["image_views"][at.session_state["image_current"][0]].report

    threshold = at.sidebar.slider(key="sb_threshold")
    assert threshold.value == OP_THRESHOLD and at.sidebar.slider(key="sb_band").value == OP_BAND
    assert "validated operating point" in threshold.help and "at most 5%" in threshold.help
    assert "the models' validated operating point" in texts(at)
    assert (report().settings["threshold"], report().settings["band"]) == (OP_THRESHOLD, OP_BAND)
    assert report().operating_point["source"] == "validation"
    # another strategy: the operating point no longer applies, the untouched sliders follow
    at.sidebar.selectbox(key="sb_strategy").set_value("majority").run()
    ok(at)
    assert at.sidebar.slider(key="sb_threshold").value == 0.5 and report().settings["threshold"] == 0.5
    assert report().operating_point["source"] == "default"
    at.sidebar.selectbox(key="sb_strategy").set_value("weighted").run()
    at.sidebar.slider(key="sb_threshold").set_value(0.4).run()    # a moved slider wins
    ok(at)
    assert (report().settings["threshold"], report().settings["band"]) == (0.4, OP_BAND)
    assert report().operating_point["explicit"] == ["threshold"]

    models = app(MODELS)
    ok(models)
    assert "Default decision threshold 0.720 ± band 0.050**: the validated operating point" in texts(models)
    assert "false-positive rate 4.0% (800 reals), true-positive rate 61.0% (700 fakes)" in texts(models)


def test_video_page_names_the_decisive_person_and_the_timeline_follows_them(models_env, tmp_path):
    from ui.image_view import short_id
    from ui.video_view import ANY_PERSON, PERSON_KEY
    from video_fixtures import two_faces_frames, write_clip

    frames, _ = two_faces_frames(24)
    clip = write_clip(tmp_path / "two.mp4", frames, fps=12)
    at = app(VIDEO, video_path=str(clip))
    at.slider(key="video_frames").set_value(10).run()
    at.button(key="video_go").click().run()
    ok(at)
    view = at.session_state["video_view"]
    report = view.report
    assert len(report.tracks) == 2 and report.decisive_track is not None
    decider = f"Person {report.decisive_track + 1}"
    body = texts(at)
    assert report.decision in body and f"{decider} · decides the video" in body
    whose = at.selectbox(key=f"{PERSON_KEY}_{short_id(view.key)}")
    assert whose.value == report.decisive_track                      # the timeline follows the decider by default
    assert whose.options[-1] == ANY_PERSON and f"{decider} (decides the video)" in whose.options
    assert f"The line follows {decider}, who decides the video." in body

    def ensemble_line():
        import json

        for chart in at.get("plotly_chart"):
            traces = json.loads(chart.proto.spec)["data"]
            if any(t.get("name") == "Ensemble" and t.get("mode") == "lines+markers" for t in traces):
                return [t for t in traces if t.get("name") == "Ensemble"][0]["y"]

    follows = [next((f.probability for f in fr.faces if f.track == report.decisive_track), None)
               for fr in report.frames]
    assert ensemble_line() == pytest.approx(follows)
    whose.select_index(len(whose.options) - 1).run()                 # the old view stays available, named as such
    ok(at)
    assert at.selectbox(key=f"{PERSON_KEY}_{short_id(view.key)}").value is None
    assert "The line follows" not in texts(at)
    assert ensemble_line() == pytest.approx([max(f.probability for f in fr.faces) for fr in report.frames])


# ------------------------------------------------------------------------- video state, live settings, heatmaps
def _shown(at):
    """The Video page's result as shown: the analysis re-combined under the sidebar's settings, or the analysis."""
    shown = at.session_state["video_shown"][2].view if "video_shown" in at.session_state else None
    view = at.session_state["video_view"]
    return shown if shown is not None and shown.key == view.key and shown.settings != view.settings else view


def _badge_verdict(at) -> str:
    """The verdict on the page's big badge (the first one)."""
    import re

    return next(re.search(r'data-verdict="([A-Z]+)"', m.value).group(1) for m in at.markdown
                if "verdict-badge" in m.value and "Verdict for the video" in m.value)


def test_video_page_clears_a_stale_result_and_applies_settings_live(models_env, face_clip, tmp_path):
    from analysis.ensemble import verdict_for
    from video_fixtures import two_faces_frames, write_clip

    at = app(VIDEO, video_path=str(face_clip))
    at.sidebar.pills(key="sb_detectors").set_value(["swin", "xception"]).run()
    at.slider(key="video_frames").set_value(10).run()
    at.button(key="video_go").click().run()
    ok(at)
    analysed = at.session_state["video_view"].report
    p = analysed.probability
    assert analysed.models_used == ["swin", "xception"] and 0.1 < p < 0.9

    # threshold and band re-apply to the stored scores at once: no "press Analyse video again"
    for threshold, verdict in ((max(0.05, p - 0.04), "FAKE"), (min(0.95, p + 0.04), "REAL")):
        at.sidebar.slider(key="sb_band").set_value(0.0).run()
        at.sidebar.slider(key="sb_threshold").set_value(round(threshold, 2)).run()
        ok(at)
        shown = _shown(at).report
        assert shown.settings["threshold"] == round(threshold, 2) and shown.settings["band"] == 0.0
        assert shown.verdict == verdict == verdict_for(shown.probability, round(threshold, 2), 0.0)
        assert _badge_verdict(at) == verdict
        assert "Analyse video** again" not in texts(at) and "no new analysis is needed" in texts(at)
    assert at.session_state["video_view"].report is analysed        # the analysis itself is kept as it was

    # a strategy: votes, recomputed from the stored per-detector scores
    at.sidebar.selectbox(key="sb_strategy").set_value("majority").run()
    ok(at)
    shown = _shown(at).report
    assert shown.settings["strategy"] == "majority" and "of 2 detectors say fake" in texts(at)
    # fewer detectors: live; a detector that was not run: a new analysis is needed, said precisely
    at.sidebar.pills(key="sb_detectors").set_value(["swin"]).run()
    ok(at)
    assert _shown(at).report.models_used == ["swin"] and "not run" not in texts(at)
    at.sidebar.pills(key="sb_detectors").set_value(["swin", "efficientnet_b3"]).run()
    ok(at)
    assert _shown(at).report.models_used == ["swin"]
    assert ("efficientnet_b3 was not run when this video was analysed: press **Analyse video** to include it. "
            "Until then the result uses swin.") in texts(at)
    # face finding and the frames are the analysis's: those need a new one
    at.sidebar.slider(key="sb_min_face").set_value(60).run()
    assert "The smallest face to analyse changed since this analysis" in texts(at)
    assert "still uses 40 px" in texts(at)
    at.slider(key="video_frames").set_value(12).run()
    assert "The frames to analyse changed" in texts(at)

    # another file: the old verdict leaves the page
    other = write_clip(tmp_path / "other.mp4", two_faces_frames(12)[0], fps=12)
    at.session_state["video_path"] = str(other)
    at.run()
    ok(at)
    assert "video_view" not in at.session_state
    assert "Verdict for the video" not in texts(at) and "then press **Analyse video**" in texts(at)
    assert "face.mp4" not in texts(at)


def test_video_page_without_any_face_says_so(models_env, tmp_path):
    from video_fixtures import blank_frames, write_clip

    clip = write_clip(tmp_path / "noise.mp4", blank_frames(12), fps=12)
    at = app(VIDEO, video_path=str(clip))
    at.slider(key="video_frames").set_value(10).run()
    at.button(key="video_go").click().run()
    ok(at)
    assert "No face was found in any of the 10 analysed frames" in texts(at)
    assert not at.get("plotly_chart") and "Frame by frame" not in texts(at)
    assert not at.get("select_slider") and not images(at)
    assert "Input quality" in texts(at)
    at.sidebar.slider(key="sb_min_face").set_value(20).run()     # what the message suggests needs a new analysis
    ok(at)
    assert "The smallest face to analyse changed since this analysis" in texts(at)


def test_heatmap_over_the_photo_and_the_video_frame(models_env, face_photo, face_clip):
    from visualization.heatmaps import CAM_SIDE

    at = app(IMAGE, image_paths=[str(face_photo)])
    ok(at)
    view = at.session_state["image_views"][at.session_state["image_current"][0]]
    assert "heatmap_cache" not in at.session_state            # nothing computed while the toggle is off
    boxed = images(at)[0].proto.imgs[0].url
    toggle = next(t for t in at.toggle if t.key.startswith("heat-on-"))
    toggle.set_value(True).run()
    ok(at)
    cache = at.session_state["heatmap_cache"]
    assert sorted(name for _, name in cache) == sorted(NAMES)          # the ensemble needs every detector's
    assert all(v.shape == (CAM_SIDE, CAM_SIDE) for v in cache.values())
    assert images(at)[0].proto.imgs[0].url != boxed
    assert "Heatmap of all detectors, each weighted by its share" in texts(at)
    at.selectbox(key=next(s.key for s in at.selectbox if s.key and s.key.startswith("heat-of-"))).set_value(
        "swin").run()
    ok(at)
    assert "Heatmap of swin." in texts(at) and len(at.session_state["heatmap_cache"]) == 5   # from the cache
    assert view.report.faces

    at = app(VIDEO, video_path=str(face_clip))
    at.slider(key="video_frames").set_value(10).run()
    at.button(key="video_go").click().run()
    ok(at)
    frame_picture = [i for i in images(at) if any(c.startswith("Frame ") for c in i.captions)][0].proto.imgs[0].url
    next(t for t in at.toggle if t.key.startswith("heat-on-")).set_value(True).run()
    ok(at)
    after = [i for i in images(at) if any(c.startswith("Frame ") for c in i.captions)][0].proto.imgs[0].url
    assert after != frame_picture and "Heatmap of all detectors" in texts(at)


# ------------------------------------------------------------------------------------------------ smaller items
def test_image_page_names_the_users_file_and_rounds_like_the_badges(models_env, face_photo):
    at = app(IMAGE)
    at.file_uploader(key="image_uploads").set_value([
        ("empty.jpg", b"", "image/jpeg"), ("astronaut.jpg", face_photo.read_bytes(), "image/jpeg")]).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert any("empty file (0 bytes): empty.jpg" in e for e in errors), errors
    assert not any(tempfile.gettempdir() in e or TEMP_PREFIX in e for e in errors), errors
    table = at.dataframe[0].value.set_index("Picture")
    p = next(v.report.probability for v in at.session_state["image_views"].values() if v.name == "astronaut.jpg")
    shown = table.loc["astronaut.jpg", "Fake probability"]
    assert shown == int(f"{p * 100:.0f}") and f"{int(shown)}% probability of fake" in texts(at)
    assert "Notes" in table.columns


def test_sidebar_strategy_names_fit_and_models_table_puts_the_verdict_columns_first(models_env):
    from ui.sidebar import STRATEGY_LABELS

    at = app(MODELS)
    ok(at)
    strategy = at.sidebar.selectbox(key="sb_strategy")
    assert strategy.options == [STRATEGY_LABELS[s] for s in STRATEGY_LABELS]
    assert max(len(label) for label in strategy.options) <= 24          # the sidebar shows ~26 characters
    assert all(f"**{label.split(' (')[0]}**" in strategy.help for label in strategy.options)
    columns = list(at.dataframe[0].value.columns)
    assert columns[:5] == ["Detector", "Loaded", "Votes by default", "Held-out AUC", "Ensemble weight"]
