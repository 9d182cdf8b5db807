"""The Models page's body: every registered detector's manifest, and why a missing one did not load."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from analysis.analyzer import Analyzer
from analysis.audio.engine import audio_models

from .components import how_to_make

MODELS_ROW_HEIGHT = 72   # px
ENGINE_NAMES = {"onnxruntime": "ONNX Runtime", "pytorch": "PyTorch"}


def _metric(manifest: dict, *keys: str) -> float | None:
    metrics = manifest.get("metrics") or {}
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def training_data_text(training: dict | None) -> str:
    """One line on what a detector was trained on, from its manifest's `training` record."""
    data = (training or {}).get("data")
    if isinstance(data, str):
        return data
    if isinstance(data, dict):
        sources = list((data.get("sources") or {}).keys())
        total = data.get("total")
        text = ", ".join(sources) if sources else ", ".join(Path(str(d)).name for d in data.get("data") or [])
        if isinstance(total, int):
            text += f" ({total:,} faces)"
        return text or "recorded, no source names"
    return "not recorded"


def votes_text(entry: dict[str, Any]) -> str:
    """The "Votes by default" cell: yes / no, and why not (the quality gate's reason)."""
    if not entry.get("loaded"):
        return "no (not loaded)"
    reason = entry.get("gate_reason")
    if entry.get("votes"):
        return "✓ yes" + (f" (gate fallback; {reason})" if reason else "")
    return f"✗ no: {reason}" if reason else "✗ no"


