"""The settings sidebar: decision threshold, uncertainty band, ensemble strategy, detectors; kept across pages."""
from __future__ import annotations

from typing import Any, Callable

import streamlit as st

from analysis.analyzer import VALIDATION, Analyzer, Decision
from analysis.audio.fusion import FUSION_MEANING
from analysis.options import OPTIONS_BY_NAME as OPTION
from analysis.settings import AnalysisSettings

# Short enough for the sidebar's select box; what each one does is in STRATEGY_HELP (the box's tooltip).
STRATEGY_LABELS = {
    "weighted": "Weighted (recommended)",
    "mean_probability": "Average probability",
    "mean_logit": "Average log-odds",
    "majority": "Majority vote",
    "confidence_weighted": "Confidence-weighted",
}
STRATEGY_HELP = (f"{OPTION['strategy'].sentence} **Weighted**: each detector counts by its accuracy "
                 "on validation data (its AUC above chance). **Average probability**: the plain mean. **Average "
                 "log-odds**: the mean on the log-odds scale, where confident detectors pull harder. **Majority "
                 "vote**: each detector votes fake or real, abstaining inside the uncertainty band; the result is "
                 "the share of fake votes. **Confidence-weighted**: each detector counts as much as it is sure.")
# Every widget's default, bounds, options and first help sentence come from analysis.options (tests/
# test_settings_schema.py checks that none is written here); threshold and band start at the models' operating
# point for the chosen strategy and detectors (_decision).
_KEEP = "keep::"  # widget state is dropped when a page without the widget runs: keep a copy under this prefix


def _remember(key: str) -> None:
    st.session_state[_KEEP + key] = st.session_state[key]


def _kept(widget: Callable, label: str, key: str, default: Any, **kwargs: Any) -> Any:
    """A sidebar widget whose value survives page switches (each page's widget is a new widget to Streamlit)."""
    st.session_state[key] = st.session_state.get(_KEEP + key, default)
    return widget(label, key=key, on_change=_remember, args=(key,), **kwargs)


def _slider(label: str, key: str, name: str, value: Any = None, help: str | None = None) -> Any:
    """A kept slider over an option: its table span widened to take in a starting value outside it."""
    option = OPTION[name]
    span = option.slider
    if span is None:
        raise ValueError(f"option {name} has no slider in analysis.options")
    start = option.default() if value is None else value
    return _kept(st.slider, label, key, start, min_value=min(span.minimum, start),
                 max_value=max(span.maximum, start), step=span.step, help=help or option.sentence)


def _reset(keys: list[str]) -> None:
    for key in keys:
        st.session_state.pop(_KEEP + key, None)


def _decision(analyzer: Analyzer) -> Decision:
    """Where threshold and band start: the analyzer's choice for the strategy and detectors kept in the session
    (the widgets below them are drawn later, but their kept values are already known)."""
    strategy = st.session_state.get(_KEEP + "sb_strategy", OPTION["strategy"].default())
    kept = st.session_state.get(_KEEP + "sb_detectors")
    detectors = None
    if kept is not None and analyzer.detectors:
        detectors = analyzer.detectors_setting([n for n in kept if n in analyzer.detectors])
    mirror = st.session_state.get(_KEEP + "sb_mirror", OPTION["mirror"].default())
    return analyzer.decision(AnalysisSettings(strategy=strategy, detectors=detectors, mirror=mirror))


def decision_help(decision: Decision) -> str:
    """The threshold slider's help: where its starting value comes from."""
    op = decision.operating_point
    if decision.source == VALIDATION and op is not None:
        return (f"{OPTION['threshold'].sentence} It starts at the validated operating point of these models "
                f"({op.threshold:.2f} ± {op.band:.2f}): chosen on validation faces so that at most {op.max_fpr:.0%} "
                f"of real faces are false alarms (FAKE); there {op.val.fpr:.1%} of the reals were called FAKE and {op.val.tpr:.1%} of the fakes were caught.")
    return (f"{OPTION['threshold'].sentence} It starts at the built-in default: no validated operating point (at "
            f"most 5% false alarms) applies, as {decision.reason}.")


