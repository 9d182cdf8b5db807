"""The dashboard's audio: the Audio check page, and the Video page's voice beside the people and its timeline
under the faces' (same time axis), under streamlit.testing on tiny random models."""
from __future__ import annotations

import json

import pytest

from audio_fixtures import add_audio_detector, speech_like, video_with_sound, write
from conftest import linked_models
from test_app import app, ok, texts
from video_fixtures import two_faces_frames

AUDIO, VIDEO = "pages/5_Audio.py", "pages/2_Video.py"


@pytest.fixture
def audio_env(tiny_models_dir, tmp_path_factory, monkeypatch):
    folder = linked_models(tiny_models_dir, tmp_path_factory.mktemp("app_audio"))
    add_audio_detector(folder)
    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(folder))
    return folder


def test_audio_page(audio_env, tmp_path):
    speech = write(tmp_path / "speech.wav", speech_like(9.0))
    at = app(AUDIO, audio_path=str(speech))
    ok(at)
    body = texts(at)
    assert "speech.wav" in body and "Verdict for the voice" in body and "YourTTS" in body
    view = at.session_state["audio_view"]
    assert view.report.kind == "audio" and view.report.status == "scored" and len(view.report.windows) == 4
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["xaxis"]["title"]["text"] == "time in the recording (seconds)"
    silence = write(tmp_path / "quiet.wav", speech_like(3.0) * 0)
    at = app(AUDIO, audio_path=str(silence))
    ok(at)
    assert any("no speech" in i.value for i in at.info)


def test_audio_page_refuses_a_picture(audio_env, face_photo):
    at = app(AUDIO, audio_path=str(face_photo))
    ok(at)
    assert any("is a picture: analyse it on the Image page" in e.value for e in at.error)


def test_video_page_shows_voice_and_both_timelines(audio_env, tmp_path):
    clip = video_with_sound(tmp_path / "talk.mp4", two_faces_frames(50)[0], sound=speech_like(2.0))
    at = app(VIDEO, video_path=str(clip))
    at.button(key="video_go").click().run()
    ok(at)
    body = texts(at)
    assert "Voice (sound track)" in body and "Overall: faces and voice" in body
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    axes = [c["layout"]["xaxis"].get("range") for c in charts if c["layout"]["xaxis"].get("title", {}).get("text")
            == "time in the video (seconds)"]
    assert len(axes) == 2 and axes[0] == axes[1] and axes[0][0] == 0   # faces and voice on one time axis
    assert any(t.get("name") == "voice" for c in charts for t in c["data"])


def test_image_and_video_pages_send_audio_to_the_audio_page(audio_env, tmp_path):
    speech = write(tmp_path / "speech.wav", speech_like(3.0))
    at = app(VIDEO, video_path=str(speech))
    ok(at)
    assert any("audio without pictures: analyse it on the Audio check page" in e.value for e in at.error)
    assert at.button(key="video_go").disabled
