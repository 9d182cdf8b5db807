"""Result dataclasses of a video analysis.

`to_dict()` is JSON-safe and small: thumbnails and face crops (JPEG bytes, for the dashboard) live in fields
marked `json: False`, which `to_dict()` leaves out. Face entries are shaped like the image report's
(`analysis.report.FaceResult`) plus `"track"` and `"sharpness"`.

Tracks (people) are numbered by importance: track 0 is "Person 1", the person who counts most (see
video.aggregate.TrackImportance); `person_label` is how every report, CLI line and dashboard card names them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from analysis import __version__
from analysis.audio.fusion import FusionResult
from analysis.audio.report import AudioResult
from analysis.provenance import Provenance
from analysis.report import FaceResult, json_safe, utc_now

_NO_JSON = {"json": False}


def person_label(track: int | None) -> str:
    """The name of a track everywhere: "Person 1" for track 0 (the most important person), ..."""
    return "Unassigned" if track is None else f"Person {int(track) + 1}"


def track_role(track: int | None, decisive_track: int | None, minor_reason: str | None) -> str:
    """Why a person does or does not decide the video, in a few words (CLI line, HTML report)."""
    if track is not None and track == decisive_track:
        return "decides the video"
    return f"minor: {minor_reason}" if minor_reason else "counts, less suspicious"


def decode_jpeg(data: bytes | None) -> np.ndarray | None:
    """RGB uint8 array from JPEG bytes (None stays None)."""
    if not data:
        return None
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def encode_jpeg(rgb: np.ndarray, max_side: int, quality: int = 85) -> tuple[bytes, float]:
    """JPEG bytes of `rgb` downscaled to `max_side` (never upscaled), and the scale applied."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w, 1))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes(), scale


@dataclass
class FrameFace(FaceResult):
    """One face in one frame: the image report's FaceResult plus the track (person) it belongs to."""
    track: int | None = None
    sharpness: float | None = None      # analysis.quality.sharpness of the face box (higher = sharper)
    crop_jpeg: bytes | None = field(default=None, repr=False, compare=False, metadata=_NO_JSON)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self)

    def crop_rgb(self) -> np.ndarray | None:
        """The face crop (square, margin included, at most VideoOptions.crop_side pixels)."""
        return decode_jpeg(self.crop_jpeg)

    @classmethod
    def from_result(cls, result: FaceResult, track: int | None = None, crop_jpeg: bytes | None = None,
                    sharpness: float | None = None) -> "FrameFace":
        values = {f.name: getattr(result, f.name) for f in fields(FaceResult)}
        return cls(**values, track=track, crop_jpeg=crop_jpeg, sharpness=sharpness)


@dataclass
class FrameResult:
    index: int                          # frame number in presentation order (0-based)
    time: float                         # seconds from the first frame (real timestamps)
    faces: list[FrameFace] = field(default_factory=list)
    probability: float | None = None    # of the frame's most suspicious face
    verdict: str | None = None
    thumbnail: bytes | None = field(default=None, repr=False, compare=False, metadata=_NO_JSON)   # JPEG
    thumb_scale: float = field(default=1.0, metadata=_NO_JSON)   # thumbnail pixels per original pixel

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self)

    def thumbnail_rgb(self) -> np.ndarray | None:
        """The downscaled frame; face boxes are in original pixels: multiply them by `thumb_scale`."""
        return decode_jpeg(self.thumbnail)

    def thumbnail_boxes(self) -> list[list[float]]:
        return [[v * self.thumb_scale for v in face.box] for face in self.faces]


@dataclass
class TrackResult:
    id: int
    frames: list[int] = field(default_factory=list)       # frame indices where this face appears
    times: list[float] = field(default_factory=list)
    models: dict[str, float] = field(default_factory=dict)  # mean probability per detector
    probability: float | None = None    # aggregate of the face's per-frame ensemble probabilities
    verdict: str | None = None
    fake_share: float | None = None     # share of its frames at or above the threshold
    mean: float | None = None
    top_mean: float | None = None
    max: float | None = None
    method: str = "none"                # how `probability` was aggregated (see video.aggregate)
    decisive: bool = True               # may decide the video: a major track, or any track when none is major
    mean_size: float | None = None      # mean face size in pixels
    importance: float | None = None     # 0..1: frames seen, face size, detection score, sharpness (TrackImportance)
    major: bool = True                  # may decide the video on its own: not tiny, brief or uncertainly detected
    minor_reason: str | None = None     # why not, in words ("seen in only 3 of 16 frames; small face (22 px, ...)")
    median_size: float | None = None    # median face side in pixels
    relative_size: float | None = None  # ... divided by the frame's shorter side
    detection_score: float | None = None   # mean face-detector probability
    sharpness: float | None = None      # median sharpness of the face
    votes: dict[str, int] = field(default_factory=dict)   # each detector's verdict on its mean over the track

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self)


@dataclass
class VideoReport:
    path: str
    kind: str = "video"
    frames: list[FrameResult] = field(default_factory=list)
    tracks: list[TrackResult] = field(default_factory=list)
    probability: float | None = None    # of the most suspicious decisive track
    verdict: str | None = None
    decisive_track: int | None = None   # the track (person) whose probability is the video's
    decision: str | None = None         # who decides the video and why the others do not, one sentence
    error: str | None = None            # the media is bad (one line); results below are what was sound
    message: str | None = None          # non-error note: "no face found...", "cancelled", "partial result..."
    metadata: dict[str, Any] = field(default_factory=dict)   # width, height, fps (verified), duration, codec...
    summary: dict[str, Any] = field(default_factory=dict)    # over frames: mean, top_mean, fake_share, method
    models_used: list[str] = field(default_factory=list)
    models_missing: dict[str, str] = field(default_factory=dict)
    models_not_voting: list[dict[str, str]] = field(default_factory=list)   # {"name", "reason"}: left out by the gate
    model_checksums: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)   # resolved: the threshold and band used
    operating_point: dict[str, Any] = field(default_factory=dict)   # where they came from (Analyzer.decision)
    options: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)   # stage -> seconds
    sha256: str | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None   # what the file says of itself (analysis.provenance; no verdict)
    audio: AudioResult | None = None    # the voice (analysis.audio): "no audio track" / "no speech" are notes
    overall: FusionResult | None = None  # faces and voice by the settings' fusion (analysis.audio.fusion)
    cancelled: bool = False
    complete: bool = True               # every planned frame was analysed
    created: str = field(default_factory=utc_now)   # when the analysis started (UTC)
    version: str = __version__          # of the app that made the report

    def to_dict(self) -> dict[str, Any]:
        return json_safe(self)

    @property
    def width(self) -> int | None:
        return self.metadata.get("width")

    @property
    def height(self) -> int | None:
        return self.metadata.get("height")

    @property
    def faces(self) -> list[FrameFace]:
        """Every face of every analysed frame (what image-report consumers iterate over)."""
        return [face for frame in self.frames for face in frame.faces]

    def track(self, track_id: int) -> TrackResult | None:
        return next((t for t in self.tracks if t.id == track_id), None)
