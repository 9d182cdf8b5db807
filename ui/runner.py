"""Runs the core on what the user gave, with the upload on disk only for the duration of the analysis.

Returns small view objects (report + the pictures the page shows) that live in the session state, so moving a
slider never re-runs an analysis. Nothing here raises for bad input: the report carries a one-line error.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from analysis.analyzer import Analyzer
from analysis.errors import MediaError
from analysis.audio.decode import only_sound
from analysis.media import load_image, sniff_kind
from analysis.report import ImageReport
from analysis.settings import AnalysisSettings
from pipeline.dispatch import analyze_path
from video.report import decode_jpeg, encode_jpeg
from visualization.overlays import crop_faces, draw_faces, fit_within, scale_faces

from .uploads import MediaInput, materialized

log = logging.getLogger(__name__)

PICTURE_SIDE = 1400     # longest side of the picture shown with boxes
CROP_SIDE = 256         # face crops kept for display and for the feature-map page
VIDEO_THUMB_SIDE = 640  # frames kept for the frame scrubber


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@dataclass
class ImageView:
    key: str
    name: str
    report: ImageReport
    picture: np.ndarray | None = None            # boxed picture, at most PICTURE_SIDE
    crops: list[np.ndarray] = field(default_factory=list)   # one per report.faces, CROP_SIDE square
    photo: bytes | None = field(default=None, repr=False)   # the same picture without boxes (JPEG), for heatmaps
    scale: float = 1.0                           # picture (and photo) pixels per original pixel

    def photo_rgb(self) -> np.ndarray | None:
        return decode_jpeg(self.photo)


@dataclass
class VideoView:
    key: str                                     # "<input digest>|<settings>|<options>": one analysis
    name: str
    report: Any                                  # video.report.VideoReport, or an ImageReport with the error
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The analysed input's MediaInput.digest."""
        return self.key.split("|", 1)[0]


@dataclass
class VideoProbe:
    """What the Video page knows of a file before analysing it."""
    metadata: dict[str, Any] | None = None       # duration, size, fps...: a video the analysis can read
    problem: str | None = None                   # why it cannot be analysed (one line), when known


@dataclass
class FaceSource:
    """Face crops for the feature-map page, with a label each."""
    name: str
    crops: list[np.ndarray]
    labels: list[str]
    message: str | None = None


def settings_key(settings: AnalysisSettings) -> str:
    import json
    return json.dumps(settings.to_dict(), sort_keys=True, default=str)


def _error_report(item: MediaInput, settings: AnalysisSettings, message: str, kind: str = "unknown") -> ImageReport:
    return ImageReport(path=item.name, kind=kind, error=message, settings=settings.to_dict())


def image_key(item: MediaInput, settings: AnalysisSettings) -> str:
    return f"{item.digest}|{settings_key(settings)}"


def analyze_image_input(analyzer: Analyzer, item: MediaInput, settings: AnalysisSettings) -> ImageView:
    """Analyse one picture; the page gets the report, the boxed picture and the face crops."""
    key = image_key(item, settings)
    try:
        with materialized(item) as path:
            kind = _sniff(path)
            if kind == "video":
                return ImageView(key, item.name, _error_report(
                    item, settings, "this file is a video: analyse it on the Video page", "video"))
            if kind == "audio":
                return ImageView(key, item.name, _error_report(
                    item, settings, "this file is audio: analyse it on the Audio check page", "audio"))
            report = analyze_path(path, analyzer, settings, name=item.name)
            view = ImageView(key, item.name, report)
            if report.error is None and report.kind == "image":
                rgb = load_image(path, max_pixels=settings.max_pixels).rgb
                view.crops = crop_faces(rgb, report.faces, margin=settings.margin, size=CROP_SIDE)
                small, view.scale = fit_within(rgb, PICTURE_SIDE)
                view.picture = draw_faces(small, scale_faces(report.faces, view.scale))
                view.photo = encode_jpeg(small, PICTURE_SIDE, quality=90)[0]
            return view
    except MediaError as exc:
        return ImageView(key, item.name, _error_report(item, settings, str(exc)))
    except Exception as exc:  # noqa: BLE001 - the user sees one line; the server log has the traceback
        log.exception("image analysis failed for %s", item.name)
        return ImageView(key, item.name, _error_report(item, settings, f"the analysis failed: {_one_line(exc)}"))


def _sniff(path) -> str | None:
    try:
        return sniff_kind(path)
    except MediaError:
        return None


