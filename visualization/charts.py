"""Plotly figures: per-detector probabilities of one face, and probabilities over a video's time line."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from analysis.ensemble import verdict_for

from .overlays import UNCERTAIN, verdict_color

ENSEMBLE = "Ensemble"
MAJORITY_VOTE = "Majority vote"   # the ensemble's row when its result is a count of votes
NOT_VOTING_COLOR = "#bdbdbd"      # detectors the quality gate left out: grey, with their reason
# Distinct, colour-blind-friendly line colours for up to eight detectors (Okabe-Ito without black).
DETECTOR_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
_FONT = dict(family="Source Sans Pro, sans-serif", size=13)


def _verdict(p: float | None, threshold: float, band: float) -> str | None:
    return verdict_for(None if p is None else float(p), threshold, band)


def _decision_zones(fig: go.Figure, threshold: float, band: float, axis: str) -> None:
    """The threshold as a dashed line and the uncertainty band as a shaded stripe, on the x or y axis."""
    lo, hi = max(0.0, threshold - band), min(1.0, threshold + band)
    if axis == "x":
        if band > 0:
            fig.add_vrect(x0=lo, x1=hi, fillcolor=verdict_color(UNCERTAIN), opacity=0.15, line_width=0, layer="below")
        fig.add_vline(x=threshold, line_dash="dash", line_color="#37474f", line_width=1.5,
                      annotation_text=f"threshold {threshold:.2f}", annotation_position="top",
                      annotation_font_size=11)
    else:
        if band > 0:
            fig.add_hrect(y0=lo, y1=hi, fillcolor=verdict_color(UNCERTAIN), opacity=0.15, line_width=0, layer="below",
                          annotation_text="uncertain", annotation_position="top right",
                          annotation_font_size=10, annotation_font_color="#8a5a00")
        fig.add_hline(y=threshold, line_dash="dash", line_color="#37474f", line_width=1.5,
                      annotation_text=f"threshold {threshold:.2f}", annotation_position="bottom left",
                      annotation_font_size=11)


def _bold(text: str) -> str:
    return f"<b>{text}</b>"


def model_probability_chart(models: Mapping[str, float], ensemble: float | None, threshold: float = 0.5,
                            band: float = 0.1, title: str | None = None, height: int | None = None,
                            weights: Mapping[str, float] | None = None,
                            not_voting: Sequence[Mapping[str, Any]] | None = None,
                            votes: Mapping[str, int] | None = None) -> go.Figure:
    """Horizontal bars: each detector's calibrated fake probability, and the ensemble's at the top, coloured by
    the side of the threshold they fall on; the threshold and the uncertainty band drawn across.

    `weights`: each detector's share in the ensemble, written beside its name. `not_voting`: the report's
    `models_not_voting` ({"name", "reason"}), drawn as grey rows with their reason and no bar. `votes`: the
    ensemble's votes ({"fake", "real", "abstain"}) when its result is a vote (the majority strategy): its row is
    then "Majority vote" and reads "2/5 fake" rather than a probability."""
    weights = weights or {}
    grey = [e for e in not_voting or [] if e.get("name") not in models]
    names = [str(e.get("name")) for e in grey] + list(models)
    values = [0.0] * len(grey) + [float(models[n]) for n in models]
    labels = [f"<span style='color:#9e9e9e'>{n} · not voting</span>" for n in names[:len(grey)]]
    labels += [f"{n} · weight {weights[n]:.0%}" if n in weights else n for n in models]
    colors = [NOT_VOTING_COLOR] * len(grey) + [verdict_color(_verdict(v, threshold, band)) for v in values[len(grey):]]
    numbers = ["–"] * len(grey) + [f"{v:.0%}" for v in values[len(grey):]]
    hovers = [f"{e.get('name')}: not voting ({e.get('reason') or 'left out'})" for e in grey]
    hovers += [f"{n}: {v:.1%} fake" + (f", weight {weights[n]:.0%}" if n in weights else "")
               for n, v in zip(names[len(grey):], values[len(grey):])]
    if ensemble is not None:
        if votes:
            total = sum(int(v) for v in votes.values())
            labels.append(_bold(MAJORITY_VOTE))
            numbers.append(_bold(f"{int(votes.get('fake', 0))}/{total} fake"))
            hovers.append(f"{MAJORITY_VOTE}: {int(votes.get('fake', 0))} fake, {int(votes.get('real', 0))} real, "
                          f"{int(votes.get('abstain', 0))} abstaining")
        else:
            labels.append(_bold(ENSEMBLE))
            numbers.append(_bold(f"{float(ensemble):.0%}"))
            hovers.append(f"{ENSEMBLE}: {float(ensemble):.1%} fake")
        names.append(ENSEMBLE)
        values.append(float(ensemble))
        colors.append(verdict_color(_verdict(float(ensemble), threshold, band)))
    fig = go.Figure(go.Bar(
        x=values, y=labels, orientation="h", marker_color=colors,
        marker_line_width=[2 if n == ENSEMBLE else 0 for n in names], marker_line_color="#263238",
        customdata=hovers, hovertemplate="%{customdata}<extra></extra>",
    ))
    for label, number in zip(labels, numbers):  # the numbers in their own column, clear of the bars and the threshold
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", xshift=8, y=label, yref="y", showarrow=False,
                           text=number, font=dict(size=13, color="#263238"))
    for label, entry in zip(labels, grey):      # why a detector does not vote, where its bar would be
        fig.add_annotation(x=0.01, xref="x", xanchor="left", y=label, yref="y", showarrow=False,
                           text=f"not voting: {entry.get('reason') or 'left out'}",
                           font=dict(size=11, color="#757575"))
    _decision_zones(fig, threshold, band, "x")
    fig.update_layout(
        title=dict(text=title, font_size=14) if title else None, font=_FONT, showlegend=False,
        height=height or 70 + 34 * len(names), margin=dict(l=10, r=78 if votes else 52, t=40 if title else 28, b=30),
        xaxis=dict(range=[0, 1.0], tickformat=".0%", title="probability of FAKE", fixedrange=True,
                   tickvals=[0, 0.25, 0.5, 0.75, 1.0]),
        yaxis=dict(fixedrange=True, automargin=True), plot_bgcolor="white", bargap=0.35,
    )
    return fig


def timeline_chart(times: Sequence[float], series: Mapping[str, Sequence[float | None]],
                   ensemble: Sequence[float | None] | None, threshold: float = 0.5, band: float = 0.1,
                   current_time: float | None = None, title: str | None = None, height: int = 380,
                   x_range: tuple[float, float] | None = None) -> go.Figure:
    """Fake probability over time: a thin line per detector, a thick ensemble line, markers coloured by verdict,
    the threshold and band, and a vertical marker at the frame being shown. `None` = no face at that time.
    `x_range` (seconds) pins the time axis, so that the audio timeline below lines up with it."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(go.Scatter(
            x=list(times), y=[None if v is None else float(v) for v in values], name=name, mode="lines",
            line=dict(width=1.6, color=DETECTOR_PALETTE[i % len(DETECTOR_PALETTE)]), opacity=0.85,
            connectgaps=False, hovertemplate=f"{name}: %{{y:.1%}}<extra></extra>",
        ))
    if ensemble is not None:
        ys = [None if v is None else float(v) for v in ensemble]
        fig.add_trace(go.Scatter(
            x=list(times), y=ys, name=ENSEMBLE, mode="lines+markers", connectgaps=False,
            line=dict(width=3.5, color="#263238"),
            marker=dict(size=7, color=[verdict_color(_verdict(v, threshold, band)) for v in ys],
                        line=dict(width=1, color="#263238")),
            hovertemplate=f"{ENSEMBLE}: %{{y:.1%}}<extra></extra>",
        ))
    _decision_zones(fig, threshold, band, "y")
    if current_time is not None:
        fig.add_vline(x=current_time, line_color="#1565c0", line_width=2,
                      annotation_text="shown frame", annotation_position="top right", annotation_font_size=11,
                      annotation_font_color="#1565c0")
    fig.update_layout(
        title=dict(text=title, font_size=14) if title else None, font=_FONT, height=height,
        margin=dict(l=10, r=10, t=40 if title else 30, b=40), hovermode="x unified", plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        xaxis=dict(title="time in the video (seconds)", gridcolor="#eceff1", zeroline=False,
                   range=list(x_range) if x_range else None),
        yaxis=dict(title="probability of FAKE", range=[-0.02, 1.02], tickformat=".0%", gridcolor="#eceff1"),
    )
    return fig


