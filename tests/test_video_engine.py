"""The whole video pipeline on generated clips with the tiny random-weight detectors."""
from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

from analysis.ensemble import verdict_for
from analysis.report import FaceResult
from analysis.settings import AnalysisSettings
from video import decode
from video.aggregate import summarize
from video.engine import analyze_video
from video.report import VideoReport
from video.sampling import VideoOptions

from video_fixtures import (blank_frames, numbered_frames, truncate, two_faces_frames, write_clip,
                            write_pyav_clip)

N_FRAMES = 8


@pytest.fixture(scope="module")
def two_faces_clip(tmp_path_factory):
    frames, _ = two_faces_frames(24)
    return write_clip(tmp_path_factory.mktemp("clips") / "two_faces.mp4", frames, fps=12)


@pytest.fixture(scope="module")
def two_faces_report(two_faces_clip, analyzer):
    calls = []
    real = analyzer.score_crops

    def spy(crops, names, mirror=False):
        calls.append((len(crops), tuple(names), mirror))
        return real(crops, names, mirror=mirror)

    analyzer.score_crops = spy
    try:
        report = analyze_video(two_faces_clip, analyzer, options=VideoOptions(frames=N_FRAMES, batch_frames=4))
    finally:
        del analyzer.score_crops
    return report, calls


def test_two_faces_give_two_tracks_with_their_own_verdicts(two_faces_report, analyzer):
    report, _ = two_faces_report
    assert report.error is None and report.message is None and report.complete
    assert report.kind == "video" and len(report.frames) == N_FRAMES
    assert [f.index for f in report.frames] == [0, 3, 7, 10, 13, 16, 20, 23]
    assert [f.time for f in report.frames] == pytest.approx([i / 12 for i in (0, 3, 7, 10, 13, 16, 20, 23)], abs=1e-4)
    assert all(len(f.faces) == 2 for f in report.frames)
    assert len(report.tracks) == 2
    top = next(t for t in report.tracks if report.frames[0].faces[[fc.track for fc in report.frames[0].faces]
                                                                  .index(t.id)].box[1] < 180)
    for frame in report.frames:               # the upper face always belongs to the same track
        upper = min(frame.faces, key=lambda f: f.box[1])
        assert upper.track == top.id
    names = sorted(analyzer.detectors)
    for track in report.tracks:
        faces = [f for fr in report.frames for f in fr.faces if f.track == track.id]
        assert track.frames == [fr.index for fr in report.frames]
        assert sorted(track.models) == names
        for n in names:
            assert track.models[n] == pytest.approx(np.mean([f.models[n] for f in faces]), abs=1e-5)
        expected = summarize([f.probability for f in faces], 0.5)
        assert track.probability == pytest.approx(expected.probability, abs=1e-5)
        assert track.fake_share == pytest.approx(expected.fake_share)
        assert track.verdict == verdict_for(track.probability, 0.5, 0.1)
    assert report.probability == pytest.approx(max(t.probability for t in report.tracks))
    assert report.verdict == verdict_for(report.probability, 0.5, 0.1)
    for frame in report.frames:
        assert frame.probability == max(f.probability for f in frame.faces)


