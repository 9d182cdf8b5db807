"""train/evaluate.py on converted models: images, crop indexes with videos, the ensemble, outputs, CLI."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from train import evaluate as ev
from train.data import Sample, write_index
from train.synthetic import make_pair, write_crop_index, write_dataset


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
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["n_units"] == 20 and saved["clips"] == []
    for name in report["models"]:
        cal = saved["calibration"][name]
        assert cal["ece_after"] == pytest.approx(report["models"][name]["items"]["ece"])
        assert sum(cal["bins_after"]["count"]) == 20 and cal["plot"] == f"reliability_{ev._safe(name)}.png"
        assert (tmp_path / "out" / cal["plot"]).read_bytes()[:4] == b"\x89PNG"

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

    # ECE before calibration: of sigmoid(logit) with temperature 1, on the same whole-image crops
    from train.metrics import expected_calibration_error
    paths = sorted((flat / "real").iterdir()) + sorted((flat / "fake").iterdir())
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    z = detectors["swin"].logits(images)
    before = expected_calibration_error([0] * 10 + [1] * 10, 1 / (1 + np.exp(-z)))
    assert saved["calibration"]["swin"]["ece_before"] == pytest.approx(before, abs=1e-3)
    assert saved["calibration"]["swin"]["temperature"] == 1.5


def test_index_with_videos_gives_frame_and_video_metrics(tiny_models_dir, video_index):
    report = ev.evaluate(tiny_models_dir, [str(video_index)], names=["cnn_transformer"], split="test",
                         progress=False)
    r = report["models"]["cnn_transformer"]
    assert r["items"]["n"] == 8 and r["frames"]["n"] == 6 and r["videos"]["n"] == 2 and r["images"]["n"] == 2
    assert set(r["by_source"]) == {"photos", "videos"}
    per_video = r["per_video"]
    assert set(per_video) == {"/media/real_clip.mp4", "/media/fake_clip.mp4"}
    assert per_video["/media/fake_clip.mp4"]["label"] == 1
    assert {v["aggregation"] for v in per_video.values()} == {"mean_of_frames"}
    assert set(report["models"]) == {"cnn_transformer", "ensemble:weighted"}  # the app's strategy by default


def test_video_score_is_the_mean_of_its_frames():
    units = [ev.Unit(media="v", frame=i, label=1, source="s", kind="video", scores={"m": p})
             for i, p in enumerate((0.2, 0.4, 0.9))]
    units.append(ev.Unit(media="w", frame=0, label=0, source="s", kind="video", scores={"m": 0.1}))
    r = ev.model_report(units, "m", 0.5)
    assert r["per_video"]["v"]["probability"] == pytest.approx(0.5)
    assert r["videos"]["n"] == 2 and r["frames"]["n"] == 4


def test_item_scores_are_the_most_suspicious_face_before_and_after_calibration(analyzer):
    from analysis.ensemble import combine
    from analysis.faces import Face
    from analysis.settings import AnalysisSettings

    rng = np.random.default_rng(0)
    crops = [make_pair(rng, 64)[k % 2] for k in range(3)]
    faces = [Face(box=(0.0, 0.0, 64.0, 64.0), score=0.99, landmarks=None, crop=c) for c in crops]
    settings = AnalysisSettings()
    names = list(analyzer.detectors)
    results = analyzer.face_results(faces, analyzer.score_crops(crops, names), settings)
    scores, raw = ev.face_scores(results, settings, analyzer.weights, "ensemble:weighted")
    for n in names:
        z = analyzer.detectors[n].logits(crops)
        assert scores[n] == pytest.approx(analyzer.detectors[n].calibrate(z).max(), abs=1e-5)
        assert raw[n] == pytest.approx((1 / (1 + np.exp(-z))).max(), abs=1e-4)
    assert scores["ensemble:weighted"] == max(r.probability for r in results)
    uncalibrated = [combine({n: 1 / (1 + np.exp(-r.logits[n])) for n in names}, r.logits, settings,
                            analyzer.weights).probability for r in results]
    assert raw["ensemble:weighted"] == pytest.approx(max(uncalibrated))
    # temperature 1.5 in the tiny manifests: calibration pulls every probability towards 0.5
    assert abs(scores["ensemble:weighted"] - 0.5) < abs(raw["ensemble:weighted"] - 0.5)


def test_cli(tiny_models_dir, video_index, tmp_path, capsys):
    code = ev.main(["--models", str(tiny_models_dir), "--names", "cnn_transformer", "swin", "--data", str(video_index),
                    "--ensemble", "mean_logit", "--out", str(tmp_path / "r"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "ensemble:mean_logit" in out and "FPR<=5%" in out and "video AUC" in out
    assert ev.main(["--models", str(tmp_path / "none"), "--data", str(video_index), "--no-progress"]) == 2
    assert ev.main(["--models", str(tiny_models_dir), "--data", str(video_index), "--ensemble", "nope",
                    "--no-progress"]) == 2


    # the written operating point must come from validation scores
    assert ev.main(["--models", str(tiny_models_dir), "--data", str(video_index), "--operating-point-split", "test",
                    "--out-operating-point", str(tmp_path / "ensemble.json"), "--no-progress"]) == 2
    assert "use --operating-point-split val" in capsys.readouterr().err
    assert not (tmp_path / "ensemble.json").exists()


def test_evaluation_uses_no_private_preparation_path():
    import inspect
    source = inspect.getsource(ev)
    assert "_whole_image_face" not in source and "read_video_frames" not in source and "train.prepare" not in source


# ---------------------------------------------------------------------------------------------- clips
CLIP_FRAMES = 4


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory, astronaut_rgb) -> Path:
    """A raw labelled folder as ../shared/data/videos: labels.json with real, fake and unknown clips, a clip
    without faces, and a photo."""
    from video_fixtures import blank_frames, two_faces_frames, write_clip

    root = tmp_path_factory.mktemp("clips") / "videos"
    root.mkdir()
    one, _ = two_faces_frames(12, people=1)
    two, _ = two_faces_frames(12, people=2)
    write_clip(root / "real_face.mp4", one, fps=12)
    write_clip(root / "fake_faces.mp4", two, fps=12)
    write_clip(root / "mystery.mp4", two[::-1], fps=12)
    write_clip(root / "empty.mp4", blank_frames(12), fps=12)
    cv2.imwrite(str(root / "photo.png"), cv2.cvtColor(cv2.resize(astronaut_rgb, (200, 200)), cv2.COLOR_RGB2BGR))
    (root / "labels.json").write_text(json.dumps({
        "real_face.mp4": {"label": "real", "source": "ffpp-youtube"}, "fake_faces.mp4": "fake",
        "mystery.mp4": {"label": "unknown"}, "empty.mp4": "fake", "photo.png": "real"}))
    return root


@pytest.fixture(scope="module")
def clip_run(tiny_models_dir, clip_folder, tmp_path_factory):
    """evaluate() on the clip folder with a spy on the video engine it calls."""
    calls = []
    real = ev.analyze_video

    def spy(path, analyzer, settings=None, options=None, **kw):
        calls.append((Path(path).name, settings, options))
        return real(path, analyzer, settings, options, **kw)

    ev.analyze_video = spy
    try:
        out = tmp_path_factory.mktemp("clip_report")
        report = ev.evaluate(tiny_models_dir, [str(clip_folder)], split="all", frames=CLIP_FRAMES, out=out,
                             progress=False)
    finally:
        ev.analyze_video = real
    return report, calls, out


def test_clips_go_through_the_video_engine_with_the_app_settings(clip_run, clip_folder, analyzer):
    from analysis.ensemble import verdict_for
    from analysis.settings import AnalysisSettings
    from video.engine import analyze_video
    from video.sampling import VideoOptions

    report, calls, out = clip_run
    assert sorted(name for name, _, _ in calls) == ["empty.mp4", "fake_faces.mp4", "mystery.mp4", "real_face.mp4"]
    for _, settings, options in calls:
        assert options.frames == CLIP_FRAMES
        app = AnalysisSettings()
        assert (settings.strategy, settings.threshold, settings.band, settings.margin, settings.min_face_size) == \
            (app.strategy, 0.5, 0.1, app.margin, app.min_face_size)
    clips = {Path(c["path"]).name: c for c in report["clips"]}
    assert set(clips) == {"empty.mp4", "fake_faces.mp4", "mystery.mp4", "real_face.mp4"}
    # the clip's result is the engine's video report, as the app shows it
    for name in ("real_face.mp4", "fake_faces.mp4"):
        direct = analyze_video(clip_folder / name, analyzer, AnalysisSettings(), VideoOptions(frames=CLIP_FRAMES))
        c = clips[name]
        assert c["probability"] == direct.probability and c["verdict"] == direct.verdict
        assert c["frames_analysed"] == CLIP_FRAMES and c["faces"] == len(direct.faces) > 0
        assert c["tracks"] == len(direct.tracks) and set(c["models"]) == set(analyzer.detectors)
        assert c["correct"] == (c["verdict"] == ("REAL" if c["label"] == "real" else "FAKE"))
        assert c["model_verdicts"] == {n: verdict_for(v, 0.5, 0.1) for n, v in c["models"].items()}
        # the per-detector aggregation, applied to the ensemble's face probabilities, is the engine's own
        assert ev.engine_aggregate(direct, lambda f: f.probability, 0.5) == direct.probability
    assert clips["fake_faces.mp4"]["tracks"] == 2
    assert clips["mystery.mp4"]["label"] == "unknown" and clips["mystery.mp4"]["correct"] is None
    assert clips["mystery.mp4"]["probability"] is not None   # reported ...
    empty = clips["empty.mp4"]
    assert empty["probability"] is None and empty["verdict"] is None and empty["correct"] is False
    assert empty["faces"] == 0 and empty["frames_analysed"] == CLIP_FRAMES
    assert report["clips_summary"]["scored"] == 3 and report["clips_summary"]["unknown"] == 1
    assert json.loads((out / "report.json").read_text())["clips"] == report["clips"]


def test_clip_metrics_score_labelled_clips_only(clip_run):
    report, _, _ = clip_run
    clips = {Path(c["path"]).name: c for c in report["clips"]}
    for name, r in report["models"].items():
        per_video = {Path(k).name: v for k, v in r["per_video"].items()}
        # ... but not scored: the unknown clip and the clip without faces stay out of the metrics
        assert set(per_video) == {"real_face.mp4", "fake_faces.mp4"}
        assert {v["aggregation"] for v in per_video.values()} == {"engine"}
        key = "probability" if name.startswith("ensemble:") else None
        for clip, v in per_video.items():
            expected = clips[clip]["probability"] if key else clips[clip]["models"][name]
            assert v["probability"] == pytest.approx(expected)
        assert r["videos"]["n"] == 2 and r["videos"]["n_fake"] == 1
        frames = sum(1 for _ in range(CLIP_FRAMES)) * 2      # every analysed frame of both clips shows a face
        assert r["frames"]["n"] == frames and r["images"]["n"] == 1
        assert r["items"]["n"] == frames + 1
    assert report["n_media"] == 3 and report["skipped_no_face"] == 1


def test_per_detector_clip_probability_is_aggregated_like_the_ensemble(tiny_models_dir, clip_folder):
    """With one detector, the weighted ensemble of a face is that detector's calibrated probability, so the
    per-detector aggregate must equal the engine's video probability."""
    report = ev.evaluate(tiny_models_dir, [str(clip_folder)], names=["cross_attention"], split="all",
                         frames=CLIP_FRAMES, progress=False)
    for c in report["clips"]:
        if c["probability"] is not None:
            assert c["models"]["cross_attention"] == pytest.approx(c["probability"], abs=2e-5)


