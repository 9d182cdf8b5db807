"""How an analysed video is shown: verdict, people, timeline, frame scrubber, quality, downloads."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD
from visualization.charts import model_probability_chart, video_timeline_chart
from visualization.overlays import draw_faces, scale_faces

from .components import caveats, explanation, not_voting_caption, quality_panel, reproducibility_panel, verdict_badge
from .exports import frames_csv, report_json
from .image_view import short_id
from .runner import VideoView

FRAME_KEY = "video_frame"
PERSON_KEY = "video_person"
PEOPLE_PER_ROW = 4


def person_label(track: int | None) -> str:
    return "Unassigned" if track is None else f"Person {int(track) + 1}"


def _decision(report) -> tuple[float, float]:
    """The report's threshold and band (resolved by the analyzer; the built-in defaults for a report without)."""
    s = report.settings or {}
    threshold, band = s.get("threshold"), s.get("band")
    return (float(DEFAULT_THRESHOLD if threshold is None else threshold),
            float(DEFAULT_BAND if band is None else band))


def _best_crop(report, track_id: int):
    """The crop of the person's most confidently detected face."""
    faces = [f for fr in report.frames for f in fr.faces if f.track == track_id and f.crop_jpeg]
    if not faces:
        return None
    return max(faces, key=lambda f: (f.score, f.size)).crop_rgb()


def render_video_view(view: VideoView, current_settings: dict | None = None) -> None:
    report = view.report
    uid = short_id(view.key)
    st.subheader(f":material/movie: {view.name}")
    frames = list(getattr(report, "frames", []) or [])
    if report.error and report.error.startswith("no detector available"):
        st.error(f"**{view.name}** was not scored: no detector weights are loaded. The notice at the top of the "
                 "page and the Models page say how to add them.")
        return
    if report.error and not frames:
        st.error(f"**{view.name}** could not be analysed: {report.error}")
        if report.quality:
            quality_panel(report.quality)
        return
    if report.error:
        st.warning(f"Only part of the video could be read: {report.error}")
    if current_settings is not None and _decision_changed(view.settings, current_settings):
        st.info("The sidebar settings changed since this analysis: press **Analyse video** again to apply them.")
    threshold, band = _decision(report)
    meta = report.metadata or {}
    summary = report.summary or {}

    left, right = st.columns([2, 3], gap="large")
    with left:
        deciding = report.track(summary.get("deciding_track")) if summary.get("deciding_track") is not None else None
        verdict_badge(report.verdict, report.probability, _agreement(report, deciding), subject="Verdict for the video")
        explanation(report.verdict)
        if report.message:
            st.warning(f"{report.message[0].upper()}{report.message[1:]}.")
        if len(report.tracks) > 1:
            st.caption("The video's verdict is that of its most suspicious person seen long enough to judge.")
    with right:
        c = st.columns(4)
        c[0].metric("Frames analysed", f"{len(frames)}")
        c[1].metric("Frames with a face", f"{summary.get('frames_with_faces', sum(1 for f in frames if f.faces))}")
        c[2].metric("People tracked", f"{len(report.tracks)}")
        c[3].metric("Duration", f"{meta.get('duration', 0):.1f} s" if meta.get("duration") else "n/a")
        st.caption(f"{meta.get('width', '?')}×{meta.get('height', '?')} px · {meta.get('fps', 0):.1f} fps · "
                   f"codec {meta.get('codec') or '?'} · detectors: {', '.join(report.models_used) or 'none'}")
        not_voting_caption(report)

    if report.tracks:
        _people(report, uid, threshold, band)

    if not frames:
        caveats()
        return
    times = [fr.time for fr in frames]
    st.markdown("##### Fake probability over time")
    track_filter = None
    if len(report.tracks) > 1:
        options = [None] + [t.id for t in report.tracks]
        track_filter = st.selectbox("Whose face", options, key=PERSON_KEY,
                                    format_func=lambda t: "Most suspicious face in each frame" if t is None
                                    else person_label(t))
    if st.session_state.get(FRAME_KEY, 0) not in range(len(frames)):
        st.session_state[FRAME_KEY] = 0
    chart_slot = st.container()   # filled after the slider, so the chart marks the frame the slider shows
    st.caption("Thin lines: each detector. Thick line: the ensemble (dots coloured by verdict). Gaps: no face. "
               "Dashed line: decision threshold; shaded stripe: uncertainty band.")

    st.markdown("##### Frame by frame")
    idx = st.select_slider("Analysed frame", options=list(range(len(frames))), key=FRAME_KEY,
                           help="Drag the handle, or click it and use the arrow keys.",
                           format_func=lambda i: f"{times[i]:.2f} s (frame {frames[i].index})")
    with chart_slot:
        st.plotly_chart(video_timeline_chart(report, threshold, band, current_time=times[idx], track=track_filter),
                        key=f"timeline-{uid}", config={"displayModeBar": False})
    _frame(report, frames[idx], uid, threshold, band)

    quality_panel(report.quality)
    reproducibility_panel(report)
    stem = Path(view.name).stem or "video"
    d1, d2, _ = st.columns([1, 1, 2])
    d1.download_button("Download report (JSON)", report_json(report), file_name=f"{stem}.report.json",
                       mime="application/json", key=f"dl-json-{uid}")
    d2.download_button("Download per-frame scores (CSV)", frames_csv(report), file_name=f"{stem}.frames.csv",
                       mime="text/csv", key=f"dl-csv-{uid}")
    caveats()


