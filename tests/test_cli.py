"""The command line: exit codes, JSON Lines, folders, bad files among good ones, `models`."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args, models_dir=None):
    cmd = [sys.executable, str(ROOT / "cli.py"), *map(str, args)]
    env = None
    if models_dir is not None:
        import os
        env = {**os.environ, "DEEPFAKE_MODELS_DIR": str(models_dir)}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, face_photo):
    d = tmp_path_factory.mktemp("batch")
    (d / "good.jpg").write_bytes(face_photo.read_bytes())
    (d / "broken.jpg").write_bytes(face_photo.read_bytes()[:2000])
    (d / "notes.png").write_text("not an image")
    (d / "ignored.txt").write_text("not media, not picked up from a folder")
    return d


def test_analyze_json_lines(tiny_models_dir, face_photo):
    r = run_cli("analyze", face_photo, "--json", models_dir=tiny_models_dir)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["kind"] == "image" and report["error"] is None
    assert len(report["faces"]) == 1 and len(report["faces"][0]["models"]) == 5
    assert report["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
    assert "Traceback" not in r.stderr


def test_folder_with_bad_files_keeps_going(tiny_models_dir, batch):
    r = run_cli("analyze", batch, "--json", models_dir=tiny_models_dir)
    assert r.returncode == 0, r.stderr
    reports = {Path(j["path"]).name: j for j in map(json.loads, r.stdout.strip().splitlines())}
    assert set(reports) == {"good.jpg", "broken.jpg", "notes.png"}
    assert reports["good.jpg"]["error"] is None
    for bad in ("broken.jpg", "notes.png"):
        assert reports[bad]["error"] and "\n" not in reports[bad]["error"]
    assert "Traceback" not in r.stderr


def test_every_input_failing_exits_nonzero(tiny_models_dir, batch, tmp_path):
    r = run_cli("analyze", batch / "broken.jpg", tmp_path / "missing.jpg", models_dir=tiny_models_dir)
    assert r.returncode == 1
    assert "ERROR" in r.stdout and "not found" in r.stdout
    assert "Traceback" not in r.stderr + r.stdout


def test_human_output_names_every_detector(tiny_models_dir, face_photo):
    r = run_cli("analyze", face_photo, models_dir=tiny_models_dir)
    assert r.returncode == 0
    for name in ("xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"):
        assert name in r.stdout
    assert "verdict:" in r.stdout


def test_models_json_lists_five(tiny_models_dir):
    r = run_cli("models", "--json", models_dir=tiny_models_dir)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert [m["name"] for m in info] == ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]
    assert all(m["loaded"] and m["checksum_verified"] and m["input_size"] == 64 for m in info)
    # the tiny detectors all pass the quality gate (tests/conftest.py), so all five vote by default
    assert all(m["votes"] is True and m["gate_reason"] is None and m["gate_floor"] == 0.75 for m in info)


def test_without_weights_the_cli_says_how_to_make_them(tmp_path, face_photo):
    r = run_cli("analyze", face_photo, "--json", "--models-dir", tmp_path / "none")
    assert r.returncode == 1
    assert "train/" in r.stderr
    assert json.loads(r.stdout)["error"].startswith("no detector available")


def test_bad_option_is_a_usage_error(face_photo):
    r = run_cli("analyze", face_photo, "--strategy", "nope")
    assert r.returncode == 2