def settings_sidebar(analyzer: Analyzer) -> AnalysisSettings:
    """Draws the sidebar and returns the settings every analysis of this page uses. Untouched threshold and band
    stay None, so the analysis uses (and its report records) the models' operating point."""
    sb = st.sidebar
    with sb:
        st.markdown("### Decision settings")
        start = _decision(analyzer)
        t0, b0 = float(start.settings.threshold), float(start.settings.band)
        threshold = _slider("Decision threshold", "sb_threshold", "threshold", t0, help=decision_help(start))
        band = _slider("Uncertainty band (±)", "sb_band", "band", b0,
                       help=f"{OPTION['band'].sentence} It starts at the same operating point as the threshold.")
        st.caption(f"Starting point {t0:.2f} ± {b0:.2f}: "
                   + ("the models' validated operating point (at most "
                      f"{start.operating_point.max_fpr:.0%} false alarms on validation reals)"
                      if start.source == VALIDATION and start.operating_point is not None
                      else f"built-in defaults ({start.reason})"))
        choices = OPTION["strategy"].choices or ()
        strategies = [s for s in STRATEGY_LABELS if s in choices] + [s for s in choices if s not in STRATEGY_LABELS]
        strategy = _kept(st.selectbox, "How detectors are combined", "sb_strategy", OPTION["strategy"].default(),
                         options=strategies, format_func=lambda s: STRATEGY_LABELS.get(s, s),
                         help=STRATEGY_HELP)
        loaded = list(analyzer.detectors)
        if loaded:
            kept = st.session_state.get(_KEEP + "sb_detectors")
            if kept is not None:  # a detector that is gone (another models folder) cannot stay selected
                st.session_state[_KEEP + "sb_detectors"] = [n for n in kept if n in loaded]
            voting = analyzer.default_detectors()
            chosen = _kept(st.pills, "Detectors taking part", "sb_detectors", voting, options=loaded,
                           selection_mode="multi",
                           help=f"{OPTION['detectors'].sentence} Selected at first: the detectors that pass the "
                                f"quality gate (validation AUC of at least {analyzer.gate_floor:g} on every data "
                                "source). The others can be added: "
                                "click one to include it or leave it out. Only detectors whose weights loaded are "
                                "listed; the Models page says why one does not vote by default.") or []
            if not chosen:
                st.warning("Select at least one detector.")
        else:
            chosen = []
            st.error("No detector weights are loaded: see the Models page.")
        mirror_option = OPTION["mirror"]
        mirror = _kept(st.checkbox, "Also score each face mirrored", "sb_mirror", mirror_option.default(),
                       help=f"{mirror_option.sentence} The validated operating point holds only for the setting it "
                            "was measured with (the Models page says which); otherwise the built-in threshold and "
                            "band apply.")
        fusion_option = OPTION["fusion"]
        fusion = _kept(st.selectbox, "Faces and voice (videos)", "sb_fusion", fusion_option.default(),
                       options=fusion_option.choices,
                       help=f"{fusion_option.sentence} Both are always shown.\n\n"
                            + "\n".join(f"- **{k}**: {v}" for k, v in FUSION_MEANING.items()))
        with st.expander("Face detection"):
            min_face = _slider("Smallest face to analyse (pixels)", "sb_min_face", "min_face")
            whole = OPTION["whole_image"]
            fallback = _kept(st.checkbox, "No face found: score the whole picture", "sb_fallback", whole.default(),
                             help=f"{whole.sentence} For close-up crops where the face detector finds nothing. "
                                  "Less reliable.")
        st.button("Reset settings", on_click=_reset, key="sb_reset",
                  args=(["sb_threshold", "sb_band", "sb_strategy", "sb_detectors", "sb_mirror", "sb_min_face",
                         "sb_fallback", "sb_fusion"],))
        st.caption(f"{len(loaded)} of {len(loaded) + len(analyzer.load_errors)} detectors loaded")
    moved = {key: _KEEP + key in st.session_state for key in ("sb_threshold", "sb_band")}
    return AnalysisSettings(strategy=strategy, threshold=float(threshold) if moved["sb_threshold"] else None,
                            band=float(band) if moved["sb_band"] else None,
                            detectors=analyzer.detectors_setting(chosen) if loaded else None,
                            min_face_size=int(min_face),
                            whole_image_fallback=bool(fallback), mirror=bool(mirror), fusion=str(fusion))