def test_faces_are_image_report_faces_plus_track(two_faces_report, analyzer):
    report, _ = two_faces_report
    face = report.frames[0].faces[0]
    assert isinstance(face, FaceResult)
    entry = report.to_dict()["frames"][0]["faces"][0]
    assert set(entry) == set(FaceResult.__dataclass_fields__) | {"track", "sharpness"}
    assert entry["sharpness"] > 0 and sum(entry["votes"].values()) == len(analyzer.detectors)
    assert entry["weights"] and sum(entry["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(entry["models"]) == set(analyzer.detectors) and all(0 <= p <= 1 for p in entry["models"].values())
    assert face.size > 40 and len(face.landmarks) == 5


def test_each_detector_scores_all_faces_of_a_batch_in_one_call(two_faces_report, analyzer):
    _, calls = two_faces_report
    # 8 frames in batches of 4, two faces each: 2 batches x 5 detectors, 8 crops per call, not mirrored by default
    assert len(calls) == 2 * len(analyzer.detectors)
    assert all(n == 8 and len(names) == 1 and not mirror for n, names, mirror in calls)


def test_to_dict_is_json_and_keeps_images_out(two_faces_report):
    report, _ = two_faces_report
    data = report.to_dict()
    text = json.dumps(data)
    assert '"thumbnail"' not in text and '"crop_jpeg"' not in text and '"thumb_scale"' not in text
    assert data["kind"] == "video" and len(data["frames"]) == N_FRAMES and len(data["tracks"]) == 2
    meta = data["metadata"]
    assert (meta["width"], meta["height"], meta["fps"], meta["frame_count"]) == (480, 360, 12.0, 24)
    assert meta["duration"] == pytest.approx(2.0) and meta["codec"] == "mpeg4" and meta["bitrate"] > 0
    assert data["sha256"] and data["quality"]["width"] == 480
    assert data["summary"]["frames_analysed"] == N_FRAMES and data["summary"]["tracks"] == 2
    assert data["decisive_track"] in (0, 1) and data["decision"].startswith(f"Person {data['decisive_track'] + 1} (")
    for track in data["tracks"]:
        assert {"importance", "major", "minor_reason", "votes", "median_size", "detection_score"} <= set(track)
    assert data["tracks"][0]["importance"] >= data["tracks"][1]["importance"]    # numbered by importance
    assert {"probe", "decode", "faces", "ensemble", "total"} <= set(data["timings"])
    assert data["options"]["frames"] == N_FRAMES


def test_thumbnails_and_crops_for_the_dashboard(two_faces_report):
    report, _ = two_faces_report
    frame = report.frames[2]
    thumb = frame.thumbnail_rgb()
    assert thumb.shape == (240, 320, 3) and frame.thumb_scale == pytest.approx(320 / 480)
    box = frame.thumbnail_boxes()[0]
    assert box == pytest.approx([v * 320 / 480 for v in frame.faces[0].box])
    crop = frame.faces[0].crop_rgb()
    assert crop.shape[0] == crop.shape[1] and crop.shape[0] <= 160
    assert len(frame.thumbnail) < 40_000          # JPEG bytes, not frames, are kept


def test_progress_is_monotonic_to_one_and_cancel_returns_partial(two_faces_clip, analyzer):
    seen = []
    cancel = threading.Event()

    def progress(value, stage):
        seen.append(value)
        if stage.startswith("analysed"):
            cancel.set()                      # cancel after the first batch

    report = analyze_video(two_faces_clip, analyzer, options=VideoOptions(frames=N_FRAMES, batch_frames=2),
                           progress=progress, cancel=cancel)
    assert seen == sorted(seen) and seen[0] == 0.0 and seen[-1] == 1.0
    assert report.cancelled and not report.complete and report.message.startswith("cancelled")
    assert report.error is None and 2 <= len(report.frames) < N_FRAMES
    assert all(len(f.faces) == 2 for f in report.frames)


def test_cancel_between_detectors_drops_the_unfinished_batch(two_faces_clip, analyzer):
    cancel = threading.Event()
    stages = []

    def progress(value, stage):
        stages.append(stage)
        if stage.startswith("scoring") and sum(s.startswith("scoring") for s in stages) == 2:
            cancel.set()                      # while the first batch is between two detectors

    report = analyze_video(two_faces_clip, analyzer, options=VideoOptions(frames=N_FRAMES, batch_frames=4),
                           progress=progress, cancel=cancel)
    assert report.cancelled and report.frames == [] and report.message == "cancelled"
    assert report.probability is None and stages[-1] == "cancelled"


def test_progress_without_cancel_reaches_one(tmp_path, analyzer):
    path = write_clip(tmp_path / "blank.mp4", blank_frames(12), fps=10)
    seen = []
    report = analyze_video(path, analyzer, options=VideoOptions(frames=6, batch_frames=2),
                           progress=lambda v, s: seen.append((v, s)))
    values = [v for v, _ in seen]
    assert values == sorted(values) and values[-1] == 1.0 and len(values) >= 5
    assert seen[-1][1] == "done" and not report.cancelled


def test_no_face_in_any_frame(tmp_path, analyzer):
    path = write_clip(tmp_path / "blank.mp4", blank_frames(12), fps=10)
    report = analyze_video(path, analyzer, options=VideoOptions(frames=6))
    assert report.error is None and report.message == "no face found in any of the 6 analysed frames"
    assert len(report.frames) == 6 and all(not f.faces for f in report.frames)
    assert report.tracks == [] and report.probability is None and report.verdict is None
    json.dumps(report.to_dict())


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"just some text pretending to be a video\n" * 50, "not a readable video"),
])
def test_bad_files_give_an_error_report(tmp_path, analyzer, content, expected):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    report = analyze_video(path, analyzer)
    assert isinstance(report, VideoReport) and expected in report.error and "\n" not in report.error
    assert report.frames == [] and report.probability is None and not report.complete
    json.dumps(report.to_dict())


