"""The analysis parameters of POST /v1/analyze and POST /v1/jobs, in one table read by both the parser and the
OpenAPI document, so the document states exactly what the server accepts.

The analysis parameters are analysis.options.OPTIONS (the one table the CLI flags and the dashboard's sidebar come
from too; its ranges, choices and defaults are analysis.settings' and the dataclasses'); the detector names come
from the registry; the only server-side number is the `frames` cap (`ApiConfig.max_frames`), and `format` is the
API's own. Values are parsed strictly, as an OpenAPI client sends them: numbers in JSON syntax,
booleans `true` / `false`, enums exactly; an empty value is refused like any other bad one (leave the
parameter out for its default).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from analysis.options import OPTIONS, OPTIONS_BY_NAME, SETTINGS, VIDEO, Option
from analysis.settings import AnalysisSettings, Range

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
    kind: str                   # "integer" | "number" | "boolean" | "string" | "names" (comma-separated detectors)
    help: str
    operations: tuple[str, ...] = (ANALYZE, JOBS)
    choices: tuple[str, ...] | None = None


# Where this API tells more, after an option's default in words.
API_NOTES = {
    "threshold": "see GET /v1/models `operating_point`",
    "detectors": "see GET /v1/models `votes`; at least one must be loaded, else 422",
}


def _description(option: Option) -> str:
    """The option's help and, for a default decided at analysis time, that default in words."""
    notes = [n for n in (option.default_help, API_NOTES.get(option.name)) if n]
    return f"{option.usage} (default: {'; '.join(notes)})" if option.default_help else option.usage


def _from_option(option: Option) -> Param:
    return Param(option.name, option.target, option.field, option.kind, _description(option),
                 choices=option.choices)


PARAMS: tuple[Param, ...] = (
    *(_from_option(o) for o in OPTIONS if o.api),
    Param("format", "format", "format", "string",
          "`json`, or `html`: a self-contained HTML report to share (pictures embedded, printable to PDF); "
          "a job always offers both", operations=(ANALYZE,), choices=FORMATS),
)
BY_NAME = {p.name: p for p in PARAMS}


def params_for(operation: str) -> list[Param]:
    return [p for p in PARAMS if operation in p.operations]


def _video_options_class() -> type:
    from video.sampling import VideoOptions
    return VideoOptions


def value_range(param: Param, config: ApiConfig) -> Range | None:
    if param.target not in (SETTINGS, VIDEO):
        return None
    allowed = OPTIONS_BY_NAME[param.name].range
    if param.target == VIDEO and param.field == "frames" and allowed is not None:
        return replace(allowed, maximum=config.max_frames)
    return allowed


def detectors_pattern() -> str:
    """Comma-separated names of registered detectors (spaces and empty items allowed), as a regular expression."""
    from detectors.registry import detector_names

    name = "(?:" + "|".join(re.escape(n) for n in detector_names()) + ")"
    return rf"^[ \t,]*{name}(?:[ \t]*,[ \t,]*{name})*[ \t,]*$"


def default_of(param: Param) -> Any:
    if param.target == "format":
        return FORMATS[0]
    default = OPTIONS_BY_NAME[param.name].default(_video_options_class())
    return default if isinstance(default, (bool, int, float, str)) else None


def json_schema(param: Param, config: ApiConfig) -> dict[str, Any]:
    """The parameter's JSON Schema: what `parse_params` accepts, no more and no less."""
    allowed = value_range(param, config)
    if allowed is not None:
        schema = allowed.json_schema()
    elif param.kind == "boolean":
        schema = {"type": "boolean"}
    elif param.choices is not None:
        schema = {"type": "string", "enum": list(param.choices)}
    elif param.kind == "names":
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
        if param.target == SETTINGS:
            settings_fields[param.field] = value
        else:
            setattr(options, param.field, value)
    try:
        settings = AnalysisSettings(**settings_fields)   # the same checks as every other entry point
        options.validate()
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return settings, options, form
