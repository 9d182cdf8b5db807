"""How the voice is shown: an audio file's report (Audio check page) and a video's audio section (Video page)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from analysis.audio.fusion import FUSION_MEANING
from analysis.audio.report import AUDIO_VERDICT_NOTES, SCORED
from analysis.report import json_safe
from ui.components import caveats, verdict_badge
from visualization.charts import audio_timeline_chart

VOICE_CAVEAT = ("The audio detector was trained on one family of voice-cloning systems (YourTTS / SC-GlowTTS) and "
                "a few speakers reading aloud; other cloning systems, music, several voices at once and phone "
                "lines are outside what it has seen. Treat its score as one clue, never as proof.")


def _threshold(audio: Any) -> tuple[float, float]:
    return float(audio.threshold if audio.threshold is not None else 0.5), float(audio.band or 0.1)


def voice_badge(audio: Any, size: str = "small") -> None:
    """The voice's verdict beside the people (or a note: no audio track, no speech, no audio model)."""
    if audio is None:
        return
    if audio.status != SCORED:
        st.caption(f":material/volume_off: Voice: {AUDIO_VERDICT_NOTES.get(audio.status, audio.message or audio.status)}")
        return
    verdict_badge(audio.verdict, audio.probability, subject="Voice (sound track)", size=size)
    if not audio.passes_gate:
        reasons = "; ".join(f"{n}: {g.get('reason')}" for n, g in audio.gate.items() if not g.get("votes"))
        st.caption(f"The audio detector does not pass its quality gate ({reasons}): its verdict is shown, and "
                   "counts in the overall verdict only if you choose a fusion that includes the voice.")


def overall_badge(overall: Any) -> None:
    """The video's faces-and-voice verdict (analysis.audio.fusion), with how it was made."""
    if overall is None:
        return
    weights = ", ".join(f"{k} {v:.0%}" for k, v in overall.weights.items()) or "nothing to weigh"
    verdict_badge(overall.verdict, overall.probability, subject="Overall: faces and voice", size="small")
    st.caption(f"Fusion **{overall.mode}** ({FUSION_MEANING.get(overall.mode, '')}): {weights}."
               + (f" {overall.note[0].upper()}{overall.note[1:]}." if overall.note else ""))


def audio_timeline(audio: Any, uid: str, x_range: tuple[float, float] | None = None,
                   current_time: float | None = None, x_title: str = "time in the video (seconds)") -> None:
    if audio is None or not audio.windows:
        return
    threshold, band = _threshold(audio)
    st.plotly_chart(audio_timeline_chart(audio, threshold, band, current_time=current_time, x_range=x_range,
                                         x_title=x_title), key=f"audio-timeline-{uid}",
                    config={"displayModeBar": False})
    st.caption(f"The voice: one segment per {audio.windows[0].end - audio.windows[0].start:.0f}-second window "
               "(they overlap), coloured by verdict; grey: no speech there, not scored.")


def render_audio_view(view: Any) -> None:
    """An audio file's report: verdict, speech share, the window timeline, notes, download."""
    report = view.report
    uid = view.key[:12]
    st.subheader(f":material/graphic_eq: {view.name}")
    if report.error:
        st.error(f"**{view.name}** could not be analysed: {report.error}")
        return
    left, right = st.columns([2, 3], gap="large")
    meta = getattr(report, "metadata", {}) or {}
    with left:
        if report.status == SCORED:
            verdict_badge(report.verdict, report.probability, subject="Verdict for the voice")
        else:
            st.info(AUDIO_VERDICT_NOTES.get(report.status, report.status), icon=":material/volume_off:")
        if report.message:
            st.warning(f"{report.message[0].upper()}{report.message[1:]}.")
    with right:
        c = st.columns(3)
        c[0].metric("Duration", f"{meta.get('duration') or 0:.1f} s")
        c[1].metric("Speech", f"{(report.speech_share or 0):.0%} of {len(report.windows)} windows")
        c[2].metric("Windows scored", f"{len(report.scored_windows)}")
        st.caption(f"{meta.get('sample_rate') or '?'} Hz · {meta.get('channels') or '?'} channel(s) · codec "
                   f"{meta.get('codec') or '?'} · detectors: {', '.join(report.models_used) or 'none'} · "
                   f"score: {report.aggregation}")
        for name, why in (report.models_missing or {}).items():
            st.caption(f"Audio detector {name} not loaded: {why}")
    duration = float(meta.get("duration") or 0) or None
    audio_timeline(report, uid, x_range=(0.0, duration) if duration and not meta.get("excerpts") else None,
                   x_title="time in the recording (seconds)")
    stem = Path(view.name).stem or "audio"
    import json
    st.download_button("Download report (JSON)", json.dumps(json_safe(report), indent=2),
                       file_name=f"{stem}.report.json", mime="application/json", key=f"dl-audio-{uid}")
    st.caption(VOICE_CAVEAT)
    caveats()
