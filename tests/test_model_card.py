"""Model cards are written from the manifests: every detector gets one with its numbers and the data licences."""
import json
import shutil

from train.model_card import main


def test_model_cards_from_manifests(tiny_models_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    manifest = json.loads((models / "swin" / "manifest.json").read_text())
    assert main(["--models", str(models)]) == 0
    for name in ("xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer"):
        card = (models / name / "MODEL_CARD.md").read_text()
        assert f"# Model card: `{name}`" in card
        assert "non-commercial" in card and "Known limits" in card
    swin = (models / "swin" / "MODEL_CARD.md").read_text()
    assert manifest["sha256"] in swin and "64 px" in swin and "224 px" in swin


def _crop_index(root):
    from train.synthetic import write_crop_index

    return write_crop_index(root, {"val": 12, "test": 6}, seed=1,
                            source=lambda i: "dfdc" if i % 2 else "ffhq_stylegan2")


def test_ensemble_summary_with_baseline_operating_point_clips_and_calibration(tiny_models_dir, tmp_path, capsys):
    from analysis.operating_point import load_operating_point
    from train.evaluate import evaluate

    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    index = _crop_index(tmp_path / "idx")
    report = evaluate(models, [str(index)], split="test", operating_point_split="val",
                      out_operating_point=models / "ensemble.json", out=tmp_path / "report", progress=False,
                      mirror=True)
    op = load_operating_point(models)
    # clips as evaluate lists them (the video engine's results); a clip run is too slow for this test
    saved = json.loads((tmp_path / "report" / "report.json").read_text())
    saved["video_options"] = {"frames": 32}
    saved["clips"] = [
        {"path": "/d/videos/519_515.mp4", "label": "fake", "source": "videos", "split": None, "probability": 0.8123,
         "verdict": "FAKE", "models": {"swin": 0.61, "xception": 0.7}, "frames_analysed": 32, "faces": 30,
         "tracks": 1, "correct": True, "error": None, "message": None, "verdict_at_operating_point": "FAKE"},
        {"path": "/d/videos/lynaeydofd.mp4", "label": "unknown", "source": "videos", "split": None,
         "probability": 0.3, "verdict": "REAL", "models": {"swin": 0.2}, "frames_analysed": 32, "faces": 31,
         "tracks": 2, "correct": None, "error": None, "message": None, "verdict_at_operating_point": "REAL"}]
    saved["clips_summary"] = {"n": 2, "scored": 1, "unknown": 1, "correct": 1, "accuracy": 1.0}
    (tmp_path / "report.json").write_text(json.dumps(saved))
    baseline = {"name": "frozen ImageNet Xception features + logistic regression",
                "command": "python -m train.probe --data data_cache/shared/index.csv",
                "test_auc_by_source": {"dfdc": 0.84, "ffhq_stylegan2": 0.99, "sdfd": 0.7}, "test_auc": 0.857}
    (tmp_path / "probe.json").write_text(json.dumps(baseline))

    assert main(["--models", str(models), "--eval", str(tmp_path / "report.json"),
                 "--baseline", str(tmp_path / "probe.json")]) == 0
    text = (models / "ENSEMBLE.md").read_text()
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| scorer |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:6] == ["scorer", "n", "AUC", "accuracy", "log loss", "calibration (ECE before → after)"]
    assert "AUC sdfd" in columns and "AUC dfdc" in columns and columns[-1] == "video-level AUC"
    row = next(line for line in lines if line.startswith("| baseline: frozen ImageNet Xception"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == len(columns)
    assert cells[2] == "0.857" and cells[columns.index("AUC sdfd")] == "0.700"
    assert cells[columns.index("AUC dfdc")] == "0.840" and cells[columns.index("AUC ffhq_stylegan2")] == "0.990"
    assert "python -m train.probe" in text
    # every scorer's row: same number of cells, its ECE before -> after from the report's calibration
    ens = next(line for line in lines if line.startswith("| ensemble:weighted |"))
    cal = report["calibration"]["ensemble:weighted"]
    assert f"{cal['ece_before']:.3f} → {cal['ece_after']:.3f}" in ens
    assert len(ens.strip("|").split("|")) == len(columns)
    # the operating point, from ensemble.json, measured with mirrored faces too
    assert "## Operating point" in text and op.mirror is True and report["operating_point"]["mirror"] is True
    assert "each face scored as it is and mirrored" in text
    op_row = next(line for line in lines if line.startswith(f"| {op.threshold:.4f} | {op.band:.4f} |") and
                  "validation" in line)
    assert f"{100 * op.val.fpr:.1f}%" in op_row and f"{100 * op.val.tpr:.1f}%" in op_row
    assert any(line.startswith(f"| {op.threshold:.4f} |") and "| test |" in line for line in lines)
    # the clips
    assert "## Clips" in text
    clip = next(line for line in lines if line.startswith("| 519_515.mp4 |"))
    assert "0.812" in clip and "FAKE" in clip and "| yes |" in clip and "0.610" in clip
    unknown = next(line for line in lines if line.startswith("| lynaeydofd.mp4 |"))
    assert "| unknown |" in unknown and "| – |" in unknown
    # the baseline beside each detector's test AUC per source
    card = (models / "swin" / "MODEL_CARD.md").read_text()
    assert "| source | val AUC | test AUC | baseline test AUC |" in card
    assert any(line.startswith("| sdfd |") and line.endswith("| 0.700 |") for line in card.splitlines())
    assert "| **all** |" in card and "0.857" in card

    # a detector's own probe (NAME=PATH) beside that detector only, and as one more row of the summary
    own = {**baseline, "name": "frozen ImageNet Lite2 features + logistic regression",
           "test_auc_by_source": {"dfdc": 0.66, "ffhq_stylegan2": 0.84, "sdfd": 0.9}, "test_auc": 0.69}
    (tmp_path / "lite2.json").write_text(json.dumps(own))
    assert main(["--models", str(models), "--eval", str(tmp_path / "report.json"), "--baseline",
                 str(tmp_path / "probe.json"), "--baseline", f"swin={tmp_path / 'lite2.json'}"]) == 0
    assert "Lite2" in (models / "swin" / "MODEL_CARD.md").read_text()
    assert "Lite2" not in (models / "xception" / "MODEL_CARD.md").read_text()
    rows = [line for line in (models / "ENSEMBLE.md").read_text().splitlines() if line.startswith("| baseline:")]
    assert len(rows) == 2 and "0.690" in rows[1]

    # without a baseline: no baseline row, no baseline column
    (models / "ensemble.json").unlink()
    assert main(["--models", str(models), "--eval", str(tmp_path / "report.json")]) == 0
    text = (models / "ENSEMBLE.md").read_text()
    assert "baseline" not in text and "## Operating point" not in text and "AUC sdfd" not in text
    assert "baseline" not in (models / "swin" / "MODEL_CARD.md").read_text()


def test_bad_baseline_or_operating_point_is_a_one_line_error(tiny_models_dir, tmp_path, capsys):
    models = tmp_path / "models"
    shutil.copytree(tiny_models_dir, models)
    (tmp_path / "probe.json").write_text(json.dumps({"name": "probe", "test_auc_by_source": {"dfdc": 1.4}}))
    assert main(["--models", str(models), "--baseline", str(tmp_path / "probe.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "test_auc_by_source" in err and "\n" not in err
    (models / "ensemble.json").write_text('{"threshold": 2}')
    assert main(["--models", str(models)]) == 2
    err = capsys.readouterr().err.strip()
    assert "ensemble.json" in err and "\n" not in err


def test_frozen_prefix_recipe_names_its_extra_views():
    from train.model_card import _recipe

    training = {"recipe": "frozen-prefix fine-tuning on cached features", "frozen_up_to": "block11",
                "best_epoch": 9, "args": {"epochs": 10, "samples_per_epoch": 4000, "lr": 3e-4, "head_lr_mult": 5,
                                          "batch_size": 64, "augment_fraction": 0.5, "balance": 0.5},
                "train_rows": {"sbi": 1500, "reframed": 0, "context": 1.0}}
    text = _recipe(training)
    assert "1500 self-blended pseudo-fakes" in text and "re-framed" not in text
    assert "100 % of training crops added once more with the black frame" in text
    older = _recipe({**training, "train_rows": {"sbi": 1500, "reframed": 0.5}})   # runs from before the option
    assert "50 % of training crops added once more re-framed" in older and "black frame" not in older