def _decision_changed(before: dict, now: dict) -> bool:
    keys = ("threshold", "band", "strategy", "detectors", "min_face_size", "whole_image_fallback")
    return any(before.get(k) != now.get(k) for k in keys)


def _agreement(report, track) -> float | None:
    if track is None:
        return None
    values = [f.agreement for fr in report.frames for f in fr.faces if f.track == track.id and f.agreement is not None]
    return round(sum(values) / len(values), 4) if values else None


def _people(report, uid: str, threshold: float, band: float) -> None:
    st.markdown("##### People in the video")
    analysed = len(report.frames)
    tracks = list(report.tracks)
    for start in range(0, len(tracks), PEOPLE_PER_ROW):
        cols = st.columns(PEOPLE_PER_ROW)
        for col, track in zip(cols, tracks[start:start + PEOPLE_PER_ROW]):
            with col, st.container(border=True):
                crop = _best_crop(report, track.id)
                if crop is not None:
                    st.image(crop, width=140)
                verdict_badge(track.verdict, track.probability, None, subject=person_label(track.id), size="small")
                share = "" if track.fake_share is None else f" · above the threshold in {track.fake_share:.0%} of them"
                st.caption(f"Seen in {len(track.frames)} of {analysed} frames{share}.")
                if not track.decisive:
                    st.caption("Seen too briefly to decide the video's verdict.")


def _frame(report, frame, uid: str, threshold: float, band: float) -> None:
    left, right = st.columns([3, 2], gap="large")
    with left:
        thumb = frame.thumbnail_rgb()
        if thumb is not None:
            st.image(draw_faces(thumb, scale_faces(frame.faces, frame.thumb_scale)), width="stretch",
                     caption=f"Frame {frame.index} at {frame.time:.2f} s · {len(frame.faces)} face(s)")
        else:
            st.info("No picture was kept for this frame.")
    with right:
        if not frame.faces:
            st.info("No face in this frame.")
        for i, face in enumerate(frame.faces):
            with st.container(border=True):
                crop = face.crop_rgb()
                c1, c2 = st.columns([1, 2], vertical_alignment="center")
                if crop is not None:
                    c1.image(crop, width="stretch")
                with c2:
                    verdict_badge(face.verdict, face.probability, face.agreement, subject=person_label(face.track),
                                  size="small")
                if face.models:
                    st.plotly_chart(model_probability_chart(face.models, face.probability, threshold, band,
                                                            height=60 + 30 * (len(face.models) + 1)),
                                    key=f"frame-chart-{uid}-{i}", config={"displayModeBar": False})
