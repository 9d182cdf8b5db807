"""Reusable pieces of the pages: verdict badge, explanations, input quality, reproducibility, model notices."""
from __future__ import annotations

import html
import json
from typing import Any, Mapping

import pandas as pd
import streamlit as st

from analysis.analyzer import Analyzer
from analysis.ensemble import AGREEMENT_MEANING, agreement_label, shows_votes, votes_text
from analysis.report import CAVEATS, HEADLINES, VERDICT_EXPLANATIONS as EXPLANATIONS, not_voting_text
from visualization.overlays import FAKE, REAL, UNCERTAIN, verdict_color


def percent(probability: float | None) -> int | None:
    """A probability in whole percent, rounded exactly as the badges and charts write it ("70%"), so a table and
    a badge never show 70.27 % beside 70 %."""
    return None if probability is None else int(f"{float(probability) * 100:.0f}")


def shown_votes(report: Any, votes: Mapping[str, int] | None) -> Mapping[str, int] | None:
    """`votes` when the report's strategy makes its result a vote (majority), else None: what verdict_badge and the
    charts take to show votes instead of a probability."""
    strategy = (getattr(report, "settings", None) or {}).get("strategy")
    return votes if shows_votes(strategy) and votes else None


def verdict_badge(verdict: str | None, probability: float | None, agreement: float | None = None,
                  subject: str = "Verdict", size: str = "large", votes: Mapping[str, int] | None = None) -> None:
    """A coloured verdict box: the headline, the ensemble's fake probability (or, with `votes`, the detectors'
    votes: "2 of 5 detectors say fake") and how far the detectors agree (a large badge explains agreement)."""
    color = verdict_color(verdict)
    headline = HEADLINES.get(verdict, str(verdict))
    big = size == "large"
    if votes:
        prob = votes_text(votes)
    elif big:
        prob = "" if probability is None else f"{percent(probability)}% probability of fake"
    else:
        prob = "" if probability is None else f"{percent(probability)}% fake"
    if big:
        agree = "" if agreement is None else f"detectors agree: {agreement_label(agreement)} ({agreement:.2f})"
    else:
        agree = "" if agreement is None else f"{agreement_label(agreement)} agreement"
    detail = " · ".join(x for x in (prob, agree) if x)
    tooltip = f' title="{html.escape(AGREEMENT_MEANING)}"' if agreement is not None else ""
    st.markdown(
        f"""<div class="verdict-badge" data-verdict="{html.escape(str(verdict))}"{tooltip} style="background:{color};
        color:white;border-radius:10px;padding:{'14px 20px' if big else '6px 12px'};margin:4px 0 10px 0;">
        <div style="font-size:{'0.85rem' if big else '0.75rem'};opacity:0.9;text-transform:uppercase;
        letter-spacing:0.06em;">{html.escape(subject)}</div>
        <div style="font-size:{'2.1rem' if big else '1.25rem'};font-weight:800;line-height:1.15;">{headline}</div>
        <div style="font-size:{'1.0rem' if big else '0.85rem'};opacity:0.95;">{html.escape(detail)}</div></div>""",
        unsafe_allow_html=True,
    )
    if big and agreement is not None:
        st.caption(AGREEMENT_MEANING)


def explanation(verdict: str | None) -> None:
    st.markdown(EXPLANATIONS.get(verdict, EXPLANATIONS[None]))


def caveats() -> None:
    st.caption(":material/warning: " + CAVEATS)


def legend() -> None:
    """The colour key used by badges, boxes and charts."""
    chips = "".join(
        f'<span style="background:{verdict_color(v)};color:white;border-radius:6px;padding:2px 8px;'
        f'margin-right:6px;font-size:0.85rem;font-weight:700;">{HEADLINES[v]}</span>' for v in (FAKE, UNCERTAIN, REAL))
    st.markdown(chips, unsafe_allow_html=True)


_QUALITY_LABELS = {
    "smallest_face_px": ("Smallest face", "{:.0f} px"),
    "median_face_px": ("Typical face", "{:.0f} px"),
    "blur": ("Sharpness", "{:.0f}"),
    "jpeg_quality": ("JPEG quality", "{:.0f}"),
    "fps": ("Frame rate", "{:.1f} fps"),
    "bitrate_kbps": ("Bitrate", "{:.0f} kbit/s"),
    "brightness": ("Brightness", "{:.0f} / 255"),
}


