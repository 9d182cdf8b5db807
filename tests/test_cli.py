"""The command line: exit codes, JSON Lines, folders, bad files among good ones, `models`."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.ensemble import verdict_for

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
    # the image's verdict is its face's probability judged at the threshold and band the report records
    face, used = report["faces"][0], report["settings"]
    assert report["probability"] == face["probability"]
    assert report["verdict"] == face["verdict"] == verdict_for(face["probability"], used["threshold"], used["band"])
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
    out = json.loads(r.stdout)
    info = out["models"]
    assert out["operating_point"]["source"] == "default" and out["operating_point"]["threshold"] == 0.5
    assert [m["name"] for m in info] == ["xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"]
    assert all(m["loaded"] and m["checksum_verified"] and m["input_size"] == 64 for m in info)
    # the cross-attention model's Fourier view has no ONNX form; the other four score with their graphs
    assert {m["name"]: m["engine"] for m in info} == {"xception": "onnxruntime", "efficientnet_b3": "onnxruntime",
                                                       "swin": "onnxruntime", "cross_attention": "pytorch",
                                                       "cnn_transformer": "onnxruntime"}
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


@pytest.mark.parametrize("args,fragment", [(["--threshold", "1.5"], "threshold must be between 0 and 1, got 1.5"),
                                           (["--band", "0.5"], "band must be at least 0 and below 0.5"),
                                           (["--min-face", "0"], "min_face_size must be at least 1")])
def test_bad_threshold_or_band_is_a_one_line_usage_error(face_photo, args, fragment):
    r = run_cli("analyze", face_photo, *args)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and fragment in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_default_threshold_is_the_operating_point_and_explicit_wins(op_models_dir, face_photo, capsys):
    import cli
    from conftest import OP_BAND, OP_THRESHOLD

    assert cli.main(["analyze", str(face_photo), "--json", "--models-dir", str(op_models_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["settings"]["threshold"], report["settings"]["band"]) == (OP_THRESHOLD, OP_BAND)
    assert report["operating_point"]["source"] == "validation"
    assert cli.main(["analyze", str(face_photo), "--json", "--models-dir", str(op_models_dir),
                     "--threshold", "0.3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["settings"]["threshold"], report["settings"]["band"]) == (0.3, OP_BAND)
    assert report["operating_point"]["explicit"] == ["threshold"]


def test_models_shows_the_operating_point(op_models_dir, tiny_models_dir, capsys):
    import cli

    assert cli.main(["models", "--models-dir", str(op_models_dir)]) == 0
    text = capsys.readouterr().out
    assert "operating point: threshold 0.720 ± band 0.050: validated for the weighted ensemble" in text
    assert "4.0% of 800 validation reals called FAKE (target at most 5%), 61.0% of 700 fakes caught" in text
    assert cli.main(["models", "--json", "--models-dir", str(op_models_dir)]) == 0
    op = json.loads(capsys.readouterr().out)["operating_point"]
    assert op["source"] == "validation" and (op["val_fpr"], op["val_tpr"], op["max_fpr"]) == (0.04, 0.61, 0.05)
    assert cli.main(["models", "--models-dir", str(tiny_models_dir)]) == 0
    assert ("operating point: threshold 0.500 ± band 0.100: built-in defaults (no ensemble.json in the models "
            "folder)") in capsys.readouterr().out


# ------------------------------------------------------------------------------ the text output, on report dicts
def _face(p, votes, agreement=0.56):
    return {"box": [0, 0, 100, 100], "score": 0.99, "models": {"a": 0.99, "b": 0.99, "c": 0.2, "d": 0.1, "e": 0.55},
            "probability": p, "verdict": "UNCERTAIN", "agreement": agreement, "votes": votes,
            "weights": {"a": 0.4, "b": 0.3, "c": 0.1, "d": 0.1, "e": 0.1}}


def test_majority_is_printed_as_votes_with_abstentions(capsys):
    import cli

    votes = {"fake": 2, "real": 2, "abstain": 1}
    report = {"path": "p.jpg", "kind": "image", "verdict": "UNCERTAIN", "probability": 0.5,
              "settings": {"strategy": "majority"}, "faces": [_face(0.5, votes)],
              "models_not_voting": [{"name": "swin", "reason": "validation AUC below 0.75 on dfdc (0.501)"}]}
    cli._print_human(report)
    out = capsys.readouterr().out
    assert "verdict: UNCERTAIN  (2 of 5 detectors say fake, 2 say real, 1 abstains)" in out
    assert "probability" not in out.split("\n")[1]
    assert "agreement 0.56 (partial)" in out and "the threshold does not change it" in out
    assert "weight 40%" in out and "swin" in out and "not voting: validation AUC below 0.75" in out
    report["settings"]["strategy"] = "weighted"
    cli._print_human(report)
    assert "verdict: UNCERTAIN  (fake probability 0.500)" in capsys.readouterr().out


def test_whole_picture_fallback_is_not_a_face(capsys):
    import cli
    from analysis.report import WHOLE_IMAGE_NOTE

    report = {"path": "sky.png", "kind": "image", "verdict": "REAL", "probability": 0.2, "whole_image": True,
              "message": WHOLE_IMAGE_NOTE, "settings": {"strategy": "weighted"}, "faces": [_face(0.2, {})]}
    cli._print_human(report)
    out = capsys.readouterr().out
    assert "faces: 0 faces (whole picture scored)" in out and "whole picture: box" in out and "face 1" not in out
    assert "the whole picture was scored instead (whole-picture fallback is on)" in out


def test_video_text_says_who_decides(capsys):
    import cli

    track = {"verdict": "REAL", "probability": 0.15, "fake_share": 0.0, "importance": 0.95, "minor_reason": None,
             "votes": {"fake": 0, "real": 3, "abstain": 0}}
    report = {"path": "anchor.mp4", "kind": "video", "verdict": "REAL", "probability": 0.15, "decisive_track": 0,
              "decision": "Person 1 (seen in 16 of 16 frames, large face) decides the video; person 2 (3 frames) is "
                          "minor and does not decide it.",
              "settings": {"strategy": "majority"}, "frames": [{}] * 16,
              "tracks": [{**track, "id": 0, "frames": list(range(16))},
                         {**track, "id": 1, "frames": [0, 1, 2], "verdict": "FAKE", "probability": 0.9,
                          "importance": 0.4, "minor_reason": "seen in only 3 of 16 frames",
                          "votes": {"fake": 3, "real": 0, "abstain": 0}}]}
    cli._print_human(report)
    out = capsys.readouterr().out
    assert "verdict: REAL  (0 of 3 detectors say fake, 3 say real)" in out
    assert "decision: Person 1 (seen in 16 of 16 frames, large face) decides the video" in out
    assert "Person 1: REAL (0 of 3 detectors say fake, 3 say real) in 16 of 16 frames" in out
    assert "[decides the video]" in out
    assert "Person 2: FAKE (3 of 3 detectors say fake) in 3 of 16 frames" in out
    assert "[minor: seen in only 3 of 16 frames]" in out and "person #" not in out


# ------------------------------------------------------------------------------------------- --report (HTML)
def test_report_writes_a_self_contained_html_file(tiny_models_dir, face_photo, tmp_path, capsys):
    import cli
    from analysis import __version__
    from analysis.report import HEADLINES

    out = tmp_path / "report.html"
    assert cli.main(["analyze", str(face_photo), "--json", "--models-dir", str(tiny_models_dir),
                     "--report", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1                      # stdout stays JSON Lines; the note goes to stderr
    report = json.loads(lines[0])
    assert report["version"] == __version__ and report["created"].endswith("Z")
    page = out.read_text(encoding="utf-8")
    assert HEADLINES[report["verdict"]] in page and report["created"] in page
    assert page.count("data:image/jpeg;base64,") == 2 and "http://" not in page and "https://" not in page
    assert f"report: {out}" in captured.err


def test_report_is_a_folder_for_several_inputs(tiny_models_dir, batch, tmp_path, capsys):
    import cli

    folder = tmp_path / "reports"
    assert cli.main(["analyze", str(batch), "--models-dir", str(tiny_models_dir), "--report", str(folder)]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["broken.report.html", "good.report.html", "notes.report.html"]
    assert "truncated" in (folder / "broken.report.html").read_text(encoding="utf-8")   # errors are reported too
    capsys.readouterr()
    assert cli.main(["analyze", str(batch), "--models-dir", str(tiny_models_dir),
                     "--report", str(tmp_path / "one.html")]) == 2
    assert "--report names a folder" in capsys.readouterr().err


def test_report_names_do_not_collide():
    from cli import report_targets

    targets = report_targets("out", [Path("a/x.jpg"), Path("b/x.jpg"), Path("c/x.png")])
    assert [t.name for t in targets.values()] == ["x.report.html", "x-2.report.html", "x-3.report.html"]
    assert report_targets("r.html", [Path("a.jpg")]) == {Path("a.jpg"): Path("r.html")}
