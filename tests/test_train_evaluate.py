"""train/evaluate.py on converted models: images, crop indexes with videos, the ensemble, outputs, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from train import evaluate as ev
from train.data import Sample, write_index
from train.synthetic import make_pair, write_dataset


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ev") / "tex", "flat", n=10, seed=3)


@pytest.fixture(scope="module")
def video_index(tmp_path_factory) -> Path:
    """A crop index as prepare.py writes it: 2 videos x 3 frames and 2 images, both labels."""
    root = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    samples = []
    for v, label in (("real_clip", 0), ("fake_clip", 1)):
        for frame in (0, 5, 9):
            img = make_pair(rng, 64)[label]
            path = root / "crops" / f"{v}_{frame}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), img)
            samples.append(Sample(path=str(path), label=label, group=v, source="videos", split="test", kind="video",
                                  original=f"/media/{v}.mp4", frame=frame, score=0.99))
    for label in (0, 1):
        path = root / "crops" / f"img{label}.png"
        cv2.imwrite(str(path), make_pair(rng, 64)[label])
        samples.append(Sample(path=str(path), label=label, group=f"i{label}", source="photos", split="test",
                              original=f"/media/img{label}.jpg", score=0.99))
    return write_index(root / "index.csv", samples)


def test_images_with_ensemble(tiny_models_dir, flat, tmp_path):
    from analysis.ensemble import combine
    from analysis.settings import AnalysisSettings
    from detectors.artifacts import load_detectors
    from detectors.registry import detector_names

    report = ev.evaluate(tiny_models_dir, [str(flat)], split="all", ensemble="weighted", keep_no_face=True,
                         out=tmp_path / "out", progress=False)
    assert set(report["models"]) == set(detector_names()) | {"ensemble:weighted"}
    for name, r in report["models"].items():
        assert r["items"]["n"] == 20 and r["items"]["n_fake"] == 10
        assert [p["target_fpr"] for p in r["items"]["operating_points"]] == [0.01, 0.05, 0.1]
        assert set(r["by_source"]) == {"tex"} and "videos" not in r
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"report.json", "roc.png", "reliability.png",
                                                               "scores.csv", "confusion_ensemble_weighted.png"}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["n_units"] == 20

    # the ensemble column is analysis.ensemble.combine on calibrated values, model weights from the manifests
    from analysis.analyzer import model_weight
    detectors, _ = load_detectors(tiny_models_dir)
    img = cv2.cvtColor(cv2.imread(str(sorted((flat / "fake").iterdir())[0])), cv2.COLOR_BGR2RGB)
    z = {n: float(d.logits([img])[0]) for n, d in detectors.items()}
    probs = {n: float(d.calibrate([z[n]])[0]) for n, d in detectors.items()}
    expected = combine(probs, {n: z[n] / detectors[n].temperature for n in z}, AnalysisSettings(strategy="weighted"),
                       {n: model_weight(d) for n, d in detectors.items()}).probability
    row = next(line for line in (tmp_path / "out" / "scores.csv").read_text().splitlines() if "fake_0000" in line)
    header = (tmp_path / "out" / "scores.csv").read_text().splitlines()[0].split(",")
    assert float(row.split(",")[header.index("ensemble:weighted")]) == pytest.approx(expected, abs=1e-5)


def test_index_with_videos_gives_frame_and_video_metrics(tiny_models_dir, video_index):
    report = ev.evaluate(tiny_models_dir, [str(video_index)], names=["cnn_transformer"], split="test",
                         progress=False)
    r = report["models"]["cnn_transformer"]
    assert r["items"]["n"] == 8 and r["frames"]["n"] == 6 and r["videos"]["n"] == 2 and r["images"]["n"] == 2
    assert set(r["by_source"]) == {"photos", "videos"}
    per_video = r["per_video"]
    assert set(per_video) == {"/media/real_clip.mp4", "/media/fake_clip.mp4"}
    assert per_video["/media/fake_clip.mp4"]["label"] == 1


def test_video_score_is_the_mean_of_its_frames():
    units = [ev.Unit(media="v", frame=i, label=1, source="s", kind="video", scores={"m": p})
             for i, p in enumerate((0.2, 0.4, 0.9))]
    units.append(ev.Unit(media="w", frame=0, label=0, source="s", kind="video", scores={"m": 0.1}))
    r = ev.model_report(units, "m", 0.5)
    assert r["per_video"]["v"]["probability"] == pytest.approx(0.5)
    assert r["videos"]["n"] == 2 and r["frames"]["n"] == 4


def test_face_units_take_the_most_suspicious_face(tiny_models_dir):
    from detectors.artifacts import load_detectors
    detectors, _ = load_detectors(tiny_models_dir, ["cnn_transformer"])
    rng = np.random.default_rng(0)
    crops = [make_pair(rng, 64)[k % 2] for k in range(3)]
    unit = ev.Unit(media="x", frame=-1, label=1, source="s", kind="image", crops=list(crops))
    ev.score_units([unit], detectors, None, "")
    assert unit.scores["cnn_transformer"] == pytest.approx(detectors["cnn_transformer"].predict(crops).max())
    assert unit.crops == []


def test_cli(tiny_models_dir, video_index, tmp_path, capsys):
    code = ev.main(["--models", str(tiny_models_dir), "--names", "cnn_transformer", "swin", "--data", str(video_index),
                    "--ensemble", "mean_logit", "--out", str(tmp_path / "r"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "ensemble:mean_logit" in out and "FPR<=5%" in out and "video AUC" in out
    assert ev.main(["--models", str(tmp_path / "none"), "--data", str(video_index), "--no-progress"]) == 2
    assert ev.main(["--models", str(tiny_models_dir), "--data", str(video_index), "--ensemble", "nope",
                    "--no-progress"]) == 2


def test_raw_images_and_videos_through_the_face_finder(tiny_models_dir, tmp_path, astronaut_rgb):
    """Raw media: faces found as the app finds them, a video scored per frame and as the mean of its frames."""
    small = cv2.resize(astronaut_rgb, (200, 200), interpolation=cv2.INTER_AREA)
    for d in ("real", "fake"):
        (tmp_path / "raw" / d).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "raw" / "real" / "photo.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "raw" / "real" / "blank.png"), np.full((120, 120, 3), 128, np.uint8))
    writer = cv2.VideoWriter(str(tmp_path / "raw" / "fake" / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10,
                             (200, 200))
    for shift in range(0, 24, 2):
        writer.write(cv2.cvtColor(np.roll(small, shift, axis=1), cv2.COLOR_RGB2BGR))
    writer.release()
    report = ev.evaluate(tiny_models_dir, [str(tmp_path / "raw")], names=["cnn_transformer"], split="all",
                         frames=3, progress=False)
    r = report["models"]["cnn_transformer"]
    assert report["skipped_no_face"] == 1 and report["n_media"] == 2
    assert r["frames"]["n"] == 3 and r["videos"]["n"] == 1 and r["images"]["n"] == 1
