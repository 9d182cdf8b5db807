#!/usr/bin/env python3
"""Command line of the deepfake detector.

  python cli.py analyze photo.jpg clip.mp4 speech.wav folder/ [--json]   one report per file (audio: the voice)
  python cli.py analyze photo.jpg --report report.html        also a self-contained HTML report to share
  python cli.py models [--json]                               the detectors, their weights, the operating point
  python cli.py serve --host 127.0.0.1 --port 8000            the HTTP API
  python cli.py scan PATH_OR_LIST --out results.jsonl         batch scanning (local processes or Ray)

`analyze --json` prints JSON Lines: one JSON document (one report) per input file, one per line.
`models --json` prints {"models": [...], "operating_point": {...}, "audio_models": [...]}.
--threshold / --band default to the models' validated operating point (converted_models/ensemble.json).
Exit status: 0 when at least one input was analysed, 1 when every input failed, 2 for usage errors.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from api.cli import add_subcommand as add_serve_command  # noqa: E402
from cli_common import add_analysis_options, settings_from_args, video_options_from_args  # noqa: E402
from scan.cli import add_subcommand as add_scan_command  # noqa: E402


def _fmt_p(p: float | None) -> str:
    return "  -  " if p is None else f"{p:5.3f}"


def _result_text(probability: float | None, votes: dict[str, int] | None, strategy: str | None) -> str:
    """A verdict's number in words: the fake probability, or the votes for the majority strategy."""
    from analysis.ensemble import shows_votes, votes_text
    if shows_votes(strategy) and votes:
        return votes_text(votes)
    return f"fake probability {_fmt_p(probability)}"


def _print_human(report: dict[str, Any]) -> None:
    from analysis.ensemble import AGREEMENT_MEANING, agreement_label
    from analysis.report import face_count_text, not_voting_text, report_failed
    from video.report import person_label, track_role
    head = f"{report['path']}  [{report.get('kind')}]"
    if report.get("error"):
        print(f"{head}\n  ERROR: {report['error']}")
        if report_failed(report):
            _print_provenance(report.get("provenance"))
            return
        head = "  partial result:"
    strategy = (report.get("settings") or {}).get("strategy")
    if report.get("kind") == "video":
        decider = next((t for t in report.get("tracks", []) if t.get("id") == report.get("decisive_track")), None)
        votes = decider.get("votes") if decider else None
    else:
        scored = [f for f in report.get("faces", []) if f.get("probability") is not None]
        votes = max(scored, key=lambda f: f["probability"]).get("votes") if scored else None
    declared = (report.get("provenance") or {}).get("declares_generated")
    print(f"{head}\n  verdict: {report.get('verdict') or 'none'}  "
          f"({_result_text(report.get('probability'), votes, strategy)})" + (f"  -- {declared}" if declared else ""))
    notes = [n for n in (report.get("message") or "").split("; ") if n and n != declared]
    if notes:
        print(f"  note: {'; '.join(notes)}")
    _print_provenance(report.get("provenance"))
    for name, why in (report.get("models_missing") or {}).items():
        print(f"  missing detector {name}: {why}")
    if report.get("models_not_voting"):
        print(f"  not voting: {not_voting_text(report['models_not_voting'])}")
    if report.get("kind") == "audio":
        _print_audio(report, "  ")
        return
    if report.get("kind") == "video":
        _print_overall(report.get("overall"))
        if report.get("decision"):
            print(f"  decision: {report['decision']}")
        analysed = len(report.get("frames", []))
        for t in report.get("tracks", []):
            role = track_role(t.get("id"), report.get("decisive_track"), t.get("minor_reason"))
            print(f"  {person_label(t['id'])}: {t.get('verdict')} "
                  f"({_result_text(t.get('probability'), t.get('votes'), strategy)}) in {len(t.get('frames', []))} "
                  f"of {analysed} frames, fake share {t.get('fake_share') or 0:.2f}, importance "
                  f"{t.get('importance') or 0:.2f} [{role}]")
        print(f"  frames analysed: {analysed}")
        if report.get("audio"):
            print("  voice (sound track):")
            _print_audio(report["audio"], "    ")
        return
    print(f"  faces: {face_count_text(len(report.get('faces') or []), bool(report.get('whole_image')))}")
    for i, face in enumerate(report.get("faces", []), 1):
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        agreement = face.get("agreement")
        label = "whole picture" if report.get("whole_image") else f"face {i}"
        print(f"  {label}: box [{box}] detector score {face['score']:.3f} -> {face.get('verdict')} "
              f"({_result_text(face.get('probability'), face.get('votes'), strategy)})"
              + (f" agreement {agreement:.2f} ({agreement_label(agreement)})" if agreement is not None
                 else " agreement n/a (one detector)"))
        weights = face.get("weights") or {}
        for name, p in face["models"].items():
            weight = f"  weight {weights[name]:.0%}" if name in weights else ""
            print(f"      {name:<16} {p:.3f}{weight}")
        for entry in report.get("models_not_voting") or []:
            print(f"      {entry.get('name', '?'):<16}   -    not voting: {entry.get('reason') or 'left out'}")
    if report.get("faces"):
        print(f"  ({AGREEMENT_MEANING})")