def test_mp4_cut_in_half(two_faces_clip, tmp_path, analyzer):
    report = analyze_video(truncate(two_faces_clip, tmp_path / "half.mp4"), analyzer)
    assert "not a readable video" in report.error and report.frames == []


def test_truncated_file_with_index_first_gives_partial_result(tmp_path, analyzer):
    frames, _ = two_faces_frames(40)
    path = write_pyav_clip(tmp_path / "fast.mp4", frames, faststart=True)
    report = analyze_video(truncate(path, tmp_path / "half.mp4"), analyzer, options=VideoOptions(frames=4))
    assert "truncated or damaged" in report.error and "of the 40 frames" in report.error
    assert report.message.startswith("partial result") and not report.complete
    assert len(report.frames) == 4 and report.frames[-1].index < 30
    assert report.probability is not None and len(report.tracks) == 2


def test_stream_breaking_halfway_keeps_the_frames_before(tmp_path, analyzer):
    frames, _ = two_faces_frames(40)
    path = write_pyav_clip(tmp_path / "fast.mp4", frames, faststart=True)
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = np.random.default_rng(1).integers(0, 255, len(data) - half, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    report = analyze_video(path, analyzer, options=VideoOptions(frames=10, batch_frames=3))
    assert "broke at frame" in report.error and "\n" not in report.error
    assert report.message.startswith("partial result:") and not report.complete
    assert 2 <= len(report.frames) < 10
    assert report.probability is not None and report.verdict is not None


def test_zero_fps_metadata(tmp_path, analyzer, monkeypatch):
    path = write_clip(tmp_path / "clip.avi", numbered_frames(30), fps=10, fourcc="MJPG")
    real_demux = decode._demux   # the container says 0 fps
    monkeypatch.setattr(decode, "_demux", lambda p, size: dataclasses.replace(real_demux(p, size), rate=0.0))
    report = analyze_video(path, analyzer, options=VideoOptions(rate=2.0))
    assert report.error is None and report.metadata["fps"] == 10.0 and report.metadata["fps_reported"] == 0.0
    assert [f.index for f in report.frames] == [0, 5, 10, 15, 20, 25]
    assert [f.time for f in report.frames] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5])


def test_time_range_and_every(two_faces_clip, analyzer):
    report = analyze_video(two_faces_clip, analyzer, options=VideoOptions(every=5, start=0.5, end=1.5,
                                                                          keep_thumbnails=False))
    assert [f.index for f in report.frames] == [6, 11, 16]
    assert all(f.thumbnail is None and f.faces[0].crop_jpeg is None for f in report.frames)


def test_unknown_detector_is_an_error_report(two_faces_clip, analyzer):
    report = analyze_video(two_faces_clip, analyzer, AnalysisSettings(detectors=["nope"]))
    assert "unknown detector" in report.error


def test_invalid_options_raise(two_faces_clip, analyzer):
    with pytest.raises(ValueError):
        analyze_video(two_faces_clip, analyzer, options=VideoOptions(every=2, rate=3.0))


def test_dispatch_routes_videos_here(two_faces_clip, analyzer):
    from pipeline.dispatch import analyze_path
    report = analyze_path(two_faces_clip, analyzer, video_options=VideoOptions(frames=6))
    assert isinstance(report, VideoReport) and len(report.frames) == 6 and len(report.tracks) == 2


def test_real_clip_from_shared_data(shared_data, analyzer):
    clip = shared_data / "videos" / "519.mp4"
    if not clip.is_file():
        pytest.skip("519.mp4 is not in the shared data")
    report = analyze_video(clip, analyzer, options=VideoOptions(frames=4, batch_frames=4))
    meta = report.metadata
    assert report.error is None and (meta["width"], meta["height"], meta["frame_count"]) == (640, 480, 751)
    assert meta["fps"] == 25.0 and meta["duration"] == pytest.approx(30.04) and meta["codec"] == "h264"
    assert [f.index for f in report.frames] == [0, 250, 500, 750]
    assert [f.time for f in report.frames] == pytest.approx([0, 10, 20, 30])
    assert len(report.tracks) == 1 and all(len(f.faces) == 1 for f in report.frames)   # one presenter
    assert report.summary["seeks"] >= 1      # keyframes every 250 frames: reached by seeking, not decoding


