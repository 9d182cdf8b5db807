"""What the command-line front-ends share: the analysis options of `analyze` and `scan`, their mapping onto
AnalysisSettings and VideoOptions, and running one subcommand on its own (`python -m api.cli`, `python -m scan.cli`).

cli.py, api/cli.py and scan/cli.py import this module; it imports only the core, never them."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

from analysis.options import OPTIONS, SETTINGS, VIDEO, Option
from analysis.settings import AnalysisSettings
from video.sampling import VideoOptions

_TYPES = {"integer": int, "number": float}
_GROUPS = {SETTINGS: "analysis", VIDEO: "video"}


def _help(option: Option, default: Any) -> str:
    """The table's help, then the accepted values and the default in words (argparse shows choices itself)."""
    notes = [option.range.describe()] if option.range is not None else []
    if option.default_help:
        notes.append(f"default: {option.default_help}")
    elif default is not None and option.kind != "boolean":
        notes.append("default: %(default)s")
    text = option.usage.replace("%", "%%")
    return f"{text} ({'; '.join(notes)})" if notes else text


def _add_option(group: argparse._ArgumentGroup, option: Option) -> None:
    default = option.default(VideoOptions)
    kwargs = {"dest": option.name, "default": default, "help": _help(option, default)}
    if option.kind == "boolean":
        group.add_argument(option.flag, action=argparse.BooleanOptionalAction if default else "store_true", **kwargs)
    else:
        group.add_argument(option.flag, type=_TYPES.get(option.kind, str), choices=option.choices, **kwargs)


def add_analysis_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that analyses media (analyze, scan): --models-dir, then one flag per
    analysis.options.OPTIONS entry (its name with "-" for "_"), in an "analysis" and a "video" group."""
    groups = {target: p.add_argument_group(title) for target, title in _GROUPS.items()}
    groups[SETTINGS].add_argument("--models-dir", default=None,
                                  help="folder of converted models (default: converted_models/)")
    for option in OPTIONS:
        _add_option(groups[option.target], option)


def detector_list(text: str | None) -> list[str] | None:
    """`--detectors a,b` as a list; None when not given."""
    return [d.strip() for d in text.split(",") if d.strip()] if text else None


def _fields(args: argparse.Namespace, target: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.target == target:
            raw = getattr(args, option.name)
            values[option.field] = detector_list(raw) if option.kind == "names" else raw
    return values


def settings_from_args(args: argparse.Namespace) -> AnalysisSettings:
    """The analysis options as AnalysisSettings (ValueError, one line, for values that make no sense)."""
    return AnalysisSettings(**_fields(args, SETTINGS))


def video_fields_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The video options given on the command line, as VideoOptions field values, checked now (ValueError, one
    line) rather than at the first video."""
    values = _fields(args, VIDEO)
    VideoOptions(**values).validate()
    return values


def video_options_from_args(args: argparse.Namespace) -> VideoOptions:
    """The video options as VideoOptions, checked now (ValueError, one line) rather than at the first video."""
    return VideoOptions(**video_fields_from_args(args))


def run_subcommand(prog: str, command: str,
                   add_subcommand: Callable[[argparse._SubParsersAction], argparse.ArgumentParser],
                   argv: Sequence[str] | None = None) -> int:
    """One subcommand as a program of its own: `python -m api.cli ...` runs `cli.py serve ...`."""
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers(dest="command", required=True)
    add_subcommand(sub)
    args = parser.parse_args([command, *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)