def audio_timeline_chart(audio, threshold: float = 0.5, band: float = 0.1, current_time: float | None = None,
                         x_range: tuple[float, float] | None = None, height: int = 260,
                         x_title: str = "time in the video (seconds)") -> go.Figure:
    """The voice over time (an analysis.audio AudioResult): one segment per window at its fake probability,
    coloured by verdict; windows without speech as grey segments at the bottom, labelled with their reason."""
    fig = go.Figure()
    scored = [w for w in audio.windows if w.probability is not None]
    for w in scored:
        colour = verdict_color(_verdict(w.probability, threshold, band))
        fig.add_trace(go.Scatter(x=[w.start, w.end], y=[w.probability] * 2, mode="lines", showlegend=False,
                                 line=dict(width=6, color=colour), opacity=0.55,
                                 hovertemplate=f"{w.start:.1f}-{w.end:.1f} s: {w.probability:.1%} fake<extra></extra>"))
    if scored:
        fig.add_trace(go.Scatter(x=[(w.start + w.end) / 2 for w in scored], y=[w.probability for w in scored],
                                 name="voice", mode="lines+markers", line=dict(width=2.5, color="#263238"),
                                 marker=dict(size=7, color=[verdict_color(_verdict(w.probability, threshold, band))
                                                            for w in scored]),
                                 hovertemplate="voice: %{y:.1%}<extra></extra>"))
    quiet = [w for w in audio.windows if w.probability is None]
    for i, w in enumerate(quiet):
        fig.add_trace(go.Scatter(x=[w.start, w.end], y=[0.0, 0.0], mode="lines", name="not scored",
                                 showlegend=i == 0, line=dict(width=8, color="#b0bec5"),
                                 hovertemplate=f"{w.start:.1f}-{w.end:.1f} s: {w.reason or 'not scored'}<extra></extra>"))
    _decision_zones(fig, threshold, band, "y")
    if current_time is not None:
        fig.add_vline(x=current_time, line_color="#1565c0", line_width=2)
    fig.update_layout(
        font=_FONT, height=height, margin=dict(l=10, r=10, t=30, b=40), plot_bgcolor="white", hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        xaxis=dict(title=x_title, gridcolor="#eceff1", zeroline=False, range=list(x_range) if x_range else None),
        yaxis=dict(title="voice: P(FAKE)", range=[-0.05, 1.02], tickformat=".0%", gridcolor="#eceff1"),
    )
    return fig


