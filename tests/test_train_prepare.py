"""The face-crop cache (train/prepare.py): same FaceFinder and margin as inference, images and videos, skips,
grouping, resumability."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from train.data import DataError, check_no_leak, read_index
from train.prepare import PrepareConfig, landmarks_in_crop, prepare, read_video_frames
from train.synthetic import texture


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def face_dataset(tmp_path_factory, astronaut_rgb) -> Path:
    """real/: the astronaut photo (a face) and a texture (no face); fake/: a mirrored astronaut and two videos of
    her (FaceForensics++ names, one group)."""
    root = tmp_path_factory.mktemp("faces")
    for d in ("real", "fake"):
        (root / d).mkdir()
    small = cv2.resize(astronaut_rgb, (256, 256), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(root / "real" / "astronaut.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / "real" / "texture.png"), texture(np.random.default_rng(0), 128))
    cv2.imwrite(str(root / "fake" / "mirrored.jpg"), cv2.cvtColor(small[:, ::-1], cv2.COLOR_RGB2BGR))
    frames = [np.roll(small, shift, axis=1) for shift in range(0, 40, 2)]  # 20 frames, the face drifts
    _write_video(root / "fake" / "007.mp4", frames)
    _write_video(root / "fake" / "007_009.mp4", frames[::-1])
    return root


def test_read_video_frames_evenly_spaced(face_dataset):
    frames = read_video_frames(face_dataset / "fake" / "007.mp4", 4)
    assert [i for i, _ in frames] == [0, 6, 13, 19]
    assert all(f.shape == (256, 256, 3) and f.dtype == np.uint8 for _, f in frames)


def test_landmarks_map_into_the_crop():
    # box 100x100 at (50, 50), margin 0.3 -> square side 130 from (35, 35); resized to 260 (x2)
    lm = landmarks_in_crop([[100, 100], [35, 35]], (50, 50, 150, 150), 0.3, 260)
    assert lm == [[130.0, 130.0], [0.0, 0.0]]
    assert landmarks_in_crop(None, (0, 0, 1, 1), 0.3, 10) is None


def test_prepare_images_and_videos(face_dataset, tmp_path):
    from analysis.faces import FaceFinder

    out = tmp_path / "cache"
    result = prepare([str(face_dataset)], out, PrepareConfig(size=96, frames=3), progress=False)
    rows = list(csv.DictReader(result.index.open()))
    crops = read_index(result.index)
    originals = {Path(s.original).name for s in crops}
    assert originals == {"astronaut.png", "mirrored.jpg", "007.mp4", "007_009.mp4"}
    assert result.no_face == 1 and "texture.png" in (out / "skipped.csv").read_text()
    videos = [s for s in crops if s.kind == "video"]
    assert len(videos) == 6 and {s.frame for s in videos} == {0, 10, 19}
    assert {s.group for s in videos} == {"007"}  # the FaceForensics++ pair shares one group
    assert check_no_leak(crops) == {}
    for s in crops:
        img = cv2.imread(s.path)
        assert img.shape == (96, 96, 3)
        assert 0.9 <= s.score <= 1.0 and s.landmark_array().shape == (5, 2)
    assert {r["label"] for r in rows} == {"0", "1"} and all(not Path(r["path"]).is_absolute() for r in rows)

    # the crop is the inference crop: FaceFinder with the app's margin, resized like detectors.preprocess
    from detectors.preprocess import resize_rgb
    rgb = cv2.cvtColor(cv2.imread(str(face_dataset / "real" / "astronaut.png")), cv2.COLOR_BGR2RGB)
    face = max(FaceFinder().detect(rgb), key=lambda f: f.size)
    cached = next(s for s in crops if s.original.endswith("astronaut.png"))
    expected = resize_rgb(face.crop, 96)
    got = cv2.cvtColor(cv2.imread(cached.path), cv2.COLOR_BGR2RGB)
    assert np.array_equal(got, expected)  # PNG: lossless
    eyes = cached.landmark_array()[:2]
    assert np.all(np.abs(eyes[:, 1] - eyes[:, 1].mean()) < 10) and eyes[0, 0] < eyes[1, 0]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["crops"]["total"] == len(crops) and summary["no_face"] == 1

    # resumable: a second run crops nothing again; a changed setting is refused
    mtimes = {s.path: Path(s.path).stat().st_mtime_ns for s in crops}
    again = prepare([str(face_dataset)], out, PrepareConfig(size=96, frames=3), progress=False)
    assert again.reused == 5 and again.crops == len(crops)
    assert {p: Path(p).stat().st_mtime_ns for p in mtimes} == mtimes
    with pytest.raises(DataError, match="other settings"):
        prepare([str(face_dataset)], out, PrepareConfig(size=128, frames=3), progress=False)

    # a deleted crop is redone
    Path(cached.path).unlink()
    third = prepare([str(face_dataset)], out, PrepareConfig(size=96, frames=3), progress=False)
    assert third.reused == 4 and Path(cached.path).is_file()


def test_keep_no_face_keeps_the_whole_image(face_dataset, tmp_path):
    result = prepare([f"named={face_dataset / 'real'}/../"], tmp_path / "c",
                     PrepareConfig(size=64, frames=2, format="jpg", keep_no_face=True), progress=False)
    crops = read_index(result.index)
    whole = [s for s in crops if s.original.endswith("texture.png")]
    assert len(whole) == 1 and np.isnan(whole[0].score) and whole[0].path.endswith(".jpg")
    assert {s.source for s in crops} == {"named"} and result.no_face == 0


def test_prepare_cli(face_dataset, tmp_path, capsys):
    from train.prepare import main
    assert main(["--data", str(face_dataset), "--out", str(tmp_path / "cli"), "--size", "64", "--frames", "2",
                 "--no-progress", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert f"index: {tmp_path / 'cli' / 'index.csv'}" in out
    assert main(["--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
