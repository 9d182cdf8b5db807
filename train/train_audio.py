"""Train the audio detector (python -m train.train_audio), grouped by speaker, tracked in MLflow.

  * data: `<data>/manifest.csv` (path,label,group,language,source); every clip decoded by the app's own
    `analysis.audio` (16 kHz mono) and scored like the app scores a file: windows of the detector's length over
    the clip, voice activity, the mean logit of its speech windows;
  * split: whole speakers (`group`) go to train, validation or test, so no voice is in two of them;
  * augmentation (train/audio_augment.py): `--variants` augmented copies of every training clip are made once
    (codec round trips, resampling, noise, gain, band limits, reverberation), plus SpecAugment masks in the model;
  * the baseline beside it: log-mel statistics (per-band mean and standard deviation, and of the deltas) and a
    logistic regression, on the same split;
  * a cross-source check: the CNN and the baseline trained again without a whole language (`--holdout-language`)
    and tested on it;
  * a held-out-experiment check: for each cloning experiment of `--holdout-experiments`, the CNN and the baseline
    trained again without that experiment's fakes and tested on the test speakers' reals against their fakes from
    that experiment (an unseen cloning set-up, unseen speakers);
  * output: the artifact `<models>/<name>/` (safetensors, manifest with temperature and per-source validation
    AUCs for the gate, model card MODEL_CARD.md) and `<out>/audio_report.json`.
Run on the CPU with `--threads 1` when the machine is shared.
"""
from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from analysis.audio.decode import SAMPLE_RATE, AudioLimits, AudioSegment, AudioTrack, load_audio
from analysis.audio.engine import aggregate_logits
from analysis.audio.windows import make_windows
from detectors.audio_artifacts import save_audio_artifact
from detectors.audio_models import LogMel
from detectors.audio_registry import audio_detector_names, build_audio_model, get_audio_spec
from train.audio_augment import augment, round_trip
from train.audio_card import write_audio_card
from train.calibration import fit_temperature
from train.metrics import roc_auc
from train.tracking import Tracker

LABELS = {"real": 0, "fake": 1}


@dataclass
class AudioTrainConfig:
    data: str = "../shared/data/audio"
    name: str = "audio_cnn"
    out: str = "runs/audio"
    models_dir: str = "converted_models"
    epochs: int = 14
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    variants: int = 3                 # augmented copies of every training clip
    val_share: float = 0.15
    test_share: float = 0.15
    seed: int = 0
    threads: int = 1
    holdout_language: str = "pt"      # "" skips the cross-source check
    cross_epochs: int = 8
    holdout_experiments: str = "Exp.1,Exp.2,Exp.3,Exp.4,Exp.5,Exp.6"   # one fold each, comma-separated; "" skips
    max_clips: int = 0                # 0 = all (tests use a few)
    mlflow: bool = True
    save: bool = True


@dataclass
class Clip:
    path: str
    label: int
    group: str
    language: str
    source: str


@dataclass
class Split:
    train: list[int] = field(default_factory=list)
    val: list[int] = field(default_factory=list)
    test: list[int] = field(default_factory=list)


def read_clips(root: Path, max_clips: int = 0, seed: int = 0) -> list[Clip]:
    path = root / "manifest.csv"
    if not path.is_file():
        raise SystemExit(f"no manifest.csv in {root}")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    bad = [r.get("label") for r in rows if r.get("label") not in LABELS]
    if bad:
        raise SystemExit(f"{path}: labels must be real or fake, found {bad[0]!r}")
    clips = [Clip(str(root / r["path"]), LABELS[r["label"]], r["group"], r.get("language", ""),
                  r.get("source", "")) for r in rows]
    if max_clips and len(clips) > max_clips:
        rng = np.random.default_rng(seed)
        clips = [clips[i] for i in sorted(rng.choice(len(clips), max_clips, replace=False))]
    return clips


def split_by_group(clips: list[Clip], val_share: float, test_share: float, seed: int) -> Split:
    """Whole groups (speakers) to test, then validation, then train; retried with other seeds until validation
    and test both hold reals and fakes."""
    groups = sorted({c.group for c in clips})
    for attempt in range(100):
        order = list(np.random.default_rng(seed + attempt).permutation(groups))
        split, counts = Split(), {"test": 0, "val": 0}
        targets = {"test": test_share * len(clips), "val": val_share * len(clips)}
        where: dict[str, str] = {}
        for g in order:
            size = sum(c.group == g for c in clips)
            part = next((p for p in ("test", "val") if counts[p] < targets[p]), "train")
            if part != "train":
                counts[part] += size
            where[g] = part
        for i, c in enumerate(clips):
            getattr(split, where[c.group]).append(i)
        labels = lambda idx: {clips[i].label for i in idx}   # noqa: E731
        if labels(split.val) == {0, 1} and labels(split.test) == {0, 1} and labels(split.train) == {0, 1}:
            return split
    raise SystemExit("cannot split the groups so that train, validation and test hold both classes")


