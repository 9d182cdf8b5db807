"""Probing and decoding: verified frame counts and rates, real timestamps, exact frames, broken files."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from analysis.errors import MediaError
from video import decode
from video.decode import StreamBroken, open_reader, probe_video

from video_fixtures import (numbered_frames, read_number, truncate, write_clip, write_pyav_clip,
                            zero_avi_rate)


@pytest.fixture(scope="module")
def mp4_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "numbered.mp4", numbered_frames(60), fps=20)


def test_probe_reports_verified_length_rate_and_size(mp4_clip):
    info = probe_video(mp4_clip)
    assert (info.width, info.height) == (320, 240)
    assert info.frame_count == 60 and info.fps == pytest.approx(20.0)
    assert info.duration == pytest.approx(3.0)
    assert info.times[:3].tolist() == pytest.approx([0.0, 0.05, 0.10])
    assert info.backend == "pyav" and info.codec == "mpeg4" and not info.vfr
    assert info.bitrate and info.bitrate > 0 and len(info.sha256) == 64
    meta = info.metadata()
    assert meta["frame_count"] == 60 and meta["fps"] == 20.0 and meta["damaged"] is None


@pytest.mark.parametrize("seek", [True, False])
def test_reader_returns_exactly_the_frames_asked_for(mp4_clip, seek):
    info = probe_video(mp4_clip)
    wanted = [0, 1, 13, 30, 59]   # keyframes every 12 frames: 59 is reached by seeking to 48 when allowed
    reader = open_reader(info, seek=seek)
    frames = list(reader.frames(wanted))
    assert [f.index for f in frames] == wanted
    assert [read_number(f.rgb) for f in frames] == wanted
    assert [f.time for f in frames] == pytest.approx([i / 20 for i in wanted])
    assert reader.seeks == (1 if seek else 0)
    # without seeking every frame is grabbed; the seek skips 31..47 and decodes from keyframe 48 on
    assert reader.grabs == (60 - len(wanted)) - (48 - 31 if seek else 0)


def test_variable_frame_rate_uses_real_timestamps(tmp_path):
    steps = [0.04] * 19 + [0.2] * 20
    times = np.concatenate([[0.0], np.cumsum(steps)])
    path = write_pyav_clip(tmp_path / "vfr.mp4", numbered_frames(40), times=times.tolist())
    info = probe_video(path)
    assert info.vfr and info.frame_count == 40
    assert info.times.tolist() == pytest.approx(times.tolist(), abs=1e-3)
    assert info.fps == pytest.approx(39 / times[-1], rel=1e-3)
    frames = list(open_reader(info).frames([5, 25, 39]))
    assert [read_number(f.rgb) for f in frames] == [5, 25, 39]
    assert [f.time for f in frames] == pytest.approx([times[5], times[25], times[39]], abs=1e-3)


def zero_metadata(monkeypatch) -> None:
    """The container says 0 fps and no frame count (as some broken files do)."""
    real_demux = decode._demux
    monkeypatch.setattr(decode, "_demux", lambda path, size: dataclasses.replace(real_demux(path, size), rate=0.0,
                                                                                  declared=0))


def test_zero_fps_metadata_is_measured_from_timestamps(mp4_clip, monkeypatch):
    zero_metadata(monkeypatch)
    info = probe_video(mp4_clip)
    assert info.fps_reported == 0.0 and info.frame_count_reported is None
    assert info.fps == pytest.approx(20.0) and info.frame_count == 60
    assert any("frame rate is 0" in n for n in info.notes)


def test_avi_with_zero_rate_header_still_opens(tmp_path):
    path = zero_avi_rate(write_clip(tmp_path / "zero.avi", numbered_frames(30), fps=10, fourcc="MJPG"))
    info = probe_video(path)
    assert info.frame_count == 30 and 0.1 <= info.fps <= 1000
    assert len(info.times) == 30 and np.all(np.diff(info.times) > 0)
    frames = list(open_reader(info).frames([0, 29]))
    assert [read_number(f.rgb) for f in frames] == [0, 29]


@pytest.mark.parametrize("content, expected", [
    (b"", "empty file"),
    (b"this is a text file, not a video\n" * 20, "not a readable video"),
])
def test_not_a_video(tmp_path, content, expected):
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=expected):
        probe_video(path)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="file not found"):
        probe_video(tmp_path / "nope.mp4")


def test_mp4_cut_in_half_without_index_is_unreadable(mp4_clip, tmp_path):
    # cv2.VideoWriter puts the index (moov) at the end: half a file has none
    with pytest.raises(MediaError, match="not a readable video") as err:
        probe_video(truncate(mp4_clip, tmp_path / "half.mp4"))
    assert "\n" not in str(err.value)


def test_truncated_file_with_index_first_is_flagged_damaged(tmp_path):
    path = write_pyav_clip(tmp_path / "fast.mp4", numbered_frames(100), faststart=True)
    info = probe_video(truncate(path, tmp_path / "half.mp4"))
    assert info.frame_count < 60 and info.frame_count_reported == 100
    assert info.damaged and "of the 100 frames" in info.damaged


def test_stream_breaking_halfway_raises_stream_broken(tmp_path):
    path = write_pyav_clip(tmp_path / "fast.mp4", numbered_frames(100), faststart=True)
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    data[half:] = np.random.default_rng(0).integers(0, 255, len(data) - half, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    info = probe_video(path)
    assert info.frame_count == 100          # the index is intact: the breakage shows only when decoding
    frames = []
    with pytest.raises(StreamBroken, match="broke at frame") as err:
        for frame in open_reader(info).frames(list(range(0, 100, 5))):
            frames.append(frame)
    assert 20 <= err.value.index < 80
    # frames before the damage are exact (the one at the boundary may show the previous picture)
    assert [read_number(f.rgb) for f in frames[:-1]] == [f.index for f in frames[:-1]] and len(frames) >= 4


def test_reader_seeks_to_the_keyframe_before_a_far_frame(mp4_clip):
    info = probe_video(mp4_clip)
    assert info.frame_count == 60 and info.fps == pytest.approx(20.0)
    assert info.fps_reported == pytest.approx(20.0)    # the container's rate
    reader = open_reader(info)
    frames = list(reader.frames([3, 40, 59]))
    assert [read_number(f.rgb) for f in frames] == [3, 40, 59] and reader.seeks == 1   # 40 via keyframe 36


def test_raw_stream_with_absurd_metadata_is_measured(tmp_path):
    # a raw MPEG-4 stream: the container says 25 fps and has no frame count; the packets say 20 fps, 30 frames
    path = write_pyav_clip(tmp_path / "raw.m4v", numbered_frames(30), fps=20, container_format="m4v")
    info = probe_video(path)
    assert info.frame_count == 30 and info.fps == pytest.approx(20.0) and info.duration == pytest.approx(1.5)
    assert info.fps_reported == pytest.approx(25.0) and any("differs from the measured" in n for n in info.notes)
    assert info.frame_count_reported is None
    frames = list(open_reader(info).frames([0, 7, 29]))
    assert [read_number(f.rgb) for f in frames] == [0, 7, 29]
    assert [f.time for f in frames] == pytest.approx([0, 0.35, 1.45])
