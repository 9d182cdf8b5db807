"""The analysis parameters of POST /v1/analyze and POST /v1/jobs, in one table read by both the parser and the
OpenAPI document, so the document states exactly what the server accepts.

Ranges, enums and defaults come from the one settings schema (`analysis.settings`: RANGES, VIDEO_RANGES,
STRATEGY_NAMES, the dataclass defaults) and the detector registry; the only server-side number is the `frames` cap
(`ApiConfig.max_frames`). Values are parsed strictly, as an OpenAPI client sends them: numbers in JSON syntax,
booleans `true` / `false`, enums exactly; an empty value is refused like any other bad one (leave the
parameter out for its default).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from analysis.settings import FUSION_NAMES, RANGES, STRATEGY_NAMES, VIDEO_RANGES, AnalysisSettings, Range

from .config import ApiConfig
from .limits import ApiError

FORMATS = ("json", "html")
ANALYZE, JOBS = "analyze", "jobs"
FILENAME = "filename"   # raw-body uploads only: the name the report shows (multipart takes the part's file name)
_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Param:
    """One parameter: `target` "settings" (AnalysisSettings field), "video" (VideoOptions field) or "format"."""
    name: str
    target: str
    field: str
    kind: str                   # "integer" | "number" | "boolean" | "string"
    help: str
    operations: tuple[str, ...] = (ANALYZE, JOBS)


PARAMS: tuple[Param, ...] = (
    Param("frames", "video", "frames", "integer", "video: evenly spaced frames to analyse"),
    Param("every", "video", "every", "integer", "video: analyse every k-th frame instead (not with rate)"),
    Param("rate", "video", "rate", "number", "video: analyse this many frames per second instead (not with every)"),
    Param("start", "video", "start", "number", "video: start time in seconds"),
    Param("end", "video", "end", "number", "video: end time in seconds (after start)"),
    Param("strategy", "settings", "strategy", "string", "ensemble strategy"),
    Param("fusion", "settings", "fusion", "string",
          "video: how faces and voice make the overall verdict (`auto`: `either`, the more suspicious side, when the audio detector passes "
          "its quality gate, else faces only)"),
    Param("threshold", "settings", "threshold", "number",
          "probability at or above which a face is FAKE (default: the models' validated operating point, "
          "GET /v1/models `operating_point`, else 0.5)"),
    Param("band", "settings", "band", "number",
          "|p - threshold| below this is UNCERTAIN (default: the models' validated operating point, else 0.1)"),
    Param("detectors", "settings", "detectors", "string",
          "comma-separated detector names (default: the loaded ones that pass the quality gate, see GET /v1/models "
          "`votes`; a named detector is used even if it does not pass; at least one must be loaded, else 422)"),
    Param("margin", "settings", "margin", "number", "face crop margin, fraction of the face box"),
    Param("min_face", "settings", "min_face_size", "integer", "smallest face side in pixels"),
    Param("whole_image", "settings", "whole_image_fallback", "boolean", "with no face found, score the whole image"),
    Param("format", "format", "format", "string",
          "`json`, or `html`: a self-contained HTML report to share (pictures embedded, printable to PDF); "
          "a job always offers both", operations=(ANALYZE,)),
)
BY_NAME = {p.name: p for p in PARAMS}


def params_for(operation: str) -> list[Param]:
    return [p for p in PARAMS if operation in p.operations]


def _video_options_class() -> type:
    from video.sampling import VideoOptions
    return VideoOptions


def value_range(param: Param, config: ApiConfig) -> Range | None:
    if param.target == "video":
        allowed = VIDEO_RANGES[param.field]
        return replace(allowed, maximum=config.max_frames) if param.field == "frames" else allowed
    return RANGES.get(param.field) if param.target == "settings" else None


def detectors_pattern() -> str:
    """Comma-separated names of registered detectors (spaces and empty items allowed), as a regular expression."""
    from detectors.registry import detector_names

    name = "(?:" + "|".join(re.escape(n) for n in detector_names()) + ")"
    return rf"^[ \t,]*{name}(?:[ \t]*,[ \t,]*{name})*[ \t,]*$"


def default_of(param: Param) -> Any:
    owner = AnalysisSettings if param.target == "settings" else _video_options_class()
    if param.target == "format":
        return FORMATS[0]
    default = {f.name: f.default for f in fields(owner)}.get(param.field)
    return default if isinstance(default, (bool, int, float, str)) else None


def json_schema(param: Param, config: ApiConfig) -> dict[str, Any]:
    """The parameter's JSON Schema: what `parse_params` accepts, no more and no less."""
    allowed = value_range(param, config)
    if allowed is not None:
        schema = allowed.json_schema()
    elif param.kind == "boolean":
        schema = {"type": "boolean"}
    elif param.name == "strategy":
        schema = {"type": "string", "enum": list(STRATEGY_NAMES)}
    elif param.name == "fusion":
        schema = {"type": "string", "enum": list(FUSION_NAMES)}
    elif param.name == "format":
        schema = {"type": "string", "enum": list(FORMATS)}
    elif param.name == "detectors":
        schema = {"type": "string", "pattern": detectors_pattern()}
    else:
        raise ValueError(f"parameter {param.name} has no schema")
    default = default_of(param)
    if default is not None:
        schema["default"] = default
    return {**schema, "description": param.help}


