"""How an analysed video is shown: verdict, people, timeline, frame scrubber, quality, downloads."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import streamlit as st

from analysis.report import report_failed
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD
from video.engine import Rescored
from video.report import person_label
from visualization.charts import model_probability_chart, video_timeline_chart
from visualization.overlays import draw_faces, scale_faces

from .components import (caveats, explanation, not_voting_caption, quality_panel, reproducibility_panel, shown_votes,
                         verdict_badge)
from .audio_view import audio_timeline, overall_badge, voice_badge
from .exports import frames_csv, report_html, report_json
from .heatmap_view import FaceToExplain, heatmap_caption, heatmap_choice, heatmap_picture
from .image_view import CHART_NOTE, NOT_VOTING_NOTE, short_id
from .provenance_view import provenance_panel
from .runner import VideoView

FRAME_KEY = "video_frame"
PERSON_KEY = "video_person"   # + "_" + the analysis's id: whose face the timeline follows
PEOPLE_PER_ROW = 4
ANY_PERSON = "Most suspicious face in each frame (any person: the line may jump between people)"
NO_FACE_TEXT = ("No face was found in any of the {analysed} analysed frames, so nothing was scored: there is no "
                "timeline and no verdict. The detectors only examine faces. Try more frames, the part of the video "
                "where a face is large and clearly visible, or a smaller \"smallest face\" in the sidebar.")
# words for video.engine.FACE_SETTINGS in the "press Analyse video" notes: (what it is, unit)
FACE_SETTING_WORDS = {"min_face_size": ("smallest face to analyse", " px"), "margin": ("face crop margin", ""),
                      "face_threshold": ("face detection confidence", ""), "max_faces": ("most faces per frame", ""),
                      "detect_max_side": ("face detection size", " px"), "max_pixels": ("pixel limit", ""),
                      "mirror": ("mirrored scoring of faces", "")}


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


def rerun_reasons(rescored: Rescored | None, frames_changed: bool) -> list[str]:
    """What the stored scores cannot answer, one sentence each: detectors that were not run, face-finding settings
    and the choice of frames changed since the analysis. Empty: the result shown is up to date."""
    reasons = []
    if rescored is not None and rescored.not_run:
        names, one = ", ".join(rescored.not_run), len(rescored.not_run) == 1
        used = ", ".join(rescored.report.models_used)
        reasons.append(f"{names} {'was' if one else 'were'} not run when this video was analysed: press **Analyse "
                       f"video** to include {'it' if one else 'them'}. Until then the result uses {used}.")
    for key in rescored.changed if rescored is not None else []:
        label, unit = FACE_SETTING_WORDS.get(key, (key, ""))
        before = rescored.report.settings.get(key)
        still = (f"was made with it {'on' if before else 'off'}" if isinstance(before, bool)
                 else f"still uses {before}{unit}")
        reasons.append(f"The {label} changed since this analysis: faces are found and scored while the video is "
                       f"analysed, so press **Analyse video** to apply it. The result below {still}.")
    if frames_changed:
        reasons.append("The frames to analyse changed: press **Analyse video** to analyse them. The result below is "
                       "for the frames analysed before.")
    return reasons


def render_video_view(view: VideoView, rerun: Sequence[str] = (), live: bool = False) -> None:
    """The analysis `view` (with `live`: its stored scores re-combined under the sidebar's settings) and what a
    new analysis would still change (`rerun`, from rerun_reasons)."""
    report = view.report
    uid = short_id(view.key)
    st.subheader(f":material/movie: {view.name}")
    frames = list(getattr(report, "frames", []) or [])
    if report.error and report.error.startswith("no detector available"):
        st.error(f"**{view.name}** was not scored: no detector weights are loaded. The notice at the top of the "
                 "page and the Models page say how to add them.")
        return
    if report_failed(report):
        st.error(f"**{view.name}** could not be analysed: {report.error}")
        if report.quality:
            quality_panel(report.quality)
        provenance_panel(report.provenance, uid)
        return
    if report.error:
        st.warning(f"Only part of the video could be read: {report.error}")
    for reason in rerun:
        st.info(reason, icon=":material/replay:")
    if live:
        st.caption(":material/tune: Threshold, band, strategy and detectors from the sidebar are applied to the "
                   "scores stored for every face of every analysed frame: no new analysis is needed for them.")
    threshold, band = _decision(report)
    meta = report.metadata or {}
    summary = report.summary or {}

    left, right = st.columns([2, 3], gap="large")
    with left:
        deciding = report.track(report.decisive_track) if report.decisive_track is not None else None
        verdict_badge(report.verdict, report.probability, _agreement(report, deciding),
                      subject="Verdict for the video" + (f" · from {person_label(deciding.id)}" if deciding else ""),
                      votes=shown_votes(report, deciding.votes if deciding else None))
        explanation(report.verdict)
        if report.message:
            st.warning(f"{report.message[0].upper()}{report.message[1:]}.")
        if report.decision:
            st.info(report.decision, icon=":material/person_search:")
        voice_badge(getattr(report, "audio", None))
        overall_badge(getattr(report, "overall", None))
        provenance_panel(report.provenance, uid)
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
    if report.faces:
        _timeline_and_frames(report, frames, uid, threshold, band)
    else:
        st.info(NO_FACE_TEXT.format(analysed=len(frames)), icon=":material/face_retouching_off:")
        audio_timeline(getattr(report, "audio", None), uid, x_range=_time_axis(report))

    quality_panel(report.quality)
    reproducibility_panel(report)
    stem = Path(view.name).stem or "video"
    d1, d_html, d2, _ = st.columns([1, 1, 1, 1])
    d1.download_button("Download report (JSON)", report_json(report), file_name=f"{stem}.report.json",
                       mime="application/json", key=f"dl-json-{uid}")
    d_html.download_button("Download report (HTML)", lambda: report_html(report), file_name=f"{stem}.report.html",
                           mime="text/html", key=f"dl-html-{uid}",
                           help="One self-contained page with key frames and faces; print it to PDF")
    d2.download_button("Download per-frame scores (CSV)", frames_csv(report), file_name=f"{stem}.frames.csv",
                       mime="text/csv", key=f"dl-csv-{uid}")
    caveats()


def _timeline_and_frames(report, frames, uid: str, threshold: float, band: float) -> None:
    times = [fr.time for fr in frames]
    st.markdown("##### Fake probability over time")
    track_filter = report.decisive_track
    if len(report.tracks) > 1:
        track_filter = _whose_face(report, uid)
    if track_filter is not None:
        st.caption(f"The line follows {_person_words(report, report.track(track_filter))}.")
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
        axis = _time_axis(report)   # the faces and the voice on the same time axis
        st.plotly_chart(video_timeline_chart(report, threshold, band, current_time=times[idx], track=track_filter,
                                             x_range=axis),
                        key=f"timeline-{uid}", config={"displayModeBar": False})
        audio_timeline(getattr(report, "audio", None), uid, x_range=axis, current_time=times[idx])
    _frame(report, frames[idx], uid, threshold, band)


def _time_axis(report) -> tuple[float, float] | None:
    """Seconds from 0 to the end of whatever was analysed (frames, sound windows), shared by both timelines."""
    ends = [float(f.time) for f in report.frames]
    audio = getattr(report, "audio", None)
    if audio is not None and audio.windows and not audio.metadata.get("excerpts"):
        ends.append(max(w.end for w in audio.windows))
    duration = (report.metadata or {}).get("duration")
    if duration:
        ends.append(float(duration))
    return (0.0, max(ends) * 1.02) if ends and max(ends) > 0 else None


def _agreement(report, track) -> float | None:
    if track is None:
        return None
    values = [f.agreement for fr in report.frames for f in fr.faces if f.track == track.id and f.agreement is not None]
    return round(sum(values) / len(values), 4) if values else None


def _person_words(report, track) -> str:
    """"Person 1, who decides the video" / "Person 3 (minor: seen in only 1 of 16 frames)" / "Person 2"."""
    if track is None:
        return "nobody"
    if track.id == report.decisive_track:
        return f"{person_label(track.id)}, who decides the video"
    return f"{person_label(track.id)} (minor: {track.minor_reason})" if track.minor_reason else person_label(track.id)


def _whose_face(report, uid: str) -> int | None:
    """The timeline's person: the one who decides the video by default, any other, or the most suspicious face in
    each frame (None). One choice per analysis (the key carries its id), so a new analysis starts on its decider."""
    options: list[int | None] = [t.id for t in report.tracks] + [None]
    default = options.index(report.decisive_track) if report.decisive_track in options else 0
    return st.selectbox("Whose face the timeline follows", options, index=default, key=f"{PERSON_KEY}_{uid}",
                        format_func=lambda t: ANY_PERSON if t is None else (
                            person_label(t) + (" (decides the video)" if t == report.decisive_track else "")))


def _people(report, uid: str, threshold: float, band: float) -> None:
    st.markdown("##### People in the video")
    st.caption("Numbered by how much they count: frames seen, face size, detection confidence and sharpness. "
               "Tiny, brief or uncertainly detected faces are minor: they cannot decide the video on their own.")
    analysed = len(report.frames)
    tracks = list(report.tracks)
    for start in range(0, len(tracks), PEOPLE_PER_ROW):
        cols = st.columns(PEOPLE_PER_ROW)
        for col, track in zip(cols, tracks[start:start + PEOPLE_PER_ROW]):
            with col, st.container(border=True):
                crop = _best_crop(report, track.id)
                if crop is not None:
                    st.image(crop, width=140)
                decides = track.id == report.decisive_track
                verdict_badge(track.verdict, track.probability, None, size="small",
                              subject=person_label(track.id) + (" · decides the video" if decides else ""),
                              votes=shown_votes(report, track.votes))
                share = "" if track.fake_share is None else f" · above the threshold in {track.fake_share:.0%} of them"
                size = "" if track.median_size is None else f" · face {track.median_size:.0f} px"
                st.caption(f"Seen in {len(track.frames)} of {analysed} frames{share}{size}.")
                if not track.major and track.decisive:
                    st.caption(f"Minor ({track.minor_reason}). Nobody in this video is seen well enough to decide "
                               "it alone, so the most suspicious of the minor people decides.")
                elif not track.major:
                    st.caption(f"Minor ({track.minor_reason}): cannot decide the video on its own.")


def _frame(report, frame, uid: str, threshold: float, band: float) -> None:
    left, right = st.columns([3, 2], gap="large")
    with left:
        thumb = frame.thumbnail_rgb()
        if thumb is not None:
            boxed = scale_faces(frame.faces, frame.thumb_scale)
            choice = heatmap_choice(uid, list(report.models_used))
            picture, errors = (draw_faces(thumb, boxed), {}) if choice is None else heatmap_picture(
                thumb, [FaceToExplain(box=d["box"], crop=f.crop_rgb(), names=list(f.models), weights=f.weights)
                        for f, d in zip(frame.faces, boxed)],
                choice, float(report.settings.get("margin", 0.0)), boxed)
            st.image(picture, width="stretch",
                     caption=f"Frame {frame.index} at {frame.time:.2f} s · {len(frame.faces)} face(s)")
            if choice is not None:
                heatmap_caption(choice, errors)
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
                votes = shown_votes(report, face.votes)
                with c2:
                    verdict_badge(face.verdict, face.probability, face.agreement, subject=person_label(face.track),
                                  size="small", votes=votes)
                if face.models:
                    rows = len(face.models) + len(report.models_not_voting) + 1
                    st.plotly_chart(model_probability_chart(face.models, face.probability, threshold, band,
                                                            height=60 + 30 * rows, weights=face.weights,
                                                            not_voting=report.models_not_voting, votes=votes),
                                    key=f"frame-chart-{uid}-{i}", config={"displayModeBar": False})
                    st.caption(CHART_NOTE + (NOT_VOTING_NOTE if report.models_not_voting else ""))
