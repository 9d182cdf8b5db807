"""Audio in the core: decoding (bad input included), windows and voice activity, the audio detector's registry and
artifacts kept apart from the face detectors, audio reports, a video's audio section and the fusion; on real files
written here, and on the shared speech when ../shared is present."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from analysis.audio.decode import AudioLimits, NoAudioTrack, load_audio
from analysis.audio.engine import analyze_audio
from analysis.audio.fusion import fuse
from analysis.audio.report import NO_AUDIO_MODEL, NO_AUDIO_TRACK, NO_SPEECH, NOT_READ, SCORED
from analysis.audio.windows import make_windows, voice_activity
from analysis.errors import MediaError
from analysis.media import AUDIO_SUFFIXES, MEDIA_SUFFIXES, sniff_kind
from audio_fixtures import (RATE, add_audio_detector, bogus_duration_wav, long_mp3, speech_like, video_with_sound, write)
from conftest import linked_models
from detectors.artifacts import ArtifactError, load_artifact, load_detectors
from detectors.audio_artifacts import load_audio_artifact, load_audio_detectors
from detectors.audio_registry import audio_detector_names
from detectors.registry import detector_names
from pipeline.dispatch import analyze_path, expand_inputs
from video_fixtures import numbered_frames

@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("audio_files")


@pytest.fixture(scope="module")
def speech_wav(audio_dir) -> Path:
    return write(audio_dir / "speech.wav", speech_like(12.0))


@pytest.fixture(scope="module")
def audio_models_dir(tmp_path_factory, tiny_models_dir) -> Path:
    """The tiny face models plus a random-init audio detector that passes its gate."""
    out = linked_models(tiny_models_dir, tmp_path_factory.mktemp("with_audio"))
    add_audio_detector(out)
    return out


# ------------------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("codec,rate,kwargs", [("pcm_s16le", 16_000, {}), ("libmp3lame", 44_100, {}),
                                               ("aac", 22_050, {"container": "ipod"}), ("flac", 16_000, {}),
                                               ("libopus", 48_000, {})])
def test_formats_decode_to_16k_mono(audio_dir, codec, rate, kwargs):
    t = np.arange(int(rate * 3.0)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = write(audio_dir / f"tone_{codec}", tone, rate, codec, **kwargs)   # no suffix: sniffed by content
    assert sniff_kind(path) == "audio"
    track = load_audio(path)
    x = np.concatenate([s.samples for s in track.segments])
    assert track.source_rate == rate and abs(len(x) / RATE - 3.0) < 0.15
    spectrum = np.abs(np.fft.rfft(x[4000:20000]))
    assert abs(np.argmax(spectrum) * RATE / 16000 - 440) < 5   # still a 440 Hz tone after resampling


def test_eight_channels_and_96k(audio_dir):
    x = speech_like(5.0, 96_000)
    track = load_audio(write(audio_dir / "hi.flac", x, 96_000, "flac"))
    assert track.source_rate == 96_000 and abs(track.decoded_seconds - 5.0) < 0.05
    eight = np.stack([speech_like(5.0, seed=i) for i in range(8)])
    track = load_audio(write(audio_dir / "eight.wav", eight))
    assert track.channels == 8 and abs(track.decoded_seconds - 5.0) < 0.01
    assert np.abs(track.segments[0].samples).max() > 0.01   # downmixed, not dropped


def test_truncated_mp3_keeps_what_decoded(audio_dir):
    full = write(audio_dir / "full.mp3", speech_like(10.0), codec="libmp3lame")
    cut = audio_dir / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    track = load_audio(cut)
    assert 2.0 < track.decoded_seconds < 5.0 and track.duration == pytest.approx(track.decoded_seconds)
    report = analyze_audio(cut, None)
    assert report.error is None and report.status in (SCORED, NO_AUDIO_MODEL, NO_SPEECH)


def test_three_hour_file_is_bounded(audio_dir):
    path = long_mp3(audio_dir / "long.mp3", hours=3.0)
    limits = AudioLimits()
    t0 = time.perf_counter()
    track = load_audio(path, limits)
    took = time.perf_counter() - t0
    assert track.excerpts and track.duration > 2.9 * 3600
    assert len(track.segments) <= limits.max_windows and track.decoded_seconds <= limits.max_windows * 4.0 + 1
    starts = [s.start for s in track.segments]
    assert starts[0] < 60 and starts[-1] > 2.5 * 3600   # spread over the whole file, not its start
    assert took < 20
    windows = make_windows(track, limits)
    assert len(windows) <= limits.max_windows


def test_bogus_duration_header(audio_dir):
    track = load_audio(bogus_duration_wav(audio_dir / "bogus.wav", 5.0))
    assert track.decoded_seconds == pytest.approx(5.0, abs=0.01) and track.duration == pytest.approx(5.0, abs=0.01)


def test_bad_inputs_are_one_line(audio_dir, tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 10)
    with pytest.raises(MediaError) as info:
        load_audio(text)
    assert "\n" not in str(info.value)
    silent_video = video_with_sound(tmp_path / "silent.mp4", numbered_frames(10))
    with pytest.raises(NoAudioTrack, match="has no audio track"):
        load_audio(silent_video)
    report = analyze_audio(text, None)
    assert report.status == NOT_READ and report.error and "\n" not in report.error


# ------------------------------------------------------------------------------------------ voice activity
def test_voice_activity(audio_dir):
    assert voice_activity(speech_like(4.0))[0]
    assert voice_activity(np.zeros(64000, np.float32))[1] == "silence"
    t = np.arange(64000) / RATE
    assert not voice_activity((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))[0]       # steady tone
    noise = np.random.default_rng(0).standard_normal(64000).astype(np.float32) * 0.1
    assert voice_activity(noise)[1] == "noise, not speech"
    # speech, then silence: windows over the silent part are marked and not scored
    x = np.concatenate([speech_like(6.0), np.zeros(8 * RATE, np.float32)])
    windows = make_windows(load_audio(write(audio_dir / "half.wav", x)))
    assert windows[0].speech and not windows[-1].speech and windows[-1].reason == "silence"


# ------------------------------------------------------------------------ the audio detector, kept apart
def test_audio_detector_is_not_a_face_detector(audio_models_dir, tmp_path):
    assert "audio_cnn" in audio_detector_names() and "audio_cnn" not in detector_names()
    loaded, missing = load_detectors(audio_models_dir)        # the face loader never picks it up
    assert "audio_cnn" not in loaded and "audio_cnn" not in missing
    with pytest.raises(ArtifactError, match="audio detector, not a face detector"):
        load_artifact(audio_models_dir / "audio_cnn")
    with pytest.raises(ArtifactError, match="not an audio detector"):
        load_audio_artifact(audio_models_dir / "xception")
    manifest = json.loads((audio_models_dir / "audio_cnn" / "manifest.json").read_text())
    assert manifest["modality"] == "audio" and manifest["audio"]["sample_rate"] == 16_000
    detector = load_audio_artifact(audio_models_dir / "audio_cnn")
    p = detector.predict(np.stack([speech_like(4.0), speech_like(4.0, seed=1)]))
    assert p.shape == (2,) and np.all((p > 0) & (p < 1))


def test_audio_artifact_checksum(audio_models_dir, tmp_path):
    import shutil
    folder = tmp_path / "m"
    shutil.copytree(audio_models_dir / "audio_cnn", folder / "audio_cnn")
    weights = folder / "audio_cnn" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    loaded, missing = load_audio_detectors(folder)
    assert not loaded and "checksum mismatch" in missing["audio_cnn"]


def test_face_listings_ignore_audio(audio_models_dir):
    from analysis.analyzer import Analyzer
    names = [m["name"] for m in Analyzer(audio_models_dir).model_info()]
    assert "audio_cnn" not in names


# ------------------------------------------------------------------------------------------------ reports
def test_audio_report(audio_models_dir, speech_wav):
    report = analyze_audio(speech_wav, audio_models_dir)
    d = report.to_dict()
    assert d["kind"] == "audio" and d["status"] == SCORED and d["error"] is None
    assert d["speech_share"] == 1.0 and 0 < d["probability"] < 1 and d["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
    starts = [w["start"] for w in d["windows"]]
    assert starts == sorted(starts) and starts[1] - starts[0] == pytest.approx(2.0)
    assert all(w["probability"] is not None for w in d["windows"])
    assert d["passes_gate"] and d["models_used"] == ["audio_cnn"]
    json.dumps(d, allow_nan=False)


def test_silence_and_no_model(audio_models_dir, tiny_models_dir, audio_dir):
    silence = write(audio_dir / "silence.wav", np.zeros(5 * RATE, np.float32))
    report = analyze_audio(silence, audio_models_dir)
    assert report.status == NO_SPEECH and report.error is None and report.probability is None
    report = analyze_audio(write(audio_dir / "s2.wav", speech_like(5.0)), tiny_models_dir)
    assert report.status == NO_AUDIO_MODEL and "no audio detector" in report.message


def test_dispatch_and_suffixes(analyzer, speech_wav, tmp_path):
    assert AUDIO_SUFFIXES <= MEDIA_SUFFIXES
    renamed = tmp_path / "speech.jpg"                       # content decides, not the name
    renamed.write_bytes(speech_wav.read_bytes())
    report = analyze_path(renamed, analyzer, name="speech.jpg")
    assert report.kind == "audio" and report.path == "speech.jpg" and report.error is None
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.mp3").write_bytes(b"x")
    assert [p.name for p in expand_inputs([tmp_path / "d"])] == ["a.mp3"]


def test_video_gets_audio_section_and_fusion(analyzer, audio_models_dir, tmp_path):
    from analysis.analyzer import Analyzer
    from video.engine import analyze_video
    from video.sampling import VideoOptions
    frames = numbered_frames(50)
    with_sound = video_with_sound(tmp_path / "talk.mp4", frames, sound=speech_like(2.0))
    silent = video_with_sound(tmp_path / "silent.mp4", frames)
    options = VideoOptions(frames=4)
    report = analyze_video(silent, analyzer, options=options)
    assert report.error is None and report.audio.status == NO_AUDIO_TRACK
    assert report.overall.applied == "faces" and report.overall.voice_probability is None
    with_audio = Analyzer(audio_models_dir)
    report = analyze_video(with_sound, with_audio, options=options)
    d = report.to_dict()
    assert d["audio"]["status"] == SCORED and d["audio"]["windows"][0]["start"] == 0.0
    assert d["overall"]["mode"] == "auto" and d["overall"]["applied"] == "either"   # the gate passes here
    assert d["overall"]["voice_probability"] == d["audio"]["probability"]


def test_fusion_rules():
    assert fuse(0.9, 0.1, "faces", True, 0.5, 0.1).probability == 0.9
    assert fuse(0.9, 0.1, "equal", True, 0.5, 0.1).probability == pytest.approx(0.5)
    adaptive = fuse(0.9, 0.45, "adaptive", True, 0.5, 0.1)
    assert adaptive.weights["faces"] > 0.8 and adaptive.verdict == "FAKE"   # the sure side counts more
    # a real voice never vouches for a swapped face, nor real faces for a cloned voice
    assert fuse(0.9, 0.001, "either", True, 0.5, 0.1).verdict == "FAKE"
    assert fuse(0.9, 0.001, "auto", True, 0.5, 0.1).probability == 0.9
    assert fuse(0.1, 0.95, "either", True, 0.5, 0.1).weights == {"voice": 1.0}
    assert fuse(None, None, "either", True, 0.5, 0.1).probability is None
    off = fuse(0.2, 0.99, "auto", False, 0.5, 0.1)
    assert off.applied == "faces" and off.probability == 0.2 and "quality gate" in off.note
    assert fuse(None, 0.9, "faces", True, 0.5, 0.1).probability is None
    assert fuse(None, 0.9, "equal", True, 0.5, 0.1).probability == 0.9
    with pytest.raises(ValueError):
        fuse(0.5, 0.5, "loudest", True, 0.5, 0.1)


def test_cli_analyze_audio(audio_models_dir, speech_wav, capsys):
    import cli
    assert cli.main(["analyze", str(speech_wav), "--models-dir", str(audio_models_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["kind"] == "audio" and report["status"] == SCORED
    assert cli.main(["analyze", str(speech_wav), "--models-dir", str(audio_models_dir)]) == 0
    out = capsys.readouterr().out
    assert "[audio]" in out and "audio verdict:" in out and "0.00-   4.00 s" in out


# ------------------------------------------------------------------------------------------ shared speech
def test_shared_speech_is_speech(shared_data):
    root = shared_data / "audio"
    with (root / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))[::40]
    speech = [w.speech for r in rows for w in make_windows(load_audio(root / r["path"]))]
    assert np.mean(speech) > 0.9


def test_shipped_audio_detector_on_its_test_speakers(shared_data):
    folder = Path(__file__).resolve().parent.parent / "converted_models" / "audio_cnn"
    if not folder.is_dir():
        pytest.skip("no shipped audio detector")
    detector = load_audio_artifact(folder)
    test_speakers = set(detector.manifest.training["speakers"]["test"])
    root = shared_data / "audio"
    with (root / "manifest.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["group"] in test_speakers]
    rows = rows[::3]
    scores, labels = [], []
    for r in rows:
        windows = [w.samples for w in make_windows(load_audio(root / r["path"])) if w.speech]
        if windows:
            scores.append(float(np.mean(detector.predict(np.stack(windows)))))
            labels.append(r["label"] == "fake")
    from train.metrics import roc_auc
    assert roc_auc(labels, scores) > 0.9


# ------------------------------------------------------------------------------------------ API and scan
def test_api_takes_audio(audio_models_dir, speech_wav, tmp_path):
    from fastapi.testclient import TestClient

    from analysis.analyzer import Analyzer
    from api.app import create_app
    from api.config import ApiConfig
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads")),
                     analyzer=Analyzer(audio_models_dir))
    with TestClient(app) as client:
        resp = client.post("/v1/analyze", files={"file": ("speech.wav", speech_wav.read_bytes(), "audio/wav")},
                           data={"fusion": "equal"})
        assert resp.status_code == 200, resp.text
        report = resp.json()
        assert report["kind"] == "audio" and report["status"] == SCORED and report["settings"]["fusion"] == "equal"
        listed = client.get("/v1/models").json()
        assert [m["name"] for m in listed["audio_models"]] == ["audio_cnn"]
        assert "audio_cnn" not in [m["name"] for m in listed["models"]]
        bad = client.post("/v1/analyze", files={"file": ("speech.wav", speech_wav.read_bytes())},
                          data={"fusion": "loudest"})
        assert bad.status_code == 422 and "unknown fusion" in bad.json()["error"]["message"]


def test_scan_walks_audio(audio_models_dir, speech_wav, tmp_path):
    from analysis.analyzer import Analyzer
    from scan.cli import run_scan
    from test_scan import load, options_for
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "voice.mp3").write_bytes(write(tmp_path / "v.mp3", speech_like(5.0), codec="libmp3lame").read_bytes())
    out = tmp_path / "results.jsonl"
    summary = run_scan(folder, out, options_for(audio_models_dir), analyzer=Analyzer(audio_models_dir),
                       progress=False)
    (record,) = load(out)
    assert summary.analysed == 1 and record["kind"] == "audio" and record["verdict"] in ("FAKE", "REAL", "UNCERTAIN")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_scan_with_ray_writes_audio_results(audio_models_dir, tmp_path, capsys):
    """`scan --engine ray` on a small local Ray (1 CPU): a recording and a clip's sound track get the same audio
    results as the local engine gives."""
    import ray

    from scan.cli import main as scan_main
    from test_scan import assert_same, load
    if ray.is_initialized():
        pytest.skip("another test's Ray is running: --ray-cpus would not apply")
    folder = tmp_path / "media"
    folder.mkdir()
    write(folder / "voice.mp3", speech_like(5.0), codec="libmp3lame")
    video_with_sound(folder / "talk.mp4", numbered_frames(25), sound=speech_like(6.0, seed=3))
    args = ["--models-dir", str(audio_models_dir), "--frames", "4", "--no-progress", "--torch-threads", "1"]
    ray_out, local_out = tmp_path / "ray.jsonl", tmp_path / "local.jsonl"
    rc = scan_main([str(folder), "--out", str(ray_out), "--engine", "ray", "--ray-cpus", "1", "--actors", "1",
                    "--ray-object-store-mb", "128", *args])
    if rc == 1 and "ray could not start" in capsys.readouterr().err:
        pytest.skip("a local Ray cannot start on this machine")
    assert rc == 0 and not ray.is_initialized()   # the scan started its own Ray and shut it down
    by_ray = {Path(r["path"]).name: r for r in load(ray_out)}
    assert set(by_ray) == {"voice.mp3", "talk.mp4"}
    voice, talk = by_ray["voice.mp3"], by_ray["talk.mp4"]
    assert voice["kind"] == "audio" and voice["status"] == SCORED and voice["error"] is None
    assert voice["verdict"] in ("FAKE", "REAL", "UNCERTAIN") and len(voice["windows"]) >= 2
    assert voice["models_used"] == ["audio_cnn"]
    assert talk["kind"] == "video" and talk["audio"]["status"] == SCORED and talk["audio"]["windows"]
    assert talk["overall"] is not None

    assert scan_main([str(folder), "--out", str(local_out), "--workers", "1", *args]) == 0
    for record in load(local_out):
        assert_same(untimed(record), untimed(by_ray[Path(record["path"]).name]), record["path"])


def untimed(record: dict) -> dict:
    """A scan record without what differs between any two runs: timings (the audio section has its own) and stamps."""
    return {k: untimed(v) if isinstance(v, dict) else v for k, v in record.items() if k not in ("timings", "created")}


def test_html_reports_show_the_voice(audio_models_dir, speech_wav, tmp_path):
    from analysis.analyzer import Analyzer
    from visualization.html_report import ReportPictures, render_html_report
    from video.engine import analyze_video
    from video.sampling import VideoOptions
    page = render_html_report(analyze_audio(speech_wav, audio_models_dir), ReportPictures())
    assert 'id="voice"' in page and "Verdict for the voice" in page and "2.00–6.00 s" in page
    clip = video_with_sound(tmp_path / "talk.mp4", numbered_frames(50), sound=speech_like(2.0))
    report = analyze_video(clip, Analyzer(audio_models_dir), options=VideoOptions(frames=4))
    page = render_html_report(report, ReportPictures())
    assert 'id="voice"' in page and 'id="overall"' in page and "fusion auto" in page


@pytest.mark.slow
def test_train_audio_runs_end_to_end(shared_data, tmp_path):
    from train.train_audio import main
    report = main(["--data", str(shared_data / "audio"), "--max-clips", "90", "--epochs", "1", "--cross-epochs", "1",
                   "--variants", "1", "--no-mlflow", "--models-dir", str(tmp_path / "models"),
                   "--out", str(tmp_path / "run")])
    assert set(report["split"]) == {"train", "val", "test"}
    speakers = report["speakers"]
    assert not (set(speakers["train"]) & set(speakers["test"])) and not (set(speakers["val"]) & set(speakers["test"]))
    for key in ("val_auc", "test_auc"):
        assert 0.0 <= report["cnn"][key] <= 1.0 and 0.0 <= report["baseline"][key] <= 1.0
    detector = load_audio_artifact(tmp_path / "models" / "audio_cnn")
    assert "val_auc_by_source" in detector.manifest.metrics
    assert "CC BY-NC-ND 4.0" in (tmp_path / "models" / "audio_cnn" / "MODEL_CARD.md").read_text()
