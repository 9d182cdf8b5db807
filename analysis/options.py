"""The analysis options in one table: each public option's name, the field it sets, its kind and its help.

The CLI flags (cli_common.add_analysis_options), the HTTP API's parameters (api.params) and the dashboard's
sidebar (ui.sidebar) are generated from OPTIONS. Defaults, ranges and choices are not restated here: they are the
dataclass defaults (AnalysisSettings, video.sampling.VideoOptions), RANGES / VIDEO_RANGES and STRATEGY_NAMES /
FUSION_NAMES. The one validation stays in AnalysisSettings.__post_init__ and VideoOptions.validate (ValueError,
one line); a front-end only maps it to its own format (exit 2, HTTP 422, a message).
tests/test_settings_schema.py holds every front-end to this table.
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Any

from .settings import (DEFAULT_BAND, DEFAULT_THRESHOLD, FUSION_NAMES, RANGES, STRATEGY_NAMES, VIDEO_RANGES,
                       AnalysisSettings, Range)

SETTINGS, VIDEO = "settings", "video"   # what an option sets: an AnalysisSettings or a VideoOptions field
KINDS = ("integer", "number", "boolean", "string", "names")   # names: comma-separated detector names


@dataclass(frozen=True)
class Slider:
    """The dashboard's slider over a numeric option: a handy span inside the option's range, and its step."""
    minimum: float
    maximum: float
    step: float


@dataclass(frozen=True)
class Option:
    name: str                         # the API parameter; the CLI flag is `flag`
    target: str                       # SETTINGS or VIDEO
    field: str                        # the dataclass field it sets
    kind: str                         # one of KINDS
    help: str                         # one line, lower case, no final period
    default_help: str | None = None   # a default decided at analysis time (operating point, quality gate), in words
    choices: tuple[str, ...] | None = None
    slider: Slider | None = None      # how the dashboard shows it, where it shows it as a slider
    api: bool = True                  # False: the server fixes it (api.config.ApiConfig), a request cannot

    def __post_init__(self) -> None:
        allowed = self.range
        if self.kind not in KINDS or (allowed is not None and self.kind != ("integer" if allowed.integer
                                                                             else "number")):
            raise ValueError(f"option {self.name}: kind {self.kind!r} does not fit its range")
        if self.slider is not None and not (allowed is not None and allowed.contains(self.slider.minimum)
                                            and allowed.contains(self.slider.maximum)):
            raise ValueError(f"option {self.name}: its slider leaves the range ({allowed and allowed.describe()})")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def range(self) -> Range | None:
        return (RANGES if self.target == SETTINGS else VIDEO_RANGES).get(self.field)

    @property
    def usage(self) -> str:
        """The help as the CLI and the API state it (how a list of names is written)."""
        return self.help + (", by name, comma-separated" if self.kind == "names" else "")

    @property
    def sentence(self) -> str:
        """The help as a sentence (the dashboard's tooltips)."""
        return self.help[:1].upper() + self.help[1:] + "."

    def default(self, video_options: type | None = None) -> Any:
        """The field's dataclass default, None when it has no plain one. A video option needs the class
        (video.sampling.VideoOptions): the analysis package does not import video/."""
        owner = AnalysisSettings if self.target == SETTINGS else video_options
        if owner is None:
            raise TypeError(f"option {self.name} is a video option: pass VideoOptions for its default")
        value = {f.name: f.default for f in fields(owner)}[self.field]
        return None if value is MISSING else value


_OPERATING_POINT = "the models' validated operating point, else {:g}"

# In the HTTP API's order (the OpenAPI document lists them so).
OPTIONS: tuple[Option, ...] = (
    Option("frames", VIDEO, "frames", "integer", "video: evenly spaced frames to analyse",
           slider=Slider(10, 300, 1)),
    Option("every", VIDEO, "every", "integer", "video: analyse every k-th frame instead, not with rate"),
    Option("rate", VIDEO, "rate", "number", "video: analyse this many frames per second instead, not with every",
           slider=Slider(0.1, 30.0, 0.5)),
    Option("start", VIDEO, "start", "number", "video: start time in seconds"),
    Option("end", VIDEO, "end", "number", "video: end time in seconds, after start"),
    Option("strategy", SETTINGS, "strategy", "string",
           "ensemble strategy: how the detectors' probabilities become one", choices=STRATEGY_NAMES),
    Option("fusion", SETTINGS, "fusion", "string",
           "how a video's faces and voice make its overall verdict; auto: either (the more suspicious side) when "
           "the audio detector passes its quality gate, else faces only", choices=FUSION_NAMES),
    Option("threshold", SETTINGS, "threshold", "number", "probability at or above which a face is FAKE",
           default_help=_OPERATING_POINT.format(DEFAULT_THRESHOLD), slider=Slider(0.05, 0.95, 0.01)),
    Option("band", SETTINGS, "band", "number",
           "scores closer than this to the threshold are UNCERTAIN instead of FAKE or REAL",
           default_help=_OPERATING_POINT.format(DEFAULT_BAND), slider=Slider(0.0, 0.3, 0.01)),
    Option("detectors", SETTINGS, "detectors", "names", "the detectors taking part",
           default_help="the loaded ones that pass the quality gate; a named detector is used even if it does not "
                        "pass"),
    Option("margin", SETTINGS, "margin", "number", "face crop margin, fraction of the face box"),
    Option("min_face", SETTINGS, "min_face_size", "integer", "smallest face side in pixels",
           slider=Slider(20, 200, 5)),
    Option("whole_image", SETTINGS, "whole_image_fallback", "boolean", "with no face found, score the whole image"),
    Option("mirror", SETTINGS, "mirror", "boolean",
           "score each face also mirrored left-right and average the two (steadier, twice the detector time)"),
    Option("max_pixels", SETTINGS, "max_pixels", "integer", "refuse images with more pixels", api=False),
)
OPTIONS_BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}