def decode(path: str) -> np.ndarray:
    return np.concatenate([s.samples for s in load_audio(path).segments])


def clip_windows(x: np.ndarray, limits: AudioLimits) -> np.ndarray:
    """The windows the app would score for this clip: its speech windows (all windows when none is speech)."""
    windows = make_windows(AudioTrack(segments=[AudioSegment(0.0, x)], duration=len(x) / SAMPLE_RATE,
                                      source_rate=SAMPLE_RATE, channels=1, codec=None), limits)
    speech = [w.samples for w in windows if w.speech] or [w.samples for w in windows]
    return np.stack(speech)


def clip_logits(model: nn.Module, waves: list[np.ndarray], limits: AudioLimits, batch: int = 64) -> np.ndarray:
    """One logit per clip, aggregated over its windows by the app's own function (analysis.audio.engine)."""
    windows = [clip_windows(x, limits) for x in waves]
    flat = np.concatenate(windows)
    out = np.empty(len(flat), np.float32)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(flat), batch):
            out[s:s + batch] = model(torch.from_numpy(flat[s:s + batch])).reshape(-1).numpy()
    ends = np.cumsum([len(w) for w in windows])
    return np.array([aggregate_logits(out[e - len(w):e]) for w, e in zip(windows, ends)], np.float32)


def augmented_copies(waves: list[np.ndarray], train: list[int], cfg: AudioTrainConfig) -> dict[int, list[np.ndarray]]:
    """Each training clip and cfg.variants augmented copies of it (seeded: train.audio_heldout makes them again)."""
    rng = np.random.default_rng(cfg.seed + 1)
    return {i: [waves[i]] + [augment(waves[i], rng) for _ in range(cfg.variants)] for i in train}


def random_crop(x: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(x) <= size:
        off = int(rng.integers(0, size - len(x) + 1))
        return np.pad(x, (off, size - len(x) - off))
    s = int(rng.integers(0, len(x) - size + 1))
    return x[s:s + size]


def train_cnn(variants: list[list[np.ndarray]], labels: np.ndarray, val_waves: list[np.ndarray],
              val_labels: np.ndarray, cfg: AudioTrainConfig, epochs: int, limits: AudioLimits,
              tracker: Tracker | None = None, prefix: str = "") -> tuple[nn.Module, list[dict[str, float]]]:
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build_audio_model(cfg.name, pretrained=get_audio_spec(cfg.name).imagenet_start)
    size = int(round(limits.window_seconds * SAMPLE_RATE))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(1, epochs * steps_per_epoch),
                                                pct_start=0.15)
    pos_weight = torch.tensor([(labels == 0).sum() / max(1, (labels == 1).sum())], dtype=torch.float32)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history = []
    for epoch in range(epochs):
        model.train()
        t0, total = time.time(), 0.0
        order = rng.permutation(len(labels))
        for s in range(0, len(order), cfg.batch_size):
            idx = order[s:s + cfg.batch_size]
            batch = np.stack([random_crop(variants[i][int(rng.integers(len(variants[i])))], size, rng) for i in idx])
            y = torch.from_numpy(labels[idx].astype(np.float32))
            loss = loss_fn(model(torch.from_numpy(batch)).reshape(-1), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        val_auc = roc_auc(val_labels, clip_logits(model, val_waves, limits))
        row = {"epoch": epoch + 1, "train_loss": total / len(labels), "val_auc": float(val_auc),
               "seconds": time.time() - t0}
        history.append(row)
        print(f"{prefix}epoch {epoch + 1}/{epochs} loss {row['train_loss']:.4f} val AUC {val_auc:.4f} "
              f"({row['seconds']:.0f} s)", flush=True)
        if tracker:
            tracker.log_metrics({f"{prefix}train_loss": row["train_loss"], f"{prefix}val_auc": val_auc},
                                step=epoch + 1)
        if best is None or val_auc >= best[0]:
            best = (val_auc, copy.deepcopy(model.state_dict()))
    assert best is not None
    model.load_state_dict(best[1])
    model.eval()
    return model, history


# ---------------------------------------------------------------------------------------------- the baseline
def logmel_stats(waves: list[np.ndarray]) -> np.ndarray:
    """Per-band mean and standard deviation of the (unstandardised) log-mel, and the deltas' standard deviation."""
    front = LogMel()
    feats = []
    with torch.inference_mode():
        for x in waves:
            w = torch.from_numpy(np.asarray(x, np.float32))[None]
            spec = torch.stft(w, front.n_fft, front.hop_length, front.win_length, front.window,
                              return_complex=True).abs().pow(2)
            mel = torch.log(torch.matmul(front.fb, spec) + 1e-8)[0].numpy()      # (M, T)
            mel = mel - mel.mean()                                                # level-free
            delta = np.diff(mel, axis=1)
            feats.append(np.concatenate([mel.mean(1), mel.std(1), delta.std(1)]))
    return np.stack(feats)


def baseline_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: list[np.ndarray]) -> list[np.ndarray]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced"))
    clf.fit(train_x, train_y)
    return [clf.decision_function(x) for x in test_x]


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    return float(roc_auc(y, s)) if len(set(np.asarray(y).tolist())) == 2 else None


