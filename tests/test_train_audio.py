"""train/train_audio.py's held-out-experiment check (leave one cloning experiment out, speaker-grouped) and its
rows in the audio model card, on tiny synthetic speech."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.audio.decode import AudioLimits
from audio_fixtures import speech_like
from detectors.audio_registry import get_audio_spec
from train.audio_card import render_audio_card
from train.train_audio import (AudioTrainConfig, Clip, experiment_fold, heldout_experiments, logmel_stats,
                               split_by_group)

SPEAKERS = 10
EXPERIMENTS = ("Exp.1", "Exp.2")


def synthetic_clips() -> list[Clip]:
    """Per speaker two reals and one fake from each experiment."""
    clips = []
    for s in range(SPEAKERS):
        clips += [Clip(f"s{s}_real{k}", 0, f"g{s}", "en", "ground truth") for k in range(2)]
        clips += [Clip(f"s{s}_{e}", 1, f"g{s}", "en", e) for e in EXPERIMENTS]
    return clips


def synthetic_waves(clips: list[Clip], seconds: float = 4.0) -> list[np.ndarray]:
    """Speech-like clips; fakes carry a faint high hiss, a cue a detector can learn."""
    rng = np.random.default_rng(1)
    waves = []
    for i, c in enumerate(clips):
        x = speech_like(seconds, seed=i)
        if c.label:
            x = x + 0.02 * np.diff(rng.standard_normal(len(x) + 1)).astype(np.float32)
        waves.append(x.astype(np.float32))
    return waves


def test_experiment_fold_leaves_its_fakes_out_of_training_and_tests_only_on_them():
    clips = synthetic_clips()
    split = split_by_group(clips, 0.2, 0.2, seed=0)
    fold = experiment_fold(clips, split, "Exp.1")
    assert fold is not None
    held = lambda idx: [i for i in idx if clips[i].source == "Exp.1"]   # noqa: E731
    assert held(fold.train) == [] and held(fold.val) == []
    assert any(clips[i].source == "Exp.2" for i in fold.train)               # the other experiment still trains
    assert {clips[i].source for i in fold.test} == {"ground truth", "Exp.1"}
    assert set(fold.test) == {i for i in split.test if clips[i].source in ("ground truth", "Exp.1")}
    groups = lambda idx: {clips[i].group for i in idx}   # noqa: E731
    assert not groups(fold.test) & (groups(fold.train) | groups(fold.val))   # unseen speakers
    assert experiment_fold(clips, split, "Exp.9") is None                  # no such fakes: nothing to test


@pytest.mark.timeout(600)
def test_heldout_experiments_and_their_card_rows():
    clips = synthetic_clips()
    waves = synthetic_waves(clips)
    split = split_by_group(clips, 0.2, 0.2, seed=0)
    spec = get_audio_spec("audio_cnn")
    limits = AudioLimits(window_seconds=spec.window_seconds, hop_seconds=spec.window_seconds / 2)
    cfg = AudioTrainConfig(cross_epochs=1, batch_size=8, holdout_experiments="Exp.1, Exp.9", mlflow=False)
    result = heldout_experiments(clips, waves, {i: [waves[i]] for i in split.train}, logmel_stats(waves), split,
                                 cfg, limits)
    assert list(result) == ["Exp.1", "Exp.9"]
    exp1 = result["Exp.1"]
    test_speakers = {clips[i].group for i in split.test}
    assert exp1["test_fakes"] == len(test_speakers) and exp1["test_reals"] == 2 * len(test_speakers)
    assert exp1["trained_on"] == sum(1 for i in split.train if clips[i].source != "Exp.1")
    for key in ("cnn_auc", "cnn_auc_codec", "baseline_auc"):
        assert 0.0 <= exp1[key] <= 1.0, key
    assert exp1["baseline_auc"] > 0.9   # the hiss is plain in log-mel statistics: the fold really tests fakes
    assert "skipped" in result["Exp.9"]

    card = render_audio_card(card_report(result))
    row = next(line for line in card.splitlines() if line.startswith("| Exp.1 |") and " / " in line)
    assert row.split(" | ")[1:4] == [f"{exp1['test_fakes']} / {exp1['test_reals']}", "0.990", f"{exp1['cnn_auc']:.3f}"]
    assert "| Exp.9 | – | n/a | not run:" in card


def card_report(heldout: dict) -> dict:
    """The smallest report render_audio_card takes, around `heldout`."""
    cnn = {"val_auc": 0.9, "test_auc": 0.9, "test_auc_codec": 0.8, "test_auc_by_source": {"Exp.1": 0.99}}
    return {"detector": "audio_cnn", "architecture": "cnn", "parameters": 1000, "temperature": 1.0,
            "config": {"epochs": 1, "lr": 0.001, "variants": 0, "threads": 1, "cross_epochs": 1},
            "split": {"train": 1, "val": 1, "test": 1}, "train_minutes": 0.1, "cnn": cnn,
            "baseline": {"val_auc": 0.7, "test_auc": 0.7, "test_auc_codec": 0.6}, "cross_source": {},
            "heldout_experiments": heldout, "val_auc_by_source": {"Exp.1": 0.9},
            "timing": {"track_seconds": 60, "windows": 29, "score_seconds": 0.1, "threads": 1}}


def finished_run(tmp_path: Path) -> dict:
    """A data folder of the synthetic clips and the report of a finished run on it (no held-out folds yet)."""
    from audio_fixtures import write
    clips = synthetic_clips()
    data = tmp_path / "audio"
    data.mkdir()
    rows = ["path,label,group,language,source"]
    for clip, wave in zip(clips, synthetic_waves(clips)):
        write(data / f"{clip.path}.wav", wave)
        rows.append(f"{clip.path}.wav,{'fake' if clip.label else 'real'},{clip.group},en,{clip.source}")
    (data / "manifest.csv").write_text("\n".join(rows) + "\n")
    split = split_by_group(clips, 0.2, 0.2, seed=0)
    report = card_report({})
    report["config"] = {**vars(AudioTrainConfig(data=str(data), val_share=0.2, test_share=0.2, variants=0,
                                                cross_epochs=1, batch_size=8)), "retired_option": 1}
    report["speakers"] = {k: sorted({clips[i].group for i in getattr(split, k)}) for k in ("train", "val", "test")}
    return report


def test_audio_heldout_adds_the_check_to_a_finished_run(tmp_path):
    """train.audio_heldout on a run's report: the same speakers, the folds measured, the card written again."""
    from train.audio_heldout import main
    report = finished_run(tmp_path)
    path, card = tmp_path / "audio_report.json", tmp_path / "audio_cnn"
    path.write_text(json.dumps(report))
    card.mkdir()
    main(["--report", str(path), "--experiments", "Exp.2", "--card", str(card)])
    result = json.loads(path.read_text())["heldout_experiments"]
    assert list(result) == ["Exp.2"] and result["Exp.2"]["test_fakes"] == len(report["speakers"]["test"])
    assert "| Exp.2 | 2 / 4 |" in (card / "MODEL_CARD.md").read_text()

    report["speakers"]["test"] = ["someone else"]
    path.write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="no longer splits into the run's speakers"):
        main(["--report", str(path), "--experiments", "Exp.2"])


