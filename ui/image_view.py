"""How one analysed picture is shown: boxed faces, crops, per-detector charts, verdict, quality, downloads."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from analysis.ensemble import AGREEMENT_MEANING, agreement_label, shows_votes, votes_text
from analysis.report import face_count_text
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD
from visualization.charts import model_probability_chart
from visualization.overlays import scale_faces

from .components import (HEADLINES, caveats, explanation, not_voting_caption, percent, quality_panel,
                         reproducibility_panel, shown_votes, verdict_badge)
from .exports import report_html, report_json, reports_json
from .heatmap_view import FaceToExplain, heatmap_caption, heatmap_choice, heatmap_picture, heatmap_title
from .provenance_view import provenance_panel
from .runner import ImageView

FACES_SHOWN = 4
SUMMARY_ROW_HEIGHT = 72   # px: above 4rem the overview table wraps long notes instead of cutting them
NO_DETECTOR = "no detector available"
NO_FACE_HELP = ("The detectors only examine faces. Try a larger or sharper picture, lower the smallest face size in "
                "the sidebar, or turn on \"score the whole picture\" for a close-up crop.")


CHART_NOTE = "Beside each detector: how much it weighs in this face's result."
NOT_VOTING_NOTE = " Grey: detectors the quality gate keeps out of the vote, with the reason."


def short_id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _decision(report) -> tuple[float, float]:
    """The report's threshold and band (resolved by the analyzer; the built-in defaults for a report without)."""
    s = report.settings or {}
    threshold, band = s.get("threshold"), s.get("band")
    return (float(DEFAULT_THRESHOLD if threshold is None else threshold),
            float(DEFAULT_BAND if band is None else band))


def render_summary(views: Sequence[ImageView]) -> None:
    """One row per picture, most suspicious first (shown when several pictures were analysed)."""
    rows = []
    votes = any(shows_votes((v.report.settings or {}).get("strategy")) for v in views)
    for v in views:
        r = v.report
        worst = _worst(r.faces)
        rows.append({"Picture": v.name, "Verdict": HEADLINES.get(r.verdict, "ERROR") if not r.error else "ERROR",
                     "Fake probability": percent(r.probability), "Faces": 0 if r.whole_image else len(r.faces),
                     "Notes": r.error or r.message or "; ".join((r.quality or {}).get("warnings", [])[:1]) or ""})
        if votes:   # a vote is shown as votes, not as a probability
            rows[-1]["Votes"] = votes_text(worst.votes) if worst is not None else ""
    df = pd.DataFrame(rows).sort_values("Fake probability", ascending=False, na_position="last")
    if votes:
        df = df.drop(columns=["Fake probability"])[["Picture", "Verdict", "Votes", "Faces", "Notes"]]
    # whole percents, rounded as the badges round them; rows tall enough for the notes to wrap (over 4rem)
    st.dataframe(df, hide_index=True, row_height=SUMMARY_ROW_HEIGHT, column_config={
        "Picture": st.column_config.TextColumn(width="medium"),
        "Fake probability": st.column_config.ProgressColumn(format="%d%%", min_value=0, max_value=100,
                                                            width="small"),
        "Notes": st.column_config.TextColumn(width="large")})
    st.download_button("Download all reports (JSON)", reports_json([v.report for v in views]),
                       file_name="image-reports.json", mime="application/json", key="dl-all-images")