def per_source_auc(clips: list[Clip], idx: list[int], scores: np.ndarray) -> dict[str, float | None]:
    """Each fake source against all the reals of the same set."""
    y = np.array([clips[i].label for i in idx])
    sources = sorted({clips[i].source for i in idx if clips[i].label == 1})
    out = {}
    for src in sources:
        keep = np.array([clips[i].label == 0 or clips[i].source == src for i in idx])
        out[src] = _auc(y[keep], scores[keep])
    return out


# ------------------------------------------------------------------------------- held-out cloning experiments
def experiment_fold(clips: list[Clip], split: Split, experiment: str) -> Split | None:
    """The speaker-grouped split without `experiment`'s fakes in train and validation, tested on the test
    speakers' reals and their fakes from `experiment`. None when a part then lacks a class."""
    def without(idx: list[int]) -> list[int]:
        return [i for i in idx if not (clips[i].label == 1 and clips[i].source == experiment)]

    fold = Split(train=without(split.train), val=without(split.val),
                 test=[i for i in split.test if clips[i].label == 0 or clips[i].source == experiment])
    if any({clips[i].label for i in idx} != {0, 1} for idx in (fold.train, fold.val, fold.test)):
        return None
    return fold


def experiment_names(cfg: AudioTrainConfig) -> list[str]:
    return [e.strip() for e in cfg.holdout_experiments.split(",") if e.strip()]


def heldout_experiments(clips: list[Clip], waves: list[np.ndarray], variants: dict[int, list[np.ndarray]],
                        feats: np.ndarray, split: Split, cfg: AudioTrainConfig, limits: AudioLimits,
                        tracker: Tracker | None = None, only: Collection[str] | None = None,
                        on_result: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, dict[str, Any]]:
    """One fold per experiment of cfg.holdout_experiments: the CNN (cfg.cross_epochs) and the baseline trained
    without its fakes, their AUC on its fakes against the test speakers' reals (clean, and the CNN after MP3).

    `only` runs a subset; a fold's seed is its place in the whole list, so a subset gives the numbers the whole
    run would. `on_result(experiment, result)` is called after each fold (train.audio_heldout saves there)."""
    y = np.array([c.label for c in clips])
    out: dict[str, dict[str, Any]] = {}
    for k, experiment in enumerate(experiment_names(cfg)):
        if only is not None and experiment not in only:
            continue
        fold = experiment_fold(clips, split, experiment)
        if fold is None:
            out[experiment] = {"skipped": "train, validation or test would lack reals or fakes without it"}
            if on_result:
                on_result(experiment, out[experiment])
            continue
        model, _ = train_cnn([variants[i] for i in fold.train], y[fold.train], [waves[i] for i in fold.val],
                             y[fold.val], replace(cfg, seed=cfg.seed + 20 + k), cfg.cross_epochs, limits, tracker,
                             prefix=f"{experiment}_out_")
        test_w, test_y = [waves[i] for i in fold.test], y[fold.test]
        (b_test,) = baseline_scores(feats[fold.train], y[fold.train], [feats[fold.test]])
        out[experiment] = {"trained_on": len(fold.train), "test_reals": int((test_y == 0).sum()),
                           "test_fakes": int((test_y == 1).sum()),
                           "cnn_auc": _auc(test_y, clip_logits(model, test_w, limits)),
                           "cnn_auc_codec": _auc(test_y, clip_logits(model, [mp3_32k(x) for x in test_w], limits)),
                           "baseline_auc": _auc(test_y, b_test)}
        print(f"held out {experiment}: {json.dumps(out[experiment])}", flush=True)
        if on_result:
            on_result(experiment, out[experiment])
    return out