@pytest.mark.timeout(600)
def test_audio_heldout_in_pieces_gives_the_whole_runs_folds(tmp_path):
    """--only runs a subset with the seeds of the whole list, --resume skips measured folds; results are merged."""
    from train.audio_heldout import main
    report = finished_run(tmp_path)
    whole, piece = tmp_path / "whole.json", tmp_path / "piece.json"
    whole.write_text(json.dumps(report))
    piece.write_text(json.dumps(report))
    main(["--report", str(whole), "--experiments", "Exp.1,Exp.2"])
    full = json.loads(whole.read_text())["heldout_experiments"]
    main(["--report", str(piece), "--experiments", "Exp.1,Exp.2", "--only", "Exp.2"])
    assert json.loads(piece.read_text())["heldout_experiments"] == {"Exp.2": full["Exp.2"]}
    main(["--report", str(piece), "--experiments", "Exp.1,Exp.2", "--resume"])    # only Exp.1 is left to run
    merged = json.loads(piece.read_text())
    assert merged["heldout_experiments"] == full and list(merged["heldout_experiments"]) == ["Exp.1", "Exp.2"]
    assert merged["config"]["holdout_experiments"] == "Exp.1,Exp.2"
    with pytest.raises(SystemExit, match="--only names Exp.7"):
        main(["--report", str(piece), "--experiments", "Exp.1,Exp.2", "--only", "Exp.7"])


def test_card_compares_another_architecture_on_the_same_split(tmp_path):
    from train.audio_card import add_comparison, main
    fold = {"trained_on": 10, "test_reals": 4, "test_fakes": 2, "cnn_auc": 0.95, "cnn_auc_codec": 0.9,
            "baseline_auc": 0.7}
    own = {**card_report({"Exp.1": fold}), "speakers": {"train": ["a"], "val": ["b"], "test": ["c"]}}
    other = {**card_report({"Exp.1": {**fold, "cnn_auc": 0.875}}), "speakers": own["speakers"],
             "detector": "audio_lite0", "architecture": "lite0-arch", "command": "python -m train.train_audio --x 1"}
    other["cnn"] = {**other["cnn"], "test_auc": 0.625}
    card = render_audio_card(add_comparison(json.loads(json.dumps(own)), other))
    assert "## ImageNet start on spectrograms, measured" in card and "python -m train.train_audio --x 1" in card
    row = next(line for line in card.splitlines() if line.startswith("| audio_lite0 |"))
    assert "| 0.625 |" in row and "| 0.875 |" in row
    assert "ImageNet start" not in render_audio_card(own)
    with pytest.raises(SystemExit, match="other speakers"):
        add_comparison(own, {**other, "speakers": {"train": ["z"]}})

    paths = tmp_path / "own.json", tmp_path / "other.json"
    for path, r in zip(paths, (own, other)):
        path.write_text(json.dumps(r))
    (tmp_path / "audio_cnn").mkdir()
    main(["--report", str(paths[0]), "--compare", str(paths[1]), "--card", str(tmp_path / "audio_cnn")])
    assert "audio_lite0" in json.loads(paths[0].read_text())["comparisons"]
    assert "| audio_lite0 |" in (tmp_path / "audio_cnn" / "MODEL_CARD.md").read_text()


def test_command_line_names_what_differs_from_the_defaults():
    from train.train_audio import command_line
    cfg = AudioTrainConfig(name="audio_lite0", lr=1e-3, mlflow=False, holdout_experiments="Exp.1")
    assert command_line(cfg) == ("python -m train.train_audio --name audio_lite0 --lr 0.001 "
                                 "--holdout-experiments Exp.1 --no-mlflow")
