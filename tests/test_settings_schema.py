"""One schema for the analysis options (analysis.options.OPTIONS): the CLI flags, the HTTP API's parameters and the
dashboard's sidebar state exactly its defaults, ranges and choices, and a bad value is the same one-line error
everywhere, each front-end only putting it in its own form (exit 2, HTTP 422)."""
from __future__ import annotations

import argparse
import ast
from dataclasses import fields
from pathlib import Path

import pytest

import cli
from analysis.options import OPTIONS, OPTIONS_BY_NAME, SETTINGS, VIDEO, Option, Slider
from analysis.settings import AnalysisSettings, Range
from api.config import ApiConfig
from api.limits import ApiError
from api.params import PARAMS, json_schema, params_for, parse_params
from cli_common import add_analysis_options, settings_from_args, video_options_from_args
from video.sampling import VideoOptions

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ApiConfig(models_dir="unused")
CLI_ONLY = {"--models-dir", "-h", "--help"}   # not analysis settings
API_ONLY = {"format"}


class NoDetectors:
    detectors: dict = {}


def cli_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="test")
    add_analysis_options(parser)
    return parser


def actions() -> dict[str, argparse.Action]:
    return {flag: a for a in cli_parser()._actions for flag in a.option_strings}


def outside(allowed: Range) -> float:
    """A value the range refuses, just past one of its ends."""
    if allowed.minimum is not None:
        return allowed.minimum if allowed.exclusive_minimum else allowed.minimum - 1
    assert allowed.maximum is not None
    return allowed.maximum if allowed.exclusive_maximum else allowed.maximum + 1


def api_values(option: Option, value: object) -> dict[str, str]:
    return {option.name: str(value).lower() if isinstance(value, bool) else str(value)}


# ------------------------------------------------------------------------------------------------ the table
def test_the_table_names_real_fields_with_fitting_kinds() -> None:
    owners = {SETTINGS: {f.name for f in fields(AnalysisSettings)}, VIDEO: {f.name for f in fields(VideoOptions)}}
    assert len(OPTIONS_BY_NAME) == len(OPTIONS)
    for option in OPTIONS:
        assert option.field in owners[option.target], option.name
        default = option.default(VideoOptions)
        if option.kind in ("integer", "number"):
            assert option.range is not None, f"{option.name} has no range in analysis.settings"
            assert default is None or option.range.contains(default), option.name
        if option.choices is not None:
            assert default in option.choices, option.name
        if option.kind == "boolean":
            assert isinstance(default, bool), option.name
        assert option.help == option.help.strip() and not option.help.endswith("."), option.name


def test_a_slider_outside_its_range_or_a_kind_against_it_is_refused() -> None:
    with pytest.raises(ValueError, match="slider"):
        Option("band", SETTINGS, "band", "number", "x", slider=Slider(0.0, 0.5, 0.01))   # 0.5 is excluded
    with pytest.raises(ValueError, match="kind"):
        Option("min_face", SETTINGS, "min_face_size", "number", "x")
    with pytest.raises(TypeError, match="VideoOptions"):
        OPTIONS_BY_NAME["frames"].default()


# ------------------------------------------------------------------------------------------------ the CLI
def test_every_option_is_a_cli_flag_with_the_same_default_type_and_choices() -> None:
    flags = actions()
    defaults = vars(cli_parser().parse_args([]))
    # a boolean that defaults to on also has its --no- form (argparse.BooleanOptionalAction)
    negations = {"--no-" + o.flag[2:] for o in OPTIONS if o.kind == "boolean" and o.default()}
    assert set(flags) - CLI_ONLY - negations == {o.flag for o in OPTIONS}
    for option in OPTIONS:
        action = flags[option.flag]
        default = option.default(VideoOptions)
        assert action.dest == option.name and defaults[option.name] == default, option.name
        assert action.choices == option.choices, option.name
        if option.kind == "boolean":
            assert action.nargs == 0 and (option.flag.replace("--", "--no-", 1) in flags) == bool(default), \
                option.name
        else:
            assert action.type is {"integer": int, "number": float}.get(option.kind, str), option.name
        assert option.usage in action.help, option.name
        if option.range is not None:
            assert option.range.describe() in action.help, option.name
        if option.default_help:
            assert option.default_help in action.help, option.name


def test_cli_defaults_are_the_dataclasses_defaults() -> None:
    args = cli_parser().parse_args([])
    settings = settings_from_args(args)
    for option in OPTIONS:
        if option.target == SETTINGS:
            assert getattr(settings, option.field) == getattr(AnalysisSettings(), option.field), option.name
    assert video_options_from_args(args) == VideoOptions()


def test_cli_flags_reach_their_fields() -> None:
    args = cli_parser().parse_args(["--min-face", "55", "--whole-image", "--max-pixels", "1000", "--detectors",
                                    "swin, xception", "--strategy", "majority", "--fusion", "faces",
                                    "--frames", "7", "--start", "1.5", "--mirror"])
    settings, video = settings_from_args(args), video_options_from_args(args)
    assert (settings.min_face_size, settings.whole_image_fallback, settings.max_pixels) == (55, True, 1000)
    assert settings.mirror is True and settings_from_args(cli_parser().parse_args([])).mirror is False
    assert (settings.detectors, settings.strategy, settings.fusion) == (["swin", "xception"], "majority", "faces")
    assert (video.frames, video.start) == (7, 1.5)