def probe_video_input(item: MediaInput) -> VideoProbe:
    """The video's verified metadata (duration, size, fps), or why it cannot be analysed: a picture, not media,
    an empty or unreadable file (the same one-line reasons the analysis would give, naming the user's file)."""
    from video.decode import probe_video

    try:
        with materialized(item) as path:
            if path.is_file() and path.stat().st_size == 0:
                return VideoProbe(problem=f"{item.name} is empty (0 bytes)")
            kind = _sniff(path)
            if kind == "image":
                return VideoProbe(problem=f"{item.name} is a picture: analyse it on the Image page")
            if kind == "audio" or (kind == "video" and only_sound(path)):
                return VideoProbe(problem=f"{item.name} is audio without pictures: analyse it on the Audio "
                                          "check page")
            if kind != "video":
                return VideoProbe(problem=f"{item.name} is not a video this tool can read")
            return VideoProbe(metadata=probe_video(path, hash_file=False).metadata())
    except MediaError as exc:
        return VideoProbe(problem=f"{item.name}: {_one_line(exc)}")
    except Exception:  # noqa: BLE001 - probing is a convenience; the analysis reports the real error
        log.exception("probing %s failed", item.name)
        return VideoProbe()


def analyze_video_input(analyzer: Analyzer, item: MediaInput, settings: AnalysisSettings, options: Any,
                        progress: Callable[[float, str], None] | None = None,
                        cancel: threading.Event | None = None) -> VideoView:
    """Analyse one video (frames sampled per `options`: a video.sampling.VideoOptions)."""
    key = f"{item.digest}|{settings_key(settings)}|{options.to_dict()}"
    try:
        with materialized(item) as path:
            kind = _sniff(path)
            if kind == "image":
                return VideoView(key, item.name, _error_report(
                    item, settings, "this file is a picture: analyse it on the Image page", "image"),
                    settings.to_dict())
            if kind == "audio" or (kind == "video" and only_sound(path)):
                return VideoView(key, item.name, _error_report(
                    item, settings, "this file is audio without pictures: analyse it on the Audio check page",
                    "audio"), settings.to_dict())
            report = analyze_path(path, analyzer, settings, video_options=options, progress=progress,
                                  cancel=cancel, name=item.name)
            return VideoView(key, item.name, report, settings.to_dict())
    except MediaError as exc:
        return VideoView(key, item.name, _error_report(item, settings, str(exc)), settings.to_dict())
    except ValueError as exc:   # invalid options: a one-line message
        return VideoView(key, item.name, _error_report(item, settings, _one_line(exc)), settings.to_dict())
    except Exception as exc:  # noqa: BLE001 - Streamlit's stop/rerun are BaseExceptions and pass through
        log.exception("video analysis failed for %s", item.name)
        return VideoView(key, item.name, _error_report(item, settings, f"the analysis failed: {_one_line(exc)}"),
                         settings.to_dict())


@dataclass
class AudioView:
    key: str                                     # "<input digest>|<settings>": one analysis
    name: str
    report: Any                                  # analysis.audio.report.AudioReport (kind "audio"), or an error


def audio_key(item: MediaInput, settings: AnalysisSettings) -> str:
    return f"{item.digest}|{settings_key(settings)}"


def analyze_audio_input(analyzer: Analyzer, item: MediaInput, settings: AnalysisSettings) -> AudioView:
    """Analyse the voice of one audio file (pipeline.dispatch: content decides; a picture or a video is refused
    with a one-line message pointing to its page)."""
    key = audio_key(item, settings)
    try:
        with materialized(item) as path:
            kind = _sniff(path)
            if kind in ("image", "video") and not (kind == "video" and only_sound(path)):
                page = "Image" if kind == "image" else "Video"
                return AudioView(key, item.name, _error_report(
                    item, settings, f"this file is a {'picture' if kind == 'image' else 'video'}: analyse it on "
                                    f"the {page} page (a video's sound track is analysed there too)", kind))
            return AudioView(key, item.name, analyze_path(path, analyzer, settings, name=item.name))
    except MediaError as exc:
        return AudioView(key, item.name, _error_report(item, settings, str(exc)))
    except Exception as exc:  # noqa: BLE001
        log.exception("audio analysis failed for %s", item.name)
        return AudioView(key, item.name, _error_report(item, settings, f"the analysis failed: {_one_line(exc)}"))


def faces_for_features(analyzer: Analyzer, item: MediaInput, settings: AnalysisSettings) -> FaceSource:
    """Face crops of a picture for the feature-map page (face detection only, no scoring)."""
    try:
        with materialized(item) as path:
            if _sniff(path) != "image":
                return FaceSource(item.name, [], [], "not a picture this tool can read")
            rgb = load_image(path, max_pixels=settings.max_pixels).rgb
        faces = analyzer.face_finder(settings).detect(rgb)
        if not faces:
            return FaceSource(item.name, [], [], "no face found in this picture")
        crops = crop_faces(rgb, faces, margin=settings.margin, size=CROP_SIDE)
        labels = [f"Face {i + 1} ({f.visible_size:.0f} px)" for i, f in enumerate(faces)]
        return FaceSource(item.name, crops, labels)
    except MediaError as exc:
        return FaceSource(item.name, [], [], str(exc))
    except Exception as exc:  # noqa: BLE001
        log.exception("face detection failed for %s", item.name)
        return FaceSource(item.name, [], [], f"face detection failed: {_one_line(exc)}")