def render_image_view(view: ImageView) -> None:
    report = view.report
    uid = short_id(view.key)
    threshold, band = _decision(report)
    with st.container(border=True):
        st.subheader(f":material/image: {view.name}")
        if report.error and report.error.startswith(NO_DETECTOR):
            st.error(f"**{view.name}** was not scored: no detector weights are loaded. The notice at the top of "
                     "the page and the Models page say how to add them.")
            if report.quality:
                quality_panel(report.quality)
            return
        if report.error:
            st.error(f"**{view.name}** could not be analysed: {report.error}")
            if report.quality:
                quality_panel(report.quality)
            provenance_panel(report.provenance, uid)
            return
        faces = list(report.faces)
        worst = _worst(faces)
        count = face_count_text(len(faces), report.whole_image)
        left, right = st.columns([3, 2], gap="large")
        with left:
            heatmaps = _picture(view, uid, count) if view.picture is not None else {}
        with right:
            verdict_badge(report.verdict, report.probability, worst.agreement if worst else None,
                          subject="Verdict for this picture", votes=shown_votes(report, worst.votes if worst else None))
            explanation(report.verdict)
            if report.message:
                help_text = NO_FACE_HELP if "no face" in report.message and not report.whole_image else ""
                st.warning(f"{report.message[0].upper()}{report.message[1:]}. {help_text}".strip())
            if len(faces) > 1:
                st.caption("The picture's verdict is that of its most suspicious face.")
            if report.models_used:
                st.caption(f"Detectors used: {', '.join(report.models_used)} · combined by "
                           f"{report.settings.get('strategy', '?')} · threshold {threshold:.2f} ± {band:.2f}")
            not_voting_caption(report)
            provenance_panel(report.provenance, uid)
        if faces:
            st.markdown("##### Faces and what each detector says")
            order = sorted(range(len(faces)), key=lambda i: -(faces[i].probability or 0.0))
            for rank, i in enumerate(order):
                if rank == FACES_SHOWN:
                    more = st.expander(f"Show the other {len(faces) - FACES_SHOWN} faces")
                target = more if rank >= FACES_SHOWN else st.container()
                with target:
                    _face_row(view, i, uid, threshold, band)
        quality_panel(report.quality)
        reproducibility_panel(report)
        st.download_button("Download this report (JSON)", report_json(report),
                           file_name=f"{Path(view.name).stem or 'image'}.report.json", mime="application/json",
                           key=f"dl-{uid}")
        # rendered only when clicked (a callable): the page embeds the picture
        st.download_button("Download report (HTML)",
                           lambda: report_html(report, view.picture, view.crops, heatmaps),
                           file_name=f"{Path(view.name).stem or 'image'}.report.html", mime="text/html",
                           key=f"dl-html-{uid}", help="One self-contained page with the pictures; print it to PDF")


def _picture(view: ImageView, uid: str, count: str) -> dict[str, np.ndarray]:
    """The picture with its boxes, or with the chosen Grad-CAM heatmap inside them (toggle); returns the heatmap
    shown ({title: picture}, for the HTML report), {} while the toggle is off."""
    report = view.report
    photo = view.photo_rgb() if report.faces else None
    choice = heatmap_choice(uid, list(report.models_used)) if photo is not None else None
    picture, errors = view.picture, {}
    if choice is not None:
        scaled = scale_faces(report.faces, view.scale)
        faces = [FaceToExplain(box=d["box"], crop=view.crops[i] if i < len(view.crops) else None,
                               names=list(f.models), weights=f.weights)
                 for i, (f, d) in enumerate(zip(report.faces, scaled))]
        picture, errors = heatmap_picture(photo, faces, choice, float(report.settings.get("margin", 0.0)), scaled)
    st.image(picture, width="stretch",
             caption=f"{count}{'' if report.whole_image else ' found'} · {report.width}×{report.height} px"
                     + ("" if report.whole_image else " · box colour = verdict of that face"))
    if choice is None:
        return {}
    heatmap_caption(choice, errors)
    return {heatmap_title(choice): picture}


def _worst(faces):
    """The face whose probability is the picture's (the most suspicious one), or None."""
    return max(faces, key=lambda f: -1 if f.probability is None else f.probability) if faces else None


def _face_row(view: ImageView, i: int, uid: str, threshold: float, band: float) -> None:
    report = view.report
    face = report.faces[i]
    name = "Whole picture" if report.whole_image else f"Face {i + 1}"
    votes = shown_votes(report, face.votes)
    c1, c2 = st.columns([1, 3], gap="medium")
    with c1:
        if i < len(view.crops):
            st.image(view.crops[i], width=170, caption=f"{name} · {face.size} px")
        verdict_badge(face.verdict, face.probability, None, subject=name, size="small", votes=votes)
        if face.agreement is not None:
            st.caption(f"Agreement between detectors: {face.agreement:.2f} ({agreement_label(face.agreement)})",
                       help=AGREEMENT_MEANING)
    with c2:
        if face.models:
            st.plotly_chart(model_probability_chart(face.models, face.probability, threshold, band,
                                                    weights=face.weights, not_voting=report.models_not_voting,
                                                    votes=votes),
                            key=f"chart-{uid}-{i}", config={"displayModeBar": False})
            st.caption(CHART_NOTE + (NOT_VOTING_NOTE if report.models_not_voting else ""))
        else:
            st.info("Not scored: no detector was available.")


def render_image_views(views: Sequence[ImageView]) -> None:
    if len(views) > 1:
        st.markdown("### Overview")
        render_summary(views)
    for view in views:
        render_image_view(view)
    caveats()