# ------------------------------------------------------------------------------------------------ the API
def test_every_api_option_is_an_api_parameter_with_the_same_default_range_and_choices() -> None:
    by_name = {p.name: p for p in PARAMS}
    assert set(by_name) - API_ONLY == {o.name for o in OPTIONS if o.api}
    assert [p.name for p in params_for("analyze")][:-1] == [o.name for o in OPTIONS if o.api]
    for option in (o for o in OPTIONS if o.api):
        param = by_name[option.name]
        assert (param.target, param.field, param.kind, param.choices) == (option.target, option.field, option.kind,
                                                                           option.choices)
        schema = json_schema(param, CONFIG)
        default = option.default(VideoOptions)
        assert schema.get("default") == default, option.name
        assert schema["description"].startswith(option.usage), option.name
        if option.choices is not None:
            assert schema["enum"] == list(option.choices), option.name
        if option.range is not None:
            expected = option.range.json_schema()
            if option.name == "frames":   # the server's cap on top of the table's range
                expected["maximum"] = CONFIG.max_frames
            assert {k: v for k, v in schema.items() if k not in ("default", "description")} == expected, option.name
        if option.kind == "boolean":
            assert schema["type"] == "boolean"


def test_options_the_server_fixes_are_not_parameters() -> None:
    fixed = [o.name for o in OPTIONS if not o.api]
    assert fixed == ["max_pixels"]
    assert not {p.name for p in PARAMS} & set(fixed)


# ------------------------------------------------------------------------------------------------ one error
@pytest.mark.parametrize("option", [o for o in OPTIONS if o.range is not None and o.name != "frames"],
                         ids=lambda o: o.name)
def test_a_value_out_of_range_is_the_same_error_in_the_cli_and_the_api(option: Option) -> None:
    bad = outside(option.range)
    value = int(bad) if option.range.integer else bad
    args = cli_parser().parse_args([option.flag, str(value)])
    with pytest.raises(ValueError, match=f"must be {option.range.describe()}"):
        settings_from_args(args) if option.target == SETTINGS else video_options_from_args(args)
    if option.api:
        with pytest.raises(ApiError) as err:
            parse_params(api_values(option, value), CONFIG, NoDetectors(), "analyze")
        assert err.value.status == 422 and f"must be {option.range.describe()}" in err.value.message


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.choices], ids=lambda o: o.name)
def test_an_unknown_choice_is_the_settings_error_in_the_cli_and_the_api(option: Option) -> None:
    with pytest.raises(ValueError) as settings_error:
        AnalysisSettings(**{option.field: "nope"})
    with pytest.raises(ApiError) as err:
        parse_params({option.name: "nope"}, CONFIG, NoDetectors(), "analyze")
    assert err.value.status == 422 and err.value.message == str(settings_error.value)
    with pytest.raises(SystemExit) as exit_:
        cli_parser().parse_args([option.flag, "nope"])
    assert exit_.value.code == 2


def test_bad_video_options_are_a_one_line_cli_usage_error(capsys, tmp_path) -> None:
    assert cli.main(["analyze", str(tmp_path), "--frames", "0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: frames must be at least 1, got 0"
    assert cli.main(["analyze", str(tmp_path), "--every", "2", "--rate", "1"]) == 2
    assert "choose one of every= and rate=" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ the sidebar
SIDEBAR = ROOT / "ui" / "sidebar.py"


def sidebar_tree() -> ast.Module:
    return ast.parse(SIDEBAR.read_text(encoding="utf-8"))


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == name]


def test_the_sidebar_writes_no_default_bound_step_or_choice_of_its_own() -> None:
    tree = sidebar_tree()
    numbers = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]
    assert numbers == [], f"ui/sidebar.py states numbers of its own: {numbers}; put them in analysis.options"
    kept = calls(tree, "_kept")
    assert kept, "the sidebar's widgets go through _kept"
    for call in kept:
        default = call.args[3] if len(call.args) > 3 else None
        assert default is not None and not isinstance(default, (ast.Constant, ast.List, ast.Tuple, ast.Dict)), \
            f"line {call.lineno}: a widget's default is written in the sidebar"
        for keyword in call.keywords:
            if keyword.arg in ("options", "min_value", "max_value", "step", "value"):
                assert not isinstance(keyword.value, (ast.Constant, ast.List, ast.Tuple)), \
                    f"line {call.lineno}: {keyword.arg} is written in the sidebar"


def test_the_sidebar_shows_every_slider_option_through_the_table() -> None:
    shown = {call.args[2].value for call in calls(sidebar_tree(), "_slider")
             if isinstance(call.args[2], ast.Constant)}
    assert shown == {o.name for o in OPTIONS if o.slider is not None and o.target == SETTINGS}
    source = SIDEBAR.read_text(encoding="utf-8")
    for name in ("strategy", "fusion", "detectors", "whole_image", "threshold", "band"):
        assert f"OPTION['{name}']" in source or f'OPTION["{name}"]' in source, name


def test_the_video_page_takes_its_frame_controls_from_the_table() -> None:
    """The frame count and rate widgets of the Video page state no bound, step or default of their own."""
    page = Path(__file__).resolve().parent.parent / "pages" / "2_Video.py"
    tree = ast.parse(page.read_text(encoding="utf-8"))
    widgets = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
               and n.func.attr in ("slider", "number_input") and n.args
               and isinstance(n.args[0], ast.Constant) and "Frames" in str(n.args[0].value)]
    assert len(widgets) == 2
    for call in widgets:
        values = list(call.args[1:]) + [k.value for k in call.keywords if k.arg in ("min_value", "max_value", "step")]
        assert values and not any(isinstance(v, ast.Constant) for v in values), ast.unparse(call)
    assert {"frames", "rate"} <= {o.name for o in OPTIONS if o.slider is not None and o.target == VIDEO}