def test_video_level_uses_the_engine_clip_over_the_mean_of_frames():
    units = [ev.Unit(media="v.mp4", frame=i, label=1, source="s", kind="video", scores={"m": p, "ensemble:x": p})
             for i, p in enumerate((0.2, 0.4, 0.9))]
    units.append(ev.Unit(media="w.mp4", frame=0, label=0, source="s", kind="video", scores={"m": 0.1,
                                                                                              "ensemble:x": 0.1}))
    clip = ev.ClipResult(path="v.mp4", label="fake", source="s", split=None, probability=0.85, verdict="FAKE",
                         models={"m": 0.7}, model_verdicts={"m": "FAKE"}, frames_analysed=3, faces=3, tracks=1,
                         correct=True)
    r = ev.model_report(units, "m", 0.5, [clip])
    assert r["per_video"]["v.mp4"] == {"label": 1, "probability": 0.7, "aggregation": "engine"}
    assert r["per_video"]["w.mp4"]["aggregation"] == "mean_of_frames"
    assert ev.model_report(units, "ensemble:x", 0.5, [clip])["per_video"]["v.mp4"]["probability"] == 0.85


# ---------------------------------------------------------------------------------------------- operating point
@pytest.fixture(scope="module")
def split_index(tmp_path_factory) -> Path:
    """A crop index with a validation split (30 real, 30 fake) and a test split (10 + 10)."""
    return write_crop_index(tmp_path_factory.mktemp("split_idx"), {"val": 30, "test": 10}, seed=5)


