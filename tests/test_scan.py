"""Batch scanning: input lists, resumability, a bad file among good ones, and both engines agreeing."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from scan.cli import main as scan_main
from scan.cli import run_scan
from scan.inputs import list_inputs, read_results, repair_tail
from scan.local import ScanOptions

from video_fixtures import two_faces_frames, write_clip


class CountingAnalyzer:
    """The real analyzer, counting the images it is asked to analyse."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def analyze_image(self, source, settings=None, *, name=None):
        self.calls.append(name)
        return self._inner.analyze_image(source, settings, name=name)


@pytest.fixture(scope="module")
def media(tmp_path_factory, face_photo) -> Path:
    """Two good images in a tree, a truncated JPEG, a text file named .jpg, a non-media file and a hidden one."""
    root = tmp_path_factory.mktemp("scan_media")
    (root / "people" / "more").mkdir(parents=True)
    shutil.copy(face_photo, root / "people" / "astronaut.jpg")
    Image.open(face_photo).resize((256, 256)).save(root / "people" / "more" / "small.png")
    data = face_photo.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "fake.jpg").write_text("this is not a JPEG at all\n" * 10)
    (root / "notes.txt").write_text("not media")
    (root / ".hidden.jpg").write_bytes(data)
    return root


@pytest.fixture(scope="module")
def media_with_video(tmp_path_factory, media) -> Path:
    root = tmp_path_factory.mktemp("scan_media_video")
    shutil.copytree(media, root, dirs_exist_ok=True)
    frames, _ = two_faces_frames(12, width=320, height=240, face_side=90)
    write_clip(root / "clip.mp4", frames, fps=12)
    return root


def options_for(models_dir: Path) -> ScanOptions:
    return ScanOptions(models_dir=str(models_dir), video={"frames": 4})


def load(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------- inputs
def test_folder_walk_is_sorted_media_only_and_skips_hidden(media):
    paths = [i.path for i in list_inputs(media)]
    assert paths == [str(media / n) for n in ("fake.jpg", "people/astronaut.jpg", "people/more/small.png",
                                               "truncated.jpg")]
    assert str(media / "notes.txt") in [i.path for i in list_inputs(media, all_files=True)]


def test_csv_and_jsonl_lists(media, tmp_path):
    csv_list = tmp_path / "list.csv"
    csv_list.write_text(f"path,label,group\n{media}/people/astronaut.jpg,real,g1\n"
                        f"{media}/truncated.jpg,fake,g2\n{media}/people/astronaut.jpg,real,g1\n")
    items = list_inputs(csv_list)
    assert [i.path for i in items] == [str(media / "people/astronaut.jpg"), str(media / "truncated.jpg")]
    assert items[0].meta == {"label": "real", "group": "g1"}

    (tmp_path / "rel").mkdir()
    shutil.copy(media / "fake.jpg", tmp_path / "rel" / "x.jpg")
    jl = tmp_path / "list.jsonl"
    jl.write_text(json.dumps("rel/x.jpg") + "\n\n" + json.dumps({"path": str(media / "fake.jpg"), "label": 1}) + "\n")
    items = list_inputs(jl)
    assert [i.path for i in items] == [str(tmp_path / "rel" / "x.jpg"), str(media / "fake.jpg")]
    assert items[1].meta == {"label": 1}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": 1}\n')
    with pytest.raises(ValueError, match="line 1: the object has no 'path'"):
        list_inputs(bad)
    with pytest.raises(ValueError, match="no such file or folder"):
        list_inputs(tmp_path / "missing")


def test_repair_tail_cuts_a_partial_last_line(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"path": "a", "verdict": "REAL"}\n{"path": "b", "verd')
    repair_tail(out)
    assert out.read_text() == '{"path": "a", "verdict": "REAL"}\n'
    assert list(read_results(out)) == ["a"]


# ------------------------------------------------------------------------------------------- local engine
def test_scan_bad_files_among_good_ones_and_resume(media, analyzer, tiny_models_dir, tmp_path):
    out = tmp_path / "results.jsonl"
    counting = CountingAnalyzer(analyzer)
    summary = run_scan(media, out, options_for(tiny_models_dir), analyzer=counting, progress=False)
    records = {r["path"]: r for r in load(out)}
    assert len(records) == 4 and summary.analysed == 4 and summary.skipped == 0
    good = [str(media / "people/astronaut.jpg"), str(media / "people/more/small.png")]
    for p in good:
        assert records[p]["error"] is None and records[p]["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
        assert len(records[p]["faces"]) == 1
    assert "truncated" in records[str(media / "truncated.jpg")]["error"]
    assert "not a known media format" in records[str(media / "fake.jpg")]["error"]
    assert summary.counts["errors"] == 2 and sum(summary.counts.values()) == 4
    assert summary.counts == summary.run_counts

    # resume: nothing left to do, nothing analysed again
    counting.calls.clear()
    again = run_scan(media, out, options_for(tiny_models_dir), analyzer=counting, progress=False)
    assert (again.analysed, again.skipped, counting.calls) == (0, 4, [])
    assert again.counts == summary.counts and len(load(out)) == 4

    # a run killed while writing its last line: that file (only) is analysed again
    lines = out.read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])["path"]
    out.write_text("".join(lines[:-1]) + lines[-1][:25])
    resumed = run_scan(media, out, options_for(tiny_models_dir), analyzer=counting, progress=False)
    assert resumed.analysed == 1 and resumed.skipped == 3
    assert {r["path"] for r in load(out)} == set(records) and len(load(out)) == 4
    # the cut line's file is analysed again, through analyze_image unless it is no media at all
    assert counting.calls == ([] if last == str(media / "fake.jpg") else [last])

    # --retry-errors analyses the two bad files again (they are still bad)
    retried = run_scan(media, out, options_for(tiny_models_dir), analyzer=counting, progress=False,
                       retry_errors=True)
    assert retried.analysed == 2 and retried.run_counts["errors"] == 2 and retried.counts == summary.counts


def test_csv_meta_travels_into_the_results(media, analyzer, tiny_models_dir, tmp_path):
    csv_list = tmp_path / "list.csv"
    csv_list.write_text(f"path,label\n{media}/people/astronaut.jpg,real\n{media}/missing.jpg,fake\n")
    out = tmp_path / "r.jsonl"
    summary = run_scan(csv_list, out, options_for(tiny_models_dir), analyzer=analyzer, progress=False)
    records = {r["path"]: r for r in load(out)}
    assert records[str(media / "people/astronaut.jpg")]["meta"] == {"label": "real"}
    assert "file not found" in records[str(media / "missing.jpg")]["error"]
    assert summary.run_counts["errors"] == 1


def test_cli_usage_errors(tmp_path, capsys):
    assert scan_main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o.jsonl"), "--no-progress"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert scan_main([str(tmp_path), "--out", str(tmp_path / "o.parquet"), "--no-progress"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_ray_helpers_without_starting_ray(tmp_path, media):
    from scan.ray_engine import _readable_locally, for_workers

    good, bad = _readable_locally([str(media / "fake.jpg"), str(tmp_path / "gone.jpg"), str(media),
                                   "s3://bucket/x.jpg"])
    assert good == [str(media / "fake.jpg"), "s3://bucket/x.jpg"]
    assert [b["error"].split(":")[0] for b in bad] == ["file not found", "is a folder, not a file"]
    inside = ScanOptions(models_dir=str(tmp_path / "proj" / "converted_models"))
    assert for_workers(inside, str(tmp_path / "proj")).models_dir == "converted_models"
    assert for_workers(inside, None).models_dir == inside.models_dir
    assert for_workers(inside, str(tmp_path / "other")).models_dir == inside.models_dir


# ------------------------------------------------------------------------------------ engines agree
def comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("timings", "created")}