def _print_overall(overall: dict[str, Any] | None) -> None:
    """A video's faces-and-voice line (analysis.audio.fusion)."""
    if not overall:
        return
    weights = ", ".join(f"{k} {v:.0%}" for k, v in (overall.get("weights") or {}).items()) or "nothing to weigh"
    print(f"  overall (fusion {overall['mode']}"
          + (f" -> {overall['applied']}" if overall["applied"] != overall["mode"] else "")
          + f"; {weights}): {overall.get('verdict') or 'none'} ({_fmt_p(overall.get('probability'))}); "
          f"faces {_fmt_p(overall.get('faces_probability'))}, voice {_fmt_p(overall.get('voice_probability'))}"
          + (f"\n  fusion note: {overall['note']}" if overall.get("note") else ""))


def _print_audio(audio: dict[str, Any], pad: str) -> None:
    """An audio report, or a video's audio section: status, verdict, speech share, one line per window."""
    status = audio.get("status")
    if status != "scored":
        if audio.get("kind") != "audio":   # an audio report's message is already its note line
            print(f"{pad}audio: {audio.get('message') or status}")
        return
    meta = audio.get("metadata") or {}
    print(f"{pad}audio verdict: {audio.get('verdict')} (fake probability {_fmt_p(audio.get('probability'))}, "
          f"{audio.get('aggregation')}); speech in {audio.get('speech_share') or 0:.0%} of "
          f"{len(audio.get('windows') or [])} windows; {meta.get('duration') or 0:.1f} s, "
          f"{meta.get('sample_rate')} Hz, {meta.get('channels')} channel(s), {meta.get('codec')}")
    if not audio.get("passes_gate"):
        reasons = "; ".join(f"{n}: {g.get('reason')}" for n, g in (audio.get("gate") or {}).items()
                            if not g.get("votes"))
        print(f"{pad}audio detector below its quality gate{f' ({reasons})' if reasons else ''}")
    if audio.get("kind") != "audio" and audio.get("message"):
        print(f"{pad}note: {audio['message']}")
    for w in audio.get("windows") or []:
        value = _fmt_p(w.get("probability")) if w.get("speech") else f"  -   not scored: {w.get('reason')}"
        print(f"{pad}  {w['start']:7.2f}-{w['end']:7.2f} s  {value}")


def _print_provenance(provenance: dict[str, Any] | None) -> None:
    """The file's own claims, one finding a line with its strength (private values only with --show-private)."""
    if not provenance:
        return
    print("  provenance (what the file says of itself; it does not change the verdict):")
    for f in provenance.get("findings") or []:
        print(f"    [{f['strength']}] {f['source']}: {f['text']}")
    for key, value in (provenance.get("private") or {}).items():
        print(f"    private {key}: {value}")


def report_targets(report: str, inputs: list[Path]) -> dict[Path, Path]:
    """Where `--report` writes each input's HTML report: the file itself for one input, else a folder with
    `<name>.report.html` per input. ValueError when several inputs would share one .html file."""
    target = Path(report)
    if len(inputs) == 1 and not target.is_dir() and not report.endswith(("/", os.sep)):
        return {inputs[0]: target}
    if target.suffix.lower() in (".html", ".htm") and not target.is_dir():
        raise ValueError(f"--report {report}: several files are analysed, so --report names a folder "
                         "(one <name>.report.html per file)")
    out: dict[Path, Path] = {}
    taken: set[str] = set()
    for path in inputs:
        name, n = f"{path.stem}.report.html", 1
        while name in taken:
            n += 1
            name = f"{path.stem}-{n}.report.html"
        taken.add(name)
        out[path] = target / name
    return out