def quality_panel(quality: Mapping[str, Any] | None) -> None:
    """Input quality: a few numbers and every warning, in plain words."""
    quality = dict(quality or {})
    warnings = list(quality.get("warnings") or [])
    title = "Input quality: within what the detectors were trained on" if not warnings else \
        f"Input quality: {len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
    with st.container(border=True):
        st.markdown(f"**{title}**")
        items: list[tuple[str, str]] = []
        if quality.get("width") and quality.get("height"):
            items.append(("Resolution", f"{quality['width']}×{quality['height']}"))
        for key, (label, fmt) in _QUALITY_LABELS.items():
            value = quality.get(key)
            if isinstance(value, (int, float)):
                items.append((label, fmt.format(value)))
        if "jpeg_quality" in quality and quality.get("jpeg_quality") is None and "fps" not in quality:
            items.append(("JPEG quality", "not a JPEG"))
        if items:
            cols = st.columns(min(len(items), 5))
            for i, (label, value) in enumerate(items[:10]):
                cols[i % len(cols)].metric(label, value)
        for w in warnings:
            st.warning(w, icon=":material/warning:")
        if not warnings:
            st.caption("Resolution, face size, sharpness and compression are all in the range the detectors know.")


def not_voting_caption(report: Any) -> None:
    """A short caption on the loaded detectors the quality gate left out of this result (silent when none)."""
    entries = getattr(report, "models_not_voting", None) or []
    if entries:
        st.caption(f":material/how_to_vote: Not voting (quality gate): {not_voting_text(entries)}. "
                   "Select them in the sidebar to include them.")


def reproducibility_panel(report: Any) -> None:
    """What is needed to reproduce the result: input checksum, model checksums, settings, timings."""
    with st.expander("Reproducibility: checksums, settings, timings"):
        st.markdown(f"**Input SHA-256:** `{getattr(report, 'sha256', None) or 'n/a'}`")
        checksums = getattr(report, "model_checksums", {}) or {}
        if checksums:
            st.markdown("**Detectors used** (manifest checksums)")
            st.dataframe(pd.DataFrame({"detector": list(checksums), "checksum": list(checksums.values())}),
                         hide_index=True)
        missing = getattr(report, "models_missing", {}) or {}
        if missing:
            st.markdown("**Detectors not available:** " + "; ".join(f"{n} ({why})" for n, why in missing.items()))
        timings = getattr(report, "timings", {}) or {}
        if timings:
            st.markdown("**Time per stage** (seconds)")
            seconds = [round(float(v), 3) for v in timings.values()]
            st.dataframe(pd.DataFrame({"stage": list(timings), "seconds": seconds}),
                         hide_index=True)
        st.markdown("**Settings**")
        st.code(json.dumps(getattr(report, "settings", {}) or {}, indent=2, default=str), language="json")


HOW_TO = """\
python -m train.prepare --data DIR --out data_cache/NAME          # face crops, same face finder as the app
python -m train.train_{name} --data data_cache/NAME/index.csv     # train, evaluate, calibrate
python -m train.convert --checkpoint runs/{name}/<stamp>/best.pt --out {models_dir}"""


def how_to_make(name: str, models_dir: Any) -> str:
    """The commands that train and convert detector `name` into the models folder."""
    return HOW_TO.format(name=name, models_dir=models_dir)


def models_notice(analyzer: Analyzer, where: str = "page") -> None:
    """Says which detectors are missing and how to make them; silent when all loaded."""
    missing = dict(analyzer.load_errors)
    if not missing:
        return
    folder = analyzer.models_dir
    commands = "\n\n".join(f"# {n}\n" + how_to_make(n, folder) for n in missing)
    if not analyzer.detectors:
        st.error(f"No detector weights were found in `{folder}`, so nothing can be scored yet. "
                 "The input-quality check still runs.", icon=":material/block:")
    else:
        st.warning(f"{len(missing)} of {len(missing) + len(analyzer.detectors)} detectors are not available: "
                   f"{', '.join(missing)}. The verdict uses the others.", icon=":material/warning:")
    with st.expander("Why, and how to add the missing detectors"):
        for name, why in missing.items():
            st.markdown(f"- **{name}**: {why}")
        st.markdown(f"Train and convert them with the `train/` scripts (each writes `{folder}/<name>/` with "
                    "`model.safetensors` and `manifest.json`), then restart the app:")
        st.code(commands, language="bash")
        st.caption("Set DEEPFAKE_MODELS_DIR to use another models folder.")