def command_line(cfg: AudioTrainConfig) -> str:
    """The command that trains this run again: the options that differ from the defaults."""
    parts = ["python -m train.train_audio"]
    for f in AudioTrainConfig.__dataclass_fields__.values():
        value, flag = getattr(cfg, f.name), f"--{f.name.replace('_', '-')}"
        if value == f.default:
            continue
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{flag[2:]}")
        else:
            parts.append(f"{flag} {value}" if str(value) and " " not in str(value) else f"{flag} '{value}'")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in AudioTrainConfig.__dataclass_fields__.values():
        default = f.default
        if isinstance(default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction,
                                default=default)
        else:
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    cfg = AudioTrainConfig(**vars(parser.parse_args(argv)))
    if cfg.name not in audio_detector_names():
        raise SystemExit(f"unknown audio detector {cfg.name!r}; known: {', '.join(audio_detector_names())}")
    torch.set_num_threads(cfg.threads)
    spec = get_audio_spec(cfg.name)
    limits = AudioLimits(window_seconds=spec.window_seconds, hop_seconds=spec.window_seconds / 2)
    started = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(enabled=cfg.mlflow, experiment="audio-detectors")
    run_id = tracker.start(run_name=f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}", tags={"modality": "audio"})
    tracker.log_params(asdict(cfg))

    clips = read_clips(Path(cfg.data), cfg.max_clips, cfg.seed)
    waves = [decode(c.path) for c in clips]
    y = np.array([c.label for c in clips])
    split = split_by_group(clips, cfg.val_share, cfg.test_share, cfg.seed)
    print(f"{len(clips)} clips, {len({c.group for c in clips})} speakers: train {len(split.train)}, "
          f"val {len(split.val)}, test {len(split.test)}", flush=True)
    t0 = time.time()
    variants = augmented_copies(waves, split.train, cfg)
    print(f"augmented copies made in {time.time() - t0:.0f} s", flush=True)

    def subset(idx: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
        return [waves[i] for i in idx], y[idx]

    val_w, val_y = subset(split.val)
    test_w, test_y = subset(split.test)
    model, history = train_cnn([variants[i] for i in split.train], y[split.train], val_w, val_y, cfg, cfg.epochs,
                               limits, tracker)
    val_logits = clip_logits(model, val_w, limits)
    temperature = fit_temperature(val_logits, val_y)
    mp3 = lambda xs: [mp3_32k(x) for x in xs]   # noqa: E731
    test_mp3 = mp3(test_w)
    val_mp3 = mp3(val_w)
    test_logits = clip_logits(model, test_w, limits)
    cnn = {"val_auc": _auc(val_y, val_logits), "test_auc": _auc(test_y, test_logits),
           "test_auc_codec": _auc(test_y, clip_logits(model, test_mp3, limits)),
           "val_auc_codec": _auc(val_y, clip_logits(model, val_mp3, limits)),
           "test_auc_by_source": per_source_auc(clips, split.test, test_logits)}
    val_by_source = per_source_auc(clips, split.val, val_logits)
    val_by_source["all sources after a codec round trip"] = cnn["val_auc_codec"]

    feats = logmel_stats(waves)
    b_test, b_val, b_codec = baseline_scores(feats[split.train], y[split.train],
                                             [feats[split.test], feats[split.val], logmel_stats(test_mp3)])
    baseline = {"val_auc": _auc(val_y, b_val), "test_auc": _auc(test_y, b_test),
                "test_auc_codec": _auc(test_y, b_codec)}

    # The report is written after every stage, so a run stopped in its checks keeps what it measured.
    report: dict[str, Any] = {
        "detector": cfg.name, "architecture": spec.architecture, "config": asdict(cfg), "command": command_line(cfg),
        "run_id": run_id, "split": {k: len(v) for k, v in asdict(split).items()},
        "speakers": {k: sorted({clips[i].group for i in v}) for k, v in asdict(split).items()},
        "temperature": temperature, "cnn": cnn, "baseline": baseline, "cross_source": {}, "heldout_experiments": {},
        "val_auc_by_source": val_by_source, "history": history, "timing": time_track(model, limits),
        "parameters": sum(p.numel() for p in model.parameters()), "train_minutes": None}

    def write_report() -> None:
        report["train_minutes"] = round((time.time() - started) / 60, 1)
        (out / "audio_report.json").write_text(json.dumps(report, indent=2) + "\n")

    write_report()
    cross: dict[str, Any] = report["cross_source"]
    if cfg.holdout_language:
        held = [i for i, c in enumerate(clips) if c.language == cfg.holdout_language]
        keep = [i for i in split.train if clips[i].language != cfg.holdout_language]
        keep_val = [i for i in split.val if clips[i].language != cfg.holdout_language]
        if held and len({clips[i].label for i in held}) == 2 and keep_val:
            cross_cfg = replace(cfg, seed=cfg.seed + 10)
            cross_model, _ = train_cnn([variants[i] for i in keep], y[keep], [waves[i] for i in keep_val],
                                       y[keep_val], cross_cfg, cfg.cross_epochs, limits, tracker, prefix="cross_")
            held_w, held_y = subset(held)
            (b_held,) = baseline_scores(feats[keep], y[keep], [feats[held]])
            cross.update({"held_out": f"language {cfg.holdout_language}", "trained_on": len(keep),
                          "tested_on": len(held), "cnn_auc": _auc(held_y, clip_logits(cross_model, held_w, limits)),
                          "cnn_auc_codec": _auc(held_y, clip_logits(cross_model, mp3(held_w), limits)),
                          "baseline_auc": _auc(held_y, b_held)})
            write_report()

    by_experiment: dict[str, dict[str, Any]] = report["heldout_experiments"]

    def fold_done(experiment: str, result: dict[str, Any]) -> None:
        by_experiment[experiment] = result
        write_report()

    heldout_experiments(clips, waves, variants, feats, split, cfg, limits, tracker, on_result=fold_done)
    tracker.log_metrics({"val_auc": cnn["val_auc"], "test_auc": cnn["test_auc"],
                         "test_auc_codec": cnn["test_auc_codec"], "baseline_test_auc": baseline["test_auc"],
                         "cross_cnn_auc": cross.get("cnn_auc"), "cross_baseline_auc": cross.get("baseline_auc"),
                         "temperature": temperature,
                         **{f"{e}_out_cnn_auc": r.get("cnn_auc") for e, r in by_experiment.items()}})
    write_report()
    tracker.log_artifact(out / "audio_report.json")
    if cfg.save:
        folder = save_audio_artifact(
            model, cfg.name, cfg.models_dir, temperature=temperature, threshold=0.5, run_id=run_id,
            training={"data": "YourTTS demo speech (shared/data/audio), grouped by speaker",
                      "epochs": cfg.epochs, "augmentation": "codec round trips (MP3, AAC, Opus), resampling, "
                      "noise, gain, band limits, reverberation, SpecAugment", "split": report["split"],
                      "speakers": report["speakers"]},
            metrics={"val_auc": cnn["val_auc"], "test_auc": cnn["test_auc"], "test_auc_codec": cnn["test_auc_codec"],
                     "val_auc_by_source": val_by_source, "baseline": baseline, "cross_source": cross,
                     "heldout_experiments": by_experiment})
        write_audio_card(folder, report)
        tracker.log_artifact(folder, "artifact")
        print(f"saved {folder}", flush=True)
    tracker.end()
    print(json.dumps({k: report[k] for k in ("cnn", "baseline", "cross_source", "heldout_experiments",
                                                       "timing", "train_minutes")},
                     indent=1), flush=True)
    return report


def mp3_32k(x: np.ndarray) -> np.ndarray:
    """The test condition: an MP3 round trip at 32 kbps (what the hidden set's speech went through)."""
    return round_trip(x, "libmp3lame", 32_000)


def time_track(model: nn.Module, limits: AudioLimits, seconds: float = 60.0) -> dict[str, float]:
    """Seconds to window, test and score a 60 s track (synthetic, already decoded) on this CPU."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    x = (0.2 * np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
         + 0.01 * rng.standard_normal(len(t))).astype(np.float32)
    t0 = time.time()
    windows = make_windows(AudioTrack([AudioSegment(0.0, x)], seconds, SAMPLE_RATE, 1, None), limits)
    with torch.inference_mode():
        model(torch.from_numpy(np.stack([w.samples for w in windows])))
    return {"track_seconds": seconds, "windows": len(windows), "score_seconds": round(time.time() - t0, 3),
            "threads": torch.get_num_threads()}


if __name__ == "__main__":
    main()