def test_operating_point_chosen_on_val_written_and_applied_to_test(tiny_models_dir, split_index, tmp_path):
    from analysis.ensemble import verdict_for
    from analysis.operating_point import load_operating_point
    from train.metrics import operating_point

    models = tmp_path / "models"
    report = ev.evaluate(tiny_models_dir, [str(split_index)], split="test", operating_point_split="val",
                         out_operating_point=models / "ensemble.json", max_fpr=0.05, progress=False)
    op = load_operating_point(models)
    assert op is not None and op.strategy == "weighted" and op.max_fpr == 0.05
    assert sorted(op.detectors) == sorted(report["temperatures"]) and op.val.n_real == 30 and op.val.n_fake == 30
    r = report["operating_point"]
    assert (r["threshold"], r["band"]) == (op.threshold, op.band) and r["file"] == str(models / "ensemble.json")

    # the same choice from the validation scores themselves, and at most 5% of their reals called FAKE
    val = ev.evaluate(tiny_models_dir, [str(split_index)], split="val", out=tmp_path / "val", progress=False)
    rows = [line.split(",") for line in (tmp_path / "val" / "scores.csv").read_text().splitlines()]
    col = rows[0].index("ensemble:weighted")
    y = np.array([int(row[2]) for row in rows[1:]])
    p = np.array([float(row[col]) for row in rows[1:]])
    again = operating_point(y, p, 0.05, 0.1)
    assert again.threshold == pytest.approx(op.threshold, abs=1e-9) and again.band == pytest.approx(op.band)
    verdicts = [verdict_for(v, op.threshold, op.band) for v in p]
    fpr = np.mean([v == "FAKE" for v, label in zip(verdicts, y) if label == 0])
    tpr = np.mean([v == "FAKE" for v, label in zip(verdicts, y) if label == 1])
    assert fpr <= 0.05 and op.val.fpr == pytest.approx(fpr) and op.val.tpr == pytest.approx(tpr)
    # ... and what it gives on the test split is reported beside it
    assert r["evaluated"]["n_real"] == 10 and r["evaluated"]["n_fake"] == 10
    assert report["models"]["ensemble:weighted"]["items"]["n"] == 20


