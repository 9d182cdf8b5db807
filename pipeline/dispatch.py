"""One entry point for a file of unknown kind: sniff its content, then run the image, the video or the audio
pipeline. It sits above analysis/ and video/ (the video engine builds on the analysis core), so neither of them
imports it."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from analysis.analyzer import Analyzer
from analysis.audio.decode import only_sound
from analysis.audio.engine import analyze_audio
from analysis.audio.report import AudioReport
from analysis.errors import MediaError
from analysis.media import MEDIA_SUFFIXES, sniff_kind
from analysis.report import ImageReport
from analysis.settings import AnalysisSettings
from video.report import VideoReport
from video.sampling import VideoOptions


def analyze_path(path: str | Path, analyzer: Analyzer, settings: AnalysisSettings | None = None,
                 video_options: VideoOptions | None = None, progress: Callable[[float, str], None] | None = None,
                 cancel: threading.Event | None = None, *,
                 name: str | None = None) -> ImageReport | VideoReport | AudioReport:
    """Returns an ImageReport, a VideoReport or an AudioReport (kind "audio");
    bad input gives a report with `error`, never raises.
    Every report records the resolved threshold and band (`settings`) and where they came from (`operating_point`):
    the analyzer fills a None threshold / band from the models' validated operating point."""
    settings = settings or AnalysisSettings()
    label = name or str(path)
    try:
        _check_readable(Path(path), label)
        kind = sniff_kind(Path(path))
    except MediaError as exc:
        report = ImageReport(path=label, kind="unknown", error=str(exc))
        analyzer.record_decision(report, settings)
        return report
    if kind == "video" and only_sound(path):
        kind = "audio"   # sound in a video container (.mka, an audio-only .webm / .mp4)
    if kind == "audio":
        report = analyze_audio(path, analyzer.models_dir, settings, progress, name=label)
        analyzer.record_decision(report, settings)
        return report
    if kind == "video":
        from video.engine import analyze_video  # the video engine is heavier; only load it when needed
        report = analyze_video(path, analyzer, settings, video_options, progress=progress, cancel=cancel)
        if name:
            report.path = name
        return report
    if kind == "image":
        report = analyzer.analyze_image(path, settings, name=label)
        if progress:
            progress(1.0, "done")
        return report
    report = ImageReport(path=label, kind="unknown",
                         error="not an image, a video or an audio file this tool can read (the content is not a known media format)")
    analyzer.record_decision(report, settings)
    return report


def _check_readable(path: Path, label: str) -> None:
    """One-line errors that name the file as the caller knows it (`label`): for an upload that is the user's file
    name, never the private temporary path it was written to."""
    if not path.exists():
        raise MediaError(f"file not found: {label}")
    if path.is_dir():
        raise MediaError(f"is a folder, not a file: {label}")
    try:
        with path.open("rb") as fh:
            head = fh.read(1)
    except OSError as exc:
        raise MediaError(f"cannot read {label}: {exc.strerror or exc}") from None
    if not head:
        raise MediaError(f"empty file (0 bytes): {label}")


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given; folders are walked for files with a media suffix (sorted, hidden files skipped)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES
                              and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            out.append(p)
    return out