def person_chart(people: Sequence[Mapping], threshold: float = 0.5, band: float = 0.1) -> go.Figure:
    """One bar per tracked person: their ensemble fake probability over the video."""
    names = [str(p.get("label") or f"Person {i + 1}") for i, p in enumerate(people)]
    values = [p.get("probability") for p in people]
    fig = go.Figure(go.Bar(
        x=[0 if v is None else float(v) for v in values], y=names, orientation="h",
        marker_color=[verdict_color(_verdict(v, threshold, band)) for v in values],
        text=["n/a" if v is None else f"{float(v):.0%}" for v in values], textposition="inside",
        insidetextanchor="end", hovertemplate="%{y}: %{x:.1%} fake<extra></extra>",
    ))
    _decision_zones(fig, threshold, band, "x")
    fig.update_layout(font=_FONT, showlegend=False, height=80 + 36 * len(names), plot_bgcolor="white",
                      margin=dict(l=10, r=40, t=28, b=30),
                      xaxis=dict(range=[0, 1.08], tickformat=".0%", title="probability of FAKE", fixedrange=True),
                      yaxis=dict(fixedrange=True, autorange="reversed"))
    return fig


def video_series(report, track: int | None = None) -> tuple[list[float], dict[str, list[float | None]],
                                                            list[float | None]]:
    """(times, detector -> probabilities, ensemble probabilities) over a VideoReport's analysed frames.

    At each frame the most suspicious face counts (or the face of `track` only); None where there is none."""
    models = list(getattr(report, "models_used", []) or [])
    times: list[float] = []
    series: dict[str, list[float | None]] = {m: [] for m in models}
    ensemble: list[float | None] = []
    for frame in report.frames:
        faces = [f for f in frame.faces if track is None or f.track == track]
        scored = [f for f in faces if f.probability is not None]
        face = max(scored, key=lambda f: f.probability) if scored else None
        times.append(float(frame.time))
        ensemble.append(None if face is None else float(face.probability))
        for m in models:
            value = None if face is None else face.models.get(m)
            series[m].append(None if value is None else float(value))
    return times, series, ensemble


def video_timeline_chart(report, threshold: float = 0.5, band: float = 0.1, current_time: float | None = None,
                         track: int | None = None, height: int = 380,
                         x_range: tuple[float, float] | None = None) -> go.Figure:
    times, series, ensemble = video_series(report, track)
    return timeline_chart(times, series, ensemble, threshold, band, current_time=current_time, height=height,
                          x_range=x_range)
