"""The held-out-experiment check of train/train_audio.py for a finished run, without training its model again:
the run's clips, speaker split, augmented copies and seeds are made again from its audio_report.json, one model
per held-out cloning experiment is trained, and the results go into the report (and, with --card, into the
MODEL_CARD.md beside the run's weights; the weights are not touched).

  python -m train.audio_heldout --report runs/audio/audio_report.json --card converted_models/audio_cnn

The report is written after every fold and results are merged into the folds it already holds, so a run can be
split (`--only Exp.1,Exp.2`) or continued (`--resume` skips the folds already measured); a fold's seed is its
place in the whole list of experiments, so the pieces give the numbers one whole run would.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from analysis.audio.decode import AudioLimits
from detectors.audio_registry import get_audio_spec
from train.audio_card import write_audio_card
from train.train_audio import (AudioTrainConfig, augmented_copies, decode, experiment_names, heldout_experiments,
                               logmel_stats, read_clips, split_by_group)


def run_config(report: dict[str, Any], data: str | None, experiments: str | None, threads: int) -> AudioTrainConfig:
    known = AudioTrainConfig.__dataclass_fields__
    cfg = AudioTrainConfig(**{k: v for k, v in report["config"].items() if k in known})
    return replace(cfg, data=data or cfg.data, threads=threads, mlflow=False, save=False,
                   holdout_experiments=cfg.holdout_experiments if experiments is None else experiments)


def check_same_split(report: dict[str, Any], speakers: dict[str, list[str]]) -> None:
    """The folds are only comparable with the run's own numbers on the run's own speakers."""
    if report.get("speakers") and report["speakers"] != speakers:
        raise SystemExit("the data no longer splits into the run's speakers (was the manifest changed?): "
                         "train the model again with python -m train.train_audio instead")


def folds_to_run(cfg: AudioTrainConfig, done: dict[str, Any], only: str | None, resume: bool) -> list[str]:
    names = experiment_names(cfg)
    chosen = names if only is None else [e.strip() for e in only.split(",") if e.strip()]
    unknown = [e for e in chosen if e not in names]
    if unknown:
        raise SystemExit(f"--only names {', '.join(unknown)}, not in the experiments {', '.join(names)}")
    return [e for e in chosen if not (resume and e in done and not done[e].get("skipped"))]


def measure(report: dict[str, Any], cfg: AudioTrainConfig, only: list[str] | None = None,
            on_result: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    torch.set_num_threads(cfg.threads)
    spec = get_audio_spec(cfg.name)
    limits = AudioLimits(window_seconds=spec.window_seconds, hop_seconds=spec.window_seconds / 2)
    clips = read_clips(Path(cfg.data), cfg.max_clips, cfg.seed)
    split = split_by_group(clips, cfg.val_share, cfg.test_share, cfg.seed)
    check_same_split(report, {k: sorted({clips[i].group for i in getattr(split, k)}) for k in ("train", "val", "test")})
    waves = [decode(c.path) for c in clips]
    variants = augmented_copies(waves, split.train, cfg)
    return heldout_experiments(clips, waves, variants, logmel_stats(waves), split, cfg, limits, only=only,
                               on_result=on_result)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default="runs/audio/audio_report.json", help="the run's audio_report.json")
    parser.add_argument("--data", default=None, help="the audio data folder (default: the run's)")
    parser.add_argument("--experiments", default=None,
                        help="comma-separated experiments to hold out one at a time (default: train_audio's)")
    parser.add_argument("--only", default=None, help="run only these of the experiments (comma-separated)")
    parser.add_argument("--resume", action="store_true", help="skip the experiments the report already measured")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="where the report goes (default: over --report)")
    parser.add_argument("--card", default=None, help="a detector folder whose MODEL_CARD.md is written again")
    args = parser.parse_args(argv)
    path = Path(args.report)
    report = json.loads(path.read_text())
    cfg = run_config(report, args.data, args.experiments, args.threads)
    names = experiment_names(cfg)
    done = {e: r for e, r in (report.get("heldout_experiments") or {}).items() if e in names}
    todo = folds_to_run(cfg, done, args.only, args.resume)
    out = Path(args.out or path)
    started, minutes_before = time.time(), float(report.get("heldout_minutes") or 0.0)

    def save(experiment: str, result: dict[str, Any]) -> None:
        done[experiment] = result
        report["heldout_experiments"] = {e: done[e] for e in names if e in done}
        report["config"]["holdout_experiments"] = cfg.holdout_experiments
        report["heldout_minutes"] = round(minutes_before + (time.time() - started) / 60, 1)
        out.write_text(json.dumps(report, indent=2) + "\n")
        if args.card:
            write_audio_card(args.card, report)

    if todo:
        measure(report, cfg, only=todo, on_result=save)
    else:
        print("every requested fold is measured already", flush=True)
    if args.card:
        write_audio_card(args.card, report)
        print(f"wrote {Path(args.card) / 'MODEL_CARD.md'}", flush=True)
    print(json.dumps(report.get("heldout_experiments", {}), indent=1), flush=True)
    return report


if __name__ == "__main__":
    main()