def _summary_rows(info: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for entry in info:
        m = entry.get("manifest") or {}
        # what decides a result first (left), what describes the model after: the table fits the page's width
        rows.append({
            "Detector": entry["name"], "Loaded": "✓ yes" if entry["loaded"] else "✗ no",
            "Votes by default": votes_text(entry),
            "Held-out AUC": _metric(m, "test_auc", "val_auc", "auc"),
            "Ensemble weight": entry.get("weight_in_ensemble"),
            "Temperature": m.get("temperature"),
            "Input size": f"{entry.get('input_size') or entry['default_input_size']} px",
            "Engine": ENGINE_NAMES.get(entry.get("engine"), ""),
            "Training data": training_data_text(m.get("training")) if entry["loaded"] else "",
            "Architecture": f"{entry['architecture']} ({entry['family']})",
        })
    return pd.DataFrame(rows)


def _cell(value: Any) -> str:
    """Metric values as text: one column type for Arrow, floats rounded, undefined ones (NaN, saved as null) shown."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _split_metrics(metrics: dict) -> tuple[pd.DataFrame, dict[str, dict]]:
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) or v is None}
    nested = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    df = pd.DataFrame({"metric": list(scalars), "value": [_cell(v) for v in scalars.values()]})
    return df, nested


def operating_point_markdown(op: dict[str, Any]) -> str:
    """The Models page's paragraph on the default threshold and band (Analyzer.operating_point_info)."""
    head = f"**Default decision threshold {op['threshold']:.3f} ± band {op['band']:.3f}**"
    if op.get("source") != "validation":
        return (f"{head}: built-in defaults — {op.get('reason')}. Write one with "
                "`python -m train.evaluate ... --operating-point-split val --out-operating-point "
                f"{op.get('file')}`.")
    return (f"{head}: the validated operating point of the {op['strategy']} ensemble of "
            f"{', '.join(op.get('detectors') or [])}"
            f"{' (faces scored with their mirror image too)' if op.get('mirror') else ''}, chosen so that at most "
            f"{op['max_fpr']:.0%} of real faces are "
            f"false alarms. On validation: false-positive rate {op['val_fpr']:.1%} ({op['val_n_real']} reals), "
            f"true-positive rate {op['val_tpr']:.1%} ({op['val_n_fake']} fakes). From `{op['file']}`"
            f"{', ' + op['created'] if op.get('created') else ''}; the sidebar's sliders override it.")


def render_models_page(analyzer: Analyzer) -> None:
    info = analyzer.model_info()
    loaded = sum(1 for e in info if e["loaded"])
    st.markdown(f"**{loaded} of {len(info)} detectors loaded** from `{analyzer.models_dir}` "
                "(set DEEPFAKE_MODELS_DIR to use another folder).")
    if analyzer.detectors:
        st.caption(f"Quality gate: a detector votes by default only when its validation AUC is at least "
                   f"{analyzer.gate_floor:g} on every data source; below that it is near a coin flip there and "
                   "would only dilute the ensemble. Detectors that do not vote can still be selected in the sidebar.")
    if analyzer.gate_note():
        st.warning(f"{analyzer.gate_note()[0].upper()}{analyzer.gate_note()[1:]}.", icon=":material/how_to_vote:")
    st.markdown(operating_point_markdown(analyzer.operating_point_info()))
    # rows tall enough (over 4rem) for the long cells to wrap within their column instead of widening the table
    st.dataframe(_summary_rows(info), hide_index=True, row_height=MODELS_ROW_HEIGHT, column_config={
        "Loaded": st.column_config.TextColumn(width=70),
        "Votes by default": st.column_config.TextColumn(help="Whether the detector takes part in the default "
                                                             "ensemble (quality gate), and why not", width="medium"),
        "Held-out AUC": st.column_config.NumberColumn(format="%.3f", width=100,
                                                      help="Area under the ROC curve on data held out from training "
                                                           "(1.0 perfect, 0.5 chance)"),
        "Ensemble weight": st.column_config.NumberColumn(format="%.3f", width=110),
        "Temperature": st.column_config.NumberColumn(format="%.2f", width=100,
                                                     help="Calibration: logits are divided by it"),
        "Input size": st.column_config.TextColumn(width=80),
        "Training data": st.column_config.TextColumn(width="medium"),
        "Architecture": st.column_config.TextColumn(width="medium")})
    for entry in info:
        name = entry["name"]
        icon = ":material/check_circle:" if entry["loaded"] else ":material/error:"
        with st.expander(f"{icon} {name} — {entry['architecture']}", expanded=not entry["loaded"]):
            if not entry["loaded"]:
                st.error(f"Not loaded: {entry.get('error') or 'unknown reason'}")
                st.markdown("How to make it:")
                st.code(how_to_make(name, analyzer.models_dir), language="bash")
                st.caption(f"Registry default input size: {entry['default_input_size']} px · family: {entry['family']}")
                continue
            m = entry.get("manifest") or {}
            c = st.columns(4)
            c[0].metric("Input size", f"{entry['input_size']} px")
            c[1].metric("Held-out AUC", "n/a" if _metric(m, "test_auc", "val_auc", "auc") is None
                        else f"{_metric(m, 'test_auc', 'val_auc', 'auc'):.3f}")
            c[2].metric("Calibration temperature", f"{m.get('temperature', 1.0):.2f}")
            c[3].metric("Ensemble weight", f"{entry.get('weight_in_ensemble', 0):.3f}")
            st.markdown(f"**Votes by default:** {votes_text(entry)}")
            left, right = st.columns(2, gap="large")
            with left:
                st.markdown(f"**Training data:** {training_data_text(m.get('training'))}")
                training = m.get("training") or {}
                if training:
                    st.json(training, expanded=False)
                else:
                    st.caption("Not recorded in the manifest.")
                st.markdown("**Calibration**")
                ece_b = _metric(m, "test_ece_before", "val_ece_before")
                ece_a = _metric(m, "test_ece_after", "val_ece_after")
                text = f"Temperature scaling, T = {m.get('temperature', 1.0):.3f}"
                if ece_b is not None and ece_a is not None:
                    text += f"; expected calibration error {ece_b:.3f} → {ece_a:.3f}"
                st.markdown(text + f". Decision threshold in the manifest: {m.get('threshold', 0.5):.2f}.")
            with right:
                st.markdown("**Held-out metrics**")
                df, nested = _split_metrics(m.get("metrics") or {})
                if len(df):
                    st.dataframe(df, hide_index=True)
                else:
                    st.caption("No metrics in the manifest.")
                for key, value in nested.items():
                    st.markdown(f"*{key}*")
                    cells = [json.dumps(v) if isinstance(v, (dict, list)) else _cell(v) for v in value.values()]
                    st.dataframe(pd.DataFrame({"group": list(value), "value": cells}),
                                 hide_index=True)
            st.caption(f"Weights: `{entry.get('weights')}` · SHA-256 `{entry.get('checksum')}` "
                       f"(verified at load) · created {m.get('created') or '?'} · run {m.get('run_id') or '?'} · "
                       f"normalisation mean {m.get('mean')} std {m.get('std')}")


def render_audio_models(models_dir: Any) -> None:
    """The audio detectors, apart from the face detectors above (their own registry; they never vote on faces):
    load status, quality gate (which decides whether the voice counts in a video's `auto` fusion), metrics."""
    st.markdown("### Audio detectors (the voice)")
    info = audio_models(models_dir).info()
    if not info:
        st.caption("No audio detector is registered.")
        return
    for entry in info:
        name = entry["name"]
        if not entry["loaded"]:
            st.error(f"{name}: not loaded: {entry.get('error')}")
            st.code("python -m train.train_audio --threads 1", language="bash")
            continue
        gate = entry.get("gate") or {}
        metrics = entry.get("metrics") or {}
        with st.expander(f":material/graphic_eq: {name} — {entry['architecture']}"):
            c = st.columns(3)
            c[0].metric("Test AUC (speaker-grouped)", _cell(metrics.get("test_auc")))
            c[1].metric("Test AUC after MP3", _cell(metrics.get("test_auc_codec")))
            c[2].metric("Calibration temperature", f"{entry['temperature']:.2f}")
            st.markdown(f"**Counts in a video's `auto` fusion:** {'yes' if gate.get('votes') else 'no'}"
                        + (f" — {gate['reason']}" if gate.get("reason") else ""))
            st.json({k: v for k, v in metrics.items() if k not in ("test_auc", "test_auc_codec")}, expanded=False)
            st.caption(f"SHA-256 `{entry['sha256']}` (verified at load) · created {entry.get('created') or '?'} · "
                       "model card: MODEL_CARD.md in its folder")