def _write_html(result: Any, path: Path, target: Path, max_pixels: int) -> None:
    """The HTML report of one input; a failure is a warning, never the end of the batch."""
    from visualization.html_report import ReportPictures, load_pictures, render_html_report
    try:
        try:
            pictures = load_pictures(result, path, max_pixels)
        except Exception:  # noqa: BLE001 - the report is still worth writing without the picture
            logging.getLogger(__name__).debug("picture for the HTML report", exc_info=True)
            pictures = ReportPictures()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_html_report(result, pictures), encoding="utf-8")
        print(f"report: {target}", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger(__name__).debug("HTML report failed", exc_info=True)
        print(f"warning: no HTML report for {path}: {exc}".splitlines()[0], file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.analyzer import get_analyzer
    from pipeline.dispatch import analyze_path, expand_inputs
    from analysis.report import json_safe, report_failed, report_stamp

    try:
        settings = settings_from_args(args)
        video_options = video_options_from_args(args)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    inputs = expand_inputs(args.paths)
    if not inputs:
        print("error: no media files found in the given paths", file=sys.stderr)
        return 1
    try:
        targets = report_targets(args.report, inputs) if args.report else {}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    analyzer = get_analyzer(args.models_dir)
    for name, why in analyzer.load_errors.items():
        print(f"warning: detector {name} unavailable: {why}", file=sys.stderr)
    ok = 0
    for path in inputs:
        try:
            result: Any = analyze_path(path, analyzer, settings, video_options)
            report = result.to_dict()
            if args.show_private and report.get("provenance"):
                report["provenance"]["private"] = dict(result.provenance.private)
        except Exception as exc:  # one bad file never stops the batch
            logging.getLogger(__name__).debug("analysis failed", exc_info=True)
            report = {"path": str(path), "kind": "unknown", "error": f"internal error: {exc}".splitlines()[0],
                      **report_stamp()}
            result = report
        ok += not report_failed(report)
        if args.json:
            print(json.dumps(json_safe(report)), flush=True)
        else:
            _print_human(report)
        if path in targets:
            _write_html(result, path, targets[path], settings.max_pixels)
    return 0 if ok else 1


def cmd_models(args: argparse.Namespace) -> int:
    from analysis.analyzer import get_analyzer
    from analysis.audio.engine import audio_models
    from analysis.report import json_safe
    analyzer = get_analyzer(args.models_dir)
    info = analyzer.model_info()
    op = analyzer.operating_point_info()
    audio = audio_models(analyzer.models_dir).info()
    if args.json:
        print(json.dumps(json_safe({"models": info, "operating_point": op, "audio_models": audio}), indent=2))
        return 0
    for m in info:
        status = "loaded, checksum verified" if m["loaded"] else f"NOT LOADED: {m['error']}"
        size = m.get("input_size", m["default_input_size"])
        print(f"{m['name']:<16} {m['architecture']:<34} {size:>4}px  {status}")
        if m["loaded"]:
            votes = "yes" if m["votes"] else "no"
            if m.get("gate_reason"):
                votes += f" ({'gate fallback; ' if m['votes'] else ''}{m['gate_reason']})"
            print(f"{'':16} VOTES {votes}")
            man = m["manifest"]
            metrics = man.get("metrics") or {}
            shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            print(f"{'':16} weights {m['weights']}  sha256 {m['checksum'][:12]}…  T={man.get('temperature')}  "
                  f"engine {m['engine']}")
            if shown:
                print(f"{'':16} " + "  ".join(f"{k}={v:.3f}" for k, v in sorted(shown.items())))
    if analyzer.detectors:
        print(f"quality gate: a detector votes by default when its validation AUC is at least "
              f"{analyzer.gate_floor:g} on every data source; name others with --detectors to include them")
    if analyzer.gate_note():
        print(f"note: {analyzer.gate_note()}")
    print(operating_point_text(op))
    for m in audio:
        if not m["loaded"]:
            print(f"{m['name']:<16} audio detector  NOT LOADED: {m['error']}")
            continue
        gate = m.get("gate") or {}
        metrics = m.get("metrics") or {}
        print(f"{m['name']:<16} {m['architecture']:<34} audio  loaded, checksum verified  T={m['temperature']:.3f}  "
              f"test AUC {metrics.get('test_auc') or 0:.3f}")
        print(f"{'':16} VOTES in fusion {'yes' if gate.get('votes') else 'no'}"
              + (f" ({gate['reason']})" if gate.get("reason") else ""))
    return 0


def operating_point_text(op: dict[str, Any]) -> str:
    """The `operating point:` line of `cli.py models`."""
    head = f"operating point: threshold {op['threshold']:.3f} ± band {op['band']:.3f}"
    if op["source"] != "validation":
        return f"{head}: built-in defaults ({op['reason']})"
    return (f"{head}: validated for the {op['strategy']} ensemble of {', '.join(op['detectors'])}"
            f"{' with mirrored faces' if op.get('mirror') else ''} ({op['file']}): "
            f"{op['val_fpr']:.1%} of {op['val_n_real']} validation reals called FAKE "
            f"(target at most {op['max_fpr']:.0%}), {op['val_tpr']:.1%} of {op['val_n_fake']} fakes caught; "
            "--threshold / --band override it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Is this face real? Deepfake detection CLI.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="analyse images, videos and audio files (files or folders)")
    a.add_argument("paths", nargs="+")
    a.add_argument("--json", action="store_true", help="JSON Lines: one report per line")
    a.add_argument("--report", metavar="PATH", default=None,
                   help="also write a self-contained HTML report (pictures embedded, printable to PDF): "
                        "PATH is the file for one input, a folder (one <name>.report.html each) for several")
    a.add_argument("--show-private", action="store_true",
                   help="print the file's private metadata (GPS position, serial numbers, owner names), shown "
                        "only as \"present\" otherwise")
    add_analysis_options(a)
    a.set_defaults(func=cmd_analyze)

    m = sub.add_parser("models", help="list the detectors and their weights")
    m.add_argument("--models-dir", default=None)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    add_serve_command(sub)
    add_scan_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        warnings.filterwarnings("ignore")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
