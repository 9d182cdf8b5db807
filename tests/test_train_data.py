"""Data layouts, manifests, grouping, grouped splits and balancing (train/data.py)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from train.data import (DataError, Sample, SplitFractions, assign_splits, check_no_leak, default_group, discover,
                        limit_samples, parse_data_arg, parse_label, read_index, sample_weights, summarize,
                        video_group, write_index)
from train.synthetic import write_dataset


def _counts(samples):
    return Counter((s.split, s.label) for s in samples)


def test_flat_layout(tmp_path):
    root = write_dataset(tmp_path / "faces", "flat", n=6)
    samples = discover(root)
    assert len(samples) == 12
    assert Counter(s.label for s in samples) == {0: 6, 1: 6}
    assert {s.source for s in samples} == {"faces"}
    assert all(s.split is None and s.kind == "image" for s in samples)
    assert len({s.group for s in samples}) == 12  # every image is its own group


def test_split_layout_any_case(tmp_path):
    root = write_dataset(tmp_path / "d", "splits", n=10)
    (root / "train").rename(root / "TRAIN")
    (root / "TRAIN" / "fake").rename(root / "TRAIN" / "FaKe")
    samples = discover(root)
    assert _counts(samples) == {("train", 0): 6, ("train", 1): 6, ("val", 0): 2, ("val", 1): 2,
                                ("test", 0): 2, ("test", 1): 2}


def test_kaggle_layout(tmp_path):
    root = write_dataset(tmp_path / "kaggle", "kaggle", n=10)
    assert sorted(p.name for p in root.iterdir()) == ["Test", "Train", "Validation"]
    samples = discover(root)
    assert {s.split for s in samples} == {"train", "val", "test"}
    assert sum(s.split == "val" and s.label == 1 for s in samples) == 2


def test_kaggle_train_test_only_gets_val_carved_from_train(tmp_path):
    root = write_dataset(tmp_path / "k", "kaggle", n=40)
    for f in (root / "Validation").rglob("*.png"):
        f.unlink()
    import shutil
    shutil.rmtree(root / "Validation")
    samples = assign_splits(discover(root), SplitFractions(0.25, 0.15), seed=1)
    given_test = {s.path for s in discover(root) if s.split == "test"}
    assert {s.path for s in samples if s.split == "test"} == given_test  # the given test split is untouched
    val = [s for s in samples if s.split == "val"]
    assert 0 < len(val) < sum(s.split in ("train", "val") for s in samples)
    assert all("/Train/" in s.path for s in val)


def test_csv_manifest_labels_and_groups(tmp_path):
    root = write_dataset(tmp_path / "m", "csv", n=12, group_size=3)
    rows = (root / "manifest.csv").read_text().splitlines()
    assert {r.split(",")[1] for r in rows[1:]} == {"0", "1", "real", "fake"}  # both label styles
    samples = discover(root)
    assert len(samples) == 24 and Counter(s.label for s in samples) == {0: 12, 1: 12}
    assert len({s.group for s in samples}) == 8
    direct = discover(root / "manifest.csv", source="named")
    assert {s.source for s in direct} == {"named"} and len(direct) == 24


def test_manifest_errors_are_one_line(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.png,maybe\n")
    with pytest.raises(DataError, match="line 2: unknown label 'maybe'"):
        discover(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\nnope.png,fake\n")
    with pytest.raises(DataError, match="1 listed file"):
        discover(missing)
    headless = tmp_path / "headless.csv"
    headless.write_text("a.png,fake\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        discover(headless)
    with pytest.raises(DataError, match="no data layout"):
        discover(tmp_path)


def test_labels_json_skips_unknown_and_groups_ffpp(tmp_path):
    for name in ("519.mp4", "519_515.mp4", "750_743.mp4", "abc.mp4", "x.mp4"):
        (tmp_path / name).write_bytes(b"\x00\x00\x00\x18ftypisom")
    (tmp_path / "labels.json").write_text(json.dumps({
        "519.mp4": {"label": "real", "source": "ffpp"}, "519_515.mp4": {"label": "fake"},
        "750_743.mp4": "fake", "abc.mp4": "FAKE", "x.mp4": {"label": "unknown"}}))
    samples = {Path(s.path).name: s for s in discover(tmp_path)}
    assert set(samples) == {"519.mp4", "519_515.mp4", "750_743.mp4", "abc.mp4"}
    assert samples["519.mp4"].group == samples["519_515.mp4"].group == "519"
    assert samples["750_743.mp4"].group == "750" and samples["abc.mp4"].group == "abc"
    assert all(s.kind == "video" for s in samples.values())


def test_group_rules():
    assert video_group("519_515") == "519" and video_group("519") == "519" and video_group("a_b") == "a_b"
    import re
    root = Path("/d")
    assert default_group(Path("/d/real/x.png"), "image", "src", root) == "src/real/x.png"
    assert default_group(Path("/d/fake/vid7_frame12.png"), "image", "src", root,
                         re.compile(r"^(vid\d+)_")) == "vid7"
    assert parse_label("REAL") == 0 and parse_label("1") == 1 and parse_label("1.0") == 1
    assert parse_label("unknown") is None and parse_label("") is None


def test_grouped_splits_never_leak(tmp_path):
    samples = [Sample(path=f"/x/{g}_{k}.png", label=int(g % 3 == 0), group=f"video{g}", source="s")
               for g in range(60) for k in range(5)]
    out = assign_splits(samples, SplitFractions(0.2, 0.2), seed=3)
    assert check_no_leak(out) == {}
    sizes = Counter(s.split for s in out)
    assert 0.1 < sizes["test"] / len(out) < 0.3 and 0.1 < sizes["val"] / len(out) < 0.3
    assert {s.label for s in out if s.split == "test"} == {0, 1}  # stratified: both labels held out
    assert [s.split for s in assign_splits(samples, SplitFractions(0.2, 0.2), seed=3)] == [s.split for s in out]


def test_groups_shared_across_sources_stay_together():
    a = [Sample(path=f"/a/{g}.png", label=g % 2, group=f"g{g}", source="a") for g in range(40)]
    b = [Sample(path=f"/b/{g}.mp4", label=g % 2, group=f"g{g}", source="b", kind="video") for g in range(0, 40, 4)]
    out = assign_splits(a + b, seed=0)
    assert check_no_leak(out) == {}


def test_few_groups_fallback_keeps_groups_whole():
    samples = [Sample(path=f"/v/{g}_{k}.png", label=g % 2, group=f"v{g}", source="videos")
               for g in range(4) for k in range(16)]
    out = assign_splits(samples, seed=0)
    assert check_no_leak(out) == {}
    assert Counter(s.split for s in out) == {"train": 32, "val": 16, "test": 16}


def test_sample_weights_balance_labels_within_sources():
    samples = ([Sample(path=f"/p/{i}", label=int(i < 100), group=str(i), source="photos") for i in range(400)]
               + [Sample(path=f"/c/{i}", label=i % 2, group=f"c{i}", source="crops") for i in range(10_000)])
    w = sample_weights(samples, balance="equal")
    assert w.sum() == pytest.approx(1.0)
    mass = Counter()
    for s, x in zip(samples, w):
        mass[(s.source, s.label)] += x
    for key in mass:
        assert mass[key] == pytest.approx(0.25)
    w = sample_weights(samples, {"photos": 3.0}, balance="sqrt")
    photo_share = sum(x for s, x in zip(samples, w) if s.source == "photos")
    assert photo_share == pytest.approx(3 * 20 / (3 * 20 + 100))
    with pytest.raises(DataError, match="unknown source"):
        sample_weights(samples, {"nope": 1.0})


def test_index_roundtrip_and_limit(tmp_path):
    samples = [Sample(path=str(tmp_path / "crops" / f"{i}.png"), label=i % 2, group=f"g{i // 2}", source="s",
                      split="train", kind="video", original=f"/v/{i // 2}.mp4", frame=i, score=0.99,
                      landmarks="[[1.0, 2.0], [3.0, 4.0], [5.0, 1.0]]") for i in range(10)]
    path = write_index(tmp_path / "index.csv", samples)
    assert "crops/0.png" in path.read_text()  # relative paths: the cache can move
    back = read_index(path)
    assert [(s.path, s.label, s.group, s.frame, s.original) for s in back] == \
        [(s.path, s.label, s.group, s.frame, s.original) for s in samples]
    assert back[0].landmark_array().shape == (3, 2)
    assert discover(tmp_path)[3].media == "/v/1.mp4"
    limited = limit_samples(back, 4)
    assert len(limited) == 4 and {s.label for s in limited} == {0, 1}
    assert summarize(back)["splits"]["train"] == {"n": 10, "real": 5, "fake": 5, "groups": 5}


def test_parse_data_arg(tmp_path):
    assert parse_data_arg(f"ffhq={tmp_path}") == ("ffhq", tmp_path)
    assert parse_data_arg(str(tmp_path)) == (None, tmp_path)


def test_shared_data_layouts(shared_data):
    """The three shared layouts: DIR/{real,fake}, a manifest with groups, and videos with labels.json."""
    ffhq = discover(shared_data / "faces" / "ffhq_stylegan2")
    assert Counter(s.label for s in ffhq) == {0: 503, 1: 169}
    dfdc = discover(shared_data / "faces" / "dfdc")
    assert len(dfdc) == 10_000 and len({s.group for s in dfdc}) < 10_000
    videos = {Path(s.path).name: s for s in discover(shared_data / "videos")}
    assert "lynaeydofd.mp4" not in videos and len(videos) == 5  # the 'unknown' clip is skipped
    assert videos["519.mp4"].group == videos["519_515.mp4"].group == "519"