# ------------------------------------------------------------------------------------------------- parsing
def _bad(message: str) -> ApiError:
    return ApiError(422, "invalid_parameter", message)


def _parse_value(param: Param, raw: str, config: ApiConfig) -> Any:
    if param.kind == "boolean":
        if raw not in ("true", "false"):
            raise _bad(f"{param.name} must be true or false, got {raw!r}")
        return raw == "true"
    allowed = value_range(param, config)
    if allowed is None:
        return raw
    syntax = _INTEGER if allowed.integer else _NUMBER
    if not syntax.fullmatch(raw):
        raise _bad(f"{param.name} must be {'an integer' if allowed.integer else 'a number'}, got {raw!r}")
    value = int(raw) if allowed.integer else float(raw)
    if not allowed.contains(value):
        raise _bad(f"{param.name} must be {allowed.describe()}, got {raw!r}")
    return value


def parse_params(values: dict[str, str], config: ApiConfig, analyzer: Any, operation: str) -> tuple[Any, Any, str]:
    """Form fields / query parameters -> (AnalysisSettings, VideoOptions, format); ApiError 422 for bad values."""
    from detectors.registry import detector_names

    known = [p.name for p in params_for(operation)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise _bad(f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(known)}")
    given = {name: _parse_value(BY_NAME[name], raw, config) for name, raw in values.items()}
    if "strategy" in given and given["strategy"] not in STRATEGY_NAMES:
        raise _bad(f"unknown strategy {given['strategy']!r}; choose one of {', '.join(STRATEGY_NAMES)}")
    if "fusion" in given and given["fusion"] not in FUSION_NAMES:
        raise _bad(f"unknown fusion {given['fusion']!r}; choose one of {', '.join(FUSION_NAMES)}")
    form = given.pop("format", FORMATS[0])
    if form not in FORMATS:
        raise _bad(f"format must be one of {', '.join(FORMATS)}, got {form!r}")
    if "detectors" in given:
        raw = given["detectors"]
        names = [d.strip(" \t") for d in raw.split(",") if d.strip(" \t")]
        bad = [n for n in names if n not in detector_names()]
        if bad or not re.fullmatch(detectors_pattern(), raw):
            raise _bad(f"unknown detector(s): {', '.join(bad) or repr(raw)}; known: {', '.join(detector_names())}")
        if not any(n in analyzer.detectors for n in names):
            raise _bad(f"none of the requested detectors is loaded: {', '.join(names)}; "
                       f"loaded: {', '.join(analyzer.detectors)}")
        given["detectors"] = names
    settings_fields: dict[str, Any] = {"max_pixels": config.max_pixels}
    options = _video_options_class()(max_frames=config.max_frames, keep_thumbnails=False)
    for name, value in given.items():
        param = BY_NAME[name]
        if param.target == "settings":
            settings_fields[param.field] = value
        else:
            setattr(options, param.field, value)
    try:
        settings = AnalysisSettings(**settings_fields)   # the same checks as every other entry point
        options.validate()
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return settings, options, form