def test_operating_point_on_clips_gives_each_clip_its_verdict_there(tiny_models_dir, clip_folder):
    report = ev.evaluate(tiny_models_dir, [str(clip_folder)], names=["swin"], split="all", frames=CLIP_FRAMES,
                         operating_point_split="all", max_fpr=0.2, progress=False)
    from analysis.ensemble import verdict_for
    op = report["operating_point"]
    assert op["fit_split"] == "all" and "evaluated" not in op and op["file"] is None
    for c in report["clips"]:
        assert c["verdict_at_operating_point"] == verdict_for(c["probability"], op["threshold"], op["band"])


def test_frame_fill_scores_padded_crops_with_their_frame_filled(tiny_models_dir, tmp_path):
    from detectors.artifacts import load_detectors
    from train.augment import ContextFill

    rng = np.random.default_rng(4)
    samples, framed = [], []
    for i, label in enumerate((0, 1, 0, 1)):
        crop = np.zeros((96, 96, 3), np.uint8)
        crop[24:72, 30:78] = make_pair(rng, 48)[label]           # a tight crop inside the finder's black frame
        path = tmp_path / f"c{i}.png"
        cv2.imwrite(str(path), crop)
        framed.append(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB))
        samples.append(Sample(path=str(path), label=label, group=f"g{i}", source="dfdc", split="test",
                              original=f"/media/{i}.jpg", score=0.99))
    index = write_index(tmp_path / "index.csv", samples)
    as_cut = ev.evaluate(tiny_models_dir, [str(index)], names=["swin"], split="test", out=tmp_path / "a",
                         progress=False)
    filled = ev.evaluate(tiny_models_dir, [str(index)], names=["swin"], split="test", out=tmp_path / "b",
                         progress=False, frame_fill="reflect")
    assert as_cut["frame_fill"] is None and filled["frame_fill"] == "reflect"
    swin = load_detectors(tiny_models_dir)[0]["swin"]
    refilled = [ContextFill(mode="reflect")(c, np.random.default_rng(0)) for c in framed]
    assert not np.allclose(swin.logits(framed), swin.logits(refilled))     # the fill is seen by the detector
    for out, crops in ((tmp_path / "a", framed),
                       (tmp_path / "b", refilled)):
        rows = [line.split(",") for line in (out / "scores.csv").read_text().splitlines()]
        col = rows[0].index("swin")
        expected = swin.calibrate(swin.logits(crops))
        assert [float(r[col]) for r in rows[1:]] == pytest.approx(list(expected), abs=1e-5)
    with pytest.raises(ev.DataError, match="robustness check"):
        ev.evaluate(tiny_models_dir, [str(index)], split="test", operating_point_split="val", frame_fill="blur",
                    progress=False)
    with pytest.raises(ev.DataError, match="ContextFill mode"):
        ev.evaluate(tiny_models_dir, [str(index)], split="test", frame_fill="tile", progress=False)
