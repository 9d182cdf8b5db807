"""What the command-line front-ends share: the analysis options of `analyze` and `scan`, their mapping onto
AnalysisSettings and VideoOptions, and running one subcommand on its own (`python -m api.cli`, `python -m scan.cli`).

cli.py, api/cli.py and scan/cli.py import this module; it imports only the core, never them."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Sequence

from analysis.ensemble import STRATEGIES
from analysis.settings import DEFAULT_FUSION, FUSION_NAMES, AnalysisSettings
from video.sampling import VideoOptions

OPERATING_POINT_HELP = ("default: the models' validated operating point, see converted_models/ENSEMBLE.md; "
                        "without one 0.5 and 0.1")


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that analyses media (analyze, scan)."""
    g = p.add_argument_group("analysis")
    g.add_argument("--models-dir", default=None, help="folder of converted models (default: converted_models/)")
    g.add_argument("--strategy", default="weighted", choices=sorted(STRATEGIES))
    g.add_argument("--threshold", type=float, default=None,
                   help=f"probability at or above which a face is FAKE, 0..1 ({OPERATING_POINT_HELP})")
    g.add_argument("--band", type=float, default=None,
                   help=f"|p - threshold| below this is UNCERTAIN, 0..0.5 ({OPERATING_POINT_HELP})")
    g.add_argument("--detectors", default=None,
                   help="comma-separated detector names (default: the loaded ones that pass the quality gate; "
                        "naming a detector here includes it even if it does not pass)")
    g.add_argument("--margin", type=float, default=0.3, help="face crop margin, fraction of the face box")
    g.add_argument("--min-face", type=int, default=40, help="smallest face side in pixels")
    g.add_argument("--whole-image", action="store_true", help="with no face found, score the whole image")
    g.add_argument("--max-pixels", type=int, default=100_000_000, help="refuse images with more pixels")
    g.add_argument("--fusion", default=DEFAULT_FUSION, choices=FUSION_NAMES,
                   help="videos: how faces and voice make the overall verdict (auto: either, the more suspicious side, "
                        "when the audio detector passes its quality gate, else faces only; see analysis/audio/fusion.py)")
    v = p.add_argument_group("video")
    v.add_argument("--frames", type=int, default=32, help="frames to analyse, evenly spaced")
    v.add_argument("--every", type=int, default=None, help="analyse every k-th frame instead")
    v.add_argument("--rate", type=float, default=None, help="analyse this many frames per second instead")
    v.add_argument("--start", type=float, default=None, help="start time in seconds")
    v.add_argument("--end", type=float, default=None, help="end time in seconds")


def detector_list(text: str | None) -> list[str] | None:
    """`--detectors a,b` as a list; None when not given."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


def settings_from_args(args: argparse.Namespace) -> AnalysisSettings:
    """The analysis options as AnalysisSettings (ValueError, one line, for values that make no sense)."""
    return AnalysisSettings(
        strategy=args.strategy, threshold=args.threshold, band=args.band, detectors=detector_list(args.detectors),
        margin=args.margin, min_face_size=args.min_face, whole_image_fallback=args.whole_image,
        max_pixels=args.max_pixels, fusion=args.fusion)


def video_options_from_args(args: argparse.Namespace) -> VideoOptions:
    return VideoOptions(frames=args.frames, every=args.every, rate=args.rate, start=args.start, end=args.end)


def run_subcommand(prog: str, command: str,
                   add_subcommand: Callable[[argparse._SubParsersAction], argparse.ArgumentParser],
                   argv: Sequence[str] | None = None) -> int:
    """One subcommand as a program of its own: `python -m api.cli ...` runs `cli.py serve ...`."""
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommand(sub)
    args = parser.parse_args([command, *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)