def assert_same(a, b, where="report"):
    """Equal, except floats within 1e-4 (thread counts may change the last bits of a sum)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{where}: {a!r} != {b!r}"
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4), f"{where}: {a} != {b}"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from scan.ray_engine import RayUnavailable, start_ray

    try:
        started = start_ray(num_cpus=2, object_store_mb=256)
    except RayUnavailable as exc:
        pytest.skip(f"a local Ray cannot start on this machine: {exc}")
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_local_processes_and_ray_give_the_same_reports(media_with_video, tiny_models_dir, tmp_path, local_ray):
    args = ["--models-dir", str(tiny_models_dir), "--frames", "4", "--no-progress", "--torch-threads", "1"]
    local_out, ray_out = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert scan_main([str(media_with_video), "--out", str(local_out), "--workers", "2", *args]) == 0
    assert scan_main([str(media_with_video), "--out", str(ray_out), "--engine", "ray", "--actors", "2", *args]) == 0
    local = {r["path"]: comparable(r) for r in load(local_out)}
    by_ray = {r["path"]: comparable(r) for r in load(ray_out)}
    assert len(local) == 5 and set(local) == set(by_ray)
    for path in local:
        assert local[path]["verdict"] == by_ray[path]["verdict"], path
        assert_same(local[path], by_ray[path], path)
    video = local[str(media_with_video / "clip.mp4")]
    assert video["kind"] == "video" and len(video["frames"]) == 4 and video["error"] is None
    assert sum(1 for r in local.values() if r["error"]) == 2

    # Parquet written by the Ray workers holds the same records, and resumes like JSON lines
    from scan.ray_engine import read_parquet_results

    pq_out = tmp_path / "results.parquet"
    assert scan_main([str(media_with_video), "--out", str(pq_out), "--engine", "ray", "--actors", "1", *args]) == 0
    from_parquet = read_parquet_results(pq_out)
    assert set(from_parquet) == set(local)
    for path in local:
        assert_same(comparable(from_parquet[path]), local[path], path)
    summary = run_scan(media_with_video, pq_out, engine="ray", progress=False)
    assert summary.analysed == 0 and summary.skipped == 5


def test_threshold_and_band_default_to_the_operating_point(tmp_path, capsys):
    import argparse

    from scan.cli import add_subcommand, options_from_args

    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["scan", str(tmp_path), "--out", str(tmp_path / "o.jsonl")])
    settings = options_from_args(args).settings
    assert settings["threshold"] is None and settings["band"] is None   # each worker's analyzer fills them in
    args = parser.parse_args(["scan", str(tmp_path), "--out", str(tmp_path / "o.jsonl"), "--threshold", "0.7"])
    assert options_from_args(args).settings["threshold"] == 0.7
    assert scan_main([str(tmp_path), "--out", str(tmp_path / "o.jsonl"), "--no-progress", "--threshold", "1.5"]) == 2
    assert "threshold must be between 0 and 1, got 1.5" in capsys.readouterr().err
