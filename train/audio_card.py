"""MODEL_CARD.md of an audio detector, from train/train_audio.py's report (numbers are the run's own)."""
from __future__ import annotations

from pathlib import Path
from typing import Any


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


def render_audio_card(report: dict[str, Any]) -> str:
    cnn, base, cross = report["cnn"], report["baseline"], report.get("cross_source") or {}
    cfg, timing = report["config"], report["timing"]
    by_source = "\n".join(f"| {k} | {_f(v)} |" for k, v in report["val_auc_by_source"].items())
    test_by_source = "\n".join(f"| {k} | {_f(v)} |" for k, v in cnn.get("test_auc_by_source", {}).items())
    cross_rows = (f"| {report['detector']} (CNN) | {_f(cross.get('cnn_auc'))} | {_f(cross.get('cnn_auc_codec'))} |\n"
                  f"| log-mel statistics + logistic regression | {_f(cross.get('baseline_auc'))} | – |"
                  if cross else "| (not run) | | |")
    return f"""# {report['detector']} — audio deepfake (cloned voice) detector

**Modality:** audio (kept apart from the face detectors: its own registry `detectors.audio_registry`,
`"modality": "audio"` in the manifest; the face analyzer, evaluation, cards and quality gate never list it).

**Architecture:** `{report['architecture']}` — {report['parameters']:,} parameters. A log-mel front end inside the
model (16 kHz, 25 ms / 10 ms frames, 64 mel bands, each window standardised so the level does not matter), four
convolution stages and mean + max pooling over time. Input: windows of 4 s; a file's score is the calibrated mean of the logits of its
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