# ------------------------------------------------------------------------------------- who decides the video
def _anchor_clip_report(frames: int = 16) -> VideoReport:
    """The news-anchor clip as the engine would have measured it (720p): the anchor on every frame at 0.15, a
    face on a poster behind him on frames 0-2 at 0.9 (seen first), a blurred passer-by on frame 9 at 0.88."""
    from video.report import FrameFace, FrameResult

    def face(box, p, score, sharp):
        side = int(max(box[2] - box[0], box[3] - box[1]))
        models = {"a": p, "b": p, "c": p}
        return FrameFace(box=list(box), score=score, models=models, probability=p,
                         verdict=verdict_for(p, 0.5, 0.1), size=side, sharpness=sharp)

    report = VideoReport(path="anchor.mp4", metadata={"width": 1280, "height": 720})
    for i in range(frames):
        faces = []
        if i < 3:
            faces.append(face((1000, 80, 1070, 150), 0.9, 0.97, 80.0))          # the poster, top right
        faces.append(face((540, 200, 740, 400), 0.15, 0.999, 200.0))            # the anchor
        if i == 9:
            faces.append(face((100, 600, 126, 626), 0.88, 0.91, 4.0))           # the passer-by
        report.frames.append(FrameResult(index=i * 10, time=i * 0.4, faces=faces))
    return report


def test_the_anchor_decides_the_video_not_the_poster_or_the_passer_by():
    from video.engine import _aggregate

    report = _anchor_clip_report()
    _aggregate(report, AnalysisSettings(threshold=0.5, band=0.1), len(report.frames))
    anchor, poster, passer = report.tracks
    assert [t.id for t in report.tracks] == [0, 1, 2]                     # numbered by importance, not appearance
    assert len(anchor.frames) == 16 and len(poster.frames) == 3 and len(passer.frames) == 1
    assert all(f.track == 0 for fr in report.frames for f in fr.faces if f.box[0] == 540)
    assert anchor.major and not poster.major and not passer.major
    assert anchor.decisive and not poster.decisive and not passer.decisive
    assert poster.verdict == "FAKE" and passer.verdict == "FAKE"
    assert report.verdict == "REAL" and report.probability == pytest.approx(0.15) and report.decisive_track == 0
    assert report.decision == ("Person 1 (seen in 16 of 16 frames, large face) decides the video; person 2 "
                               "(3 frames) and person 3 (1 frame, small face, uncertain detection) are minor and do "
                               "not decide it.")
    assert poster.minor_reason == "seen in only 3 of 16 frames"
    assert passer.minor_reason.startswith("seen in only 1 of 16 frames; small face (26 px")
    assert anchor.importance > poster.importance > passer.importance
    assert anchor.median_size == 200 and anchor.relative_size == pytest.approx(200 / 720, abs=1e-4)
    assert anchor.detection_score == pytest.approx(0.999) and anchor.sharpness == 200.0
    assert anchor.votes == {"fake": 0, "real": 3, "abstain": 0} and poster.votes == {"fake": 3, "real": 0, "abstain": 0}
    data = json.loads(json.dumps(report.to_dict()))
    assert data["decisive_track"] == 0 and data["decision"] == report.decision
    assert data["tracks"][1]["major"] is False and data["tracks"][1]["minor_reason"] == poster.minor_reason
    assert "deciding_track" not in data["summary"]


def test_without_the_anchor_the_most_suspicious_minor_face_decides():
    from video.engine import _aggregate

    report = _anchor_clip_report()
    for frame in report.frames:      # the anchor's face is lost: only the tiny passer-by and small uncertain ones
        frame.faces = [f for f in frame.faces if f.box[0] != 540]
        for f in frame.faces:
            f.score = 0.93
    _aggregate(report, AnalysisSettings(threshold=0.5, band=0.1), len(report.frames))
    assert len(report.tracks) == 2 and not any(t.major for t in report.tracks)
    assert all(t.decisive for t in report.tracks)
    assert report.probability == pytest.approx(0.9) and report.verdict == "FAKE"
    decider = report.track(report.decisive_track)
    assert len(decider.frames) == 3
    assert report.decision.startswith("No person is seen long, large or clearly enough")
