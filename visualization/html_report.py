"""The report to share: one self-contained HTML page for an image or a video report.

Everything is inside the file: inline CSS, pictures as `data:` URIs, no script, no font or image fetched from
anywhere (a Content-Security-Policy forbids it), so it opens offline, survives e-mail and prints to PDF
(`@media print`). Every string from the report goes through Jinja2's autoescape: file names are user input.

The page is built from the report's JSON (`to_dict()`), so a saved JSON report renders too; pictures come from
`ReportPictures` (an image report's photo) and from a video report's own thumbnails and face crops.
It builds on the analysis core and the video engine's report (visualization sits above both). No Streamlit
import: the CLI (`analyze --report`), the API and the dashboard's download button call
`render_html_report`.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2
import numpy as np

from analysis.ensemble import AGREEMENT_MEANING, agreement_label, shows_votes, verdict_for, votes_text
from analysis.media import load_image
from analysis.report import CAVEATS, HEADLINES, VERDICT_EXPLANATIONS, face_count_text, json_safe
from analysis.settings import DEFAULT_BAND, DEFAULT_THRESHOLD
from video.report import encode_jpeg, person_label, track_role

from .overlays import crop_faces, draw_faces, fit_within, scale_faces, verdict_color

PICTURE_SIDE = 1000     # longest side of an embedded photo or frame
CROP_SIDE = 160         # side of an embedded face crop
KEY_FRAMES = 6          # a video report shows at most this many frames: each person's most suspicious one
PEOPLE_SHOWN = 12       # ... and at most this many people in the timeline
TEMPLATE = "report.html.j2"
# the page's own meta tag, and the header a server sends with it: data: pictures, inline CSS, nothing else
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclass
class ReportPictures:
    """The pixels an HTML report embeds besides a video report's own thumbnails; every field is optional."""
    picture: np.ndarray | None = None           # an image report's photo (RGB), any scale: boxes follow report width
    boxed: bool = False                         # `picture` already shows the face boxes (the dashboard's)
    crops: list[np.ndarray] | None = None       # one per report face; None: cut from an unboxed `picture`
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)   # caption -> RGB overlay (e.g. Grad-CAM)


def load_pictures(report: Any, path: str | Path, max_pixels: int = 100_000_000) -> ReportPictures:
    """The photo of an analysed image report, read again from `path` (CLI, API); nothing for other reports."""
    if getattr(report, "kind", None) != "image" or getattr(report, "error", None):
        return ReportPictures()
    return ReportPictures(picture=load_image(path, max_pixels=max_pixels).rgb)


def render_html_report(report: Any, pictures: ReportPictures | None = None) -> str:
    """The report (ImageReport, VideoReport or their JSON dict) as one self-contained HTML page."""
    data = json_safe(report.to_dict()) if hasattr(report, "to_dict") else json_safe(dict(report))
    return _ENV.get_template(TEMPLATE).render(**_page(data, report, pictures or ReportPictures()))


# ------------------------------------------------------------------------------------------------ helpers
def data_uri(rgb: np.ndarray, max_side: int = PICTURE_SIDE) -> str:
    jpeg, _ = encode_jpeg(np.ascontiguousarray(rgb, dtype=np.uint8), max_side)
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _pct(p: Any, digits: int = 0) -> str:
    return "–" if not isinstance(p, (int, float)) else f"{p:.{digits}%}"


def _result_text(probability: float | None, votes: Mapping[str, int] | None, strategy: str | None) -> str:
    if shows_votes(strategy) and votes:
        return votes_text(votes)
    return "" if probability is None else f"{probability:.0%} probability of fake"


def _created_text(created: Any) -> str:
    if not isinstance(created, str):
        return "unknown"
    try:
        return datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").strftime("%d %B %Y, %H:%M:%S UTC")
    except ValueError:
        return created


def _value_text(value: Any, number: str = "{:.4g}") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number.format(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_value_text(v) for v in value) or "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) or "–"
    return str(value)


def _rows(values: Mapping[str, Any], skip: Sequence[str] = ()) -> list[tuple[str, str]]:
    return [(str(k).replace("_", " "), _value_text(v)) for k, v in values.items() if k not in skip]


def _verdict_view(verdict: str | None, text: str) -> dict[str, str]:
    return {"headline": HEADLINES.get(verdict, str(verdict)), "color": verdict_color(verdict), "text": text}


def _detector_rows(models: Mapping[str, float], weights: Mapping[str, float], threshold: float, band: float,
                   not_voting: list[dict[str, str]]) -> list[dict[str, Any]]:
    """One row per detector: the voting ones with their score, weight and own verdict, then the gated-out ones."""
    rows = []
    for name, p in models.items():
        own = verdict_for(p, threshold, band)
        vote = "–" if own is None else {"FAKE": "fake", "REAL": "real"}.get(own, "abstains")
        rows.append({"name": name, "probability": _pct(p, 1), "weight": _pct(weights.get(name)) if weights else "–",
                     "vote": vote, "voting": True, "reason": ""})
    for entry in not_voting:
        if entry.get("name") not in models:
            rows.append({"name": entry.get("name", "?"), "probability": "–", "weight": "–", "vote": "–",
                         "voting": False, "reason": entry.get("reason") or "left out"})
    return rows


# --------------------------------------------------------------------------------------------------- page
def _provenance(prov: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The file's own claims: findings with their strength, and the raw fields (private values only as present)."""
    if not prov:
        return None
    return {"declares_generated": prov.get("declares_generated"),
            "findings": [f for f in prov.get("findings") or [] if isinstance(f, Mapping)],
            "fields": [(source, _rows(values)) for source, values in (prov.get("fields") or {}).items()
                       if isinstance(values, Mapping) and values]}


def _page(data: dict[str, Any], report: Any, pictures: ReportPictures) -> dict[str, Any]:
    settings = data.get("settings") or {}
    threshold = settings.get("threshold", DEFAULT_THRESHOLD)
    band = settings.get("band", DEFAULT_BAND)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    band = DEFAULT_BAND if band is None else band
    strategy = settings.get("strategy")
    kind = data.get("kind") or "unknown"
    video = kind == "video"
    not_voting = list(data.get("models_not_voting") or [])
    op = data.get("operating_point") or {}
    page: dict[str, Any] = {
        "name": str(data.get("path") or "unnamed"), "kind": kind, "video": video,
        "created": data.get("created"), "created_text": _created_text(data.get("created")),
        "version": data.get("version") or "unknown",
        "error": data.get("error"), "message": data.get("message"), "decision": data.get("decision"),
        "csp": CONTENT_SECURITY_POLICY, "caveats": CAVEATS, "agreement_meaning": AGREEMENT_MEANING,
        "threshold": f"{threshold:.2f}", "band": f"{band:.2f}", "strategy": strategy or "–",
        "operating_point": {"source": op.get("source") or "–", "reason": op.get("reason"),
                            "max_fpr": _pct(op.get("max_fpr")), "val_fpr": _pct(op.get("val_fpr"), 1),
                            "val_tpr": _pct(op.get("val_tpr"), 1), "validated": op.get("source") == "validation",
                            "explicit": ", ".join(op.get("explicit") or [])},
        "models_used": list(data.get("models_used") or []), "not_voting": not_voting,
        "missing": [{"name": k, "reason": v} for k, v in (data.get("models_missing") or {}).items()],
        "sha256": data.get("sha256") or "–",
        "checksums": sorted((data.get("model_checksums") or {}).items()),
        "settings": _rows(settings, skip=("extra",)),
        "options": _rows(data.get("options") or {}),
        "metadata": _rows(data.get("metadata") or {}),
        "timings": [(k, f"{v:.2f} s") for k, v in (data.get("timings") or {}).items() if isinstance(v, (int, float))],
        "quality_warnings": list((data.get("quality") or {}).get("warnings") or []),
        "quality": _rows(data.get("quality") or {}, skip=("warnings", "face_blur")),
        "provenance": _provenance(data.get("provenance")),
        "heatmaps": [{"caption": str(c), "src": data_uri(img)} for c, img in pictures.heatmaps.items()],
        "figures": [], "faces": [], "people": [], "timeline": None, "face_count": "",
        "verdict_explanation": VERDICT_EXPLANATIONS.get(data.get("verdict"), VERDICT_EXPLANATIONS[None]),
    }
    if video:
        page.update(_video_part(data, report, threshold, band, strategy, not_voting))
    elif kind == "audio":
        page.update({"subject": "the voice", "verdict": _verdict_view(
            data.get("verdict"), f"fake probability {_pct(data.get('probability'), 1)}"
            if data.get("probability") is not None else ""),
            # the voice's own decision: the audio detectors' threshold, not the faces' operating point
            "threshold": f"{data.get('threshold') if data.get('threshold') is not None else DEFAULT_THRESHOLD:.2f}",
            "band": f"{data.get('band') if data.get('band') is not None else DEFAULT_BAND:.2f}",
            "strategy": "the mean of the audio detectors"})
    else:
        page.update(_image_part(data, pictures, threshold, band, strategy, not_voting))
    page["voice"] = _voice_part(data if kind == "audio" else data.get("audio"))
    page["overall"] = _overall_text(data.get("overall"))
    return page


def _voice_part(audio: dict[str, Any] | None) -> dict[str, Any] | None:
    """The voice (an audio report, or a video's `audio` section) for the report's Voice section."""
    if not audio:
        return None
    return {"status": audio.get("status"), "message": audio.get("message"),
            "verdict": _verdict_view(audio.get("verdict"), f"fake probability {_pct(audio.get('probability'), 1)}"
                                     if audio.get("probability") is not None else ""),
            "speech_share": _pct(audio.get("speech_share")), "aggregation": audio.get("aggregation"),
            "threshold": audio.get("threshold"), "passes_gate": audio.get("passes_gate"),
            "windows": [{"time": f"{w.get('start', 0):.2f}–{w.get('end', 0):.2f} s",
                         "value": _pct(w.get("probability"), 1) if w.get("probability") is not None
                         else f"not scored: {w.get('reason') or 'no speech'}"}
                        for w in audio.get("windows") or []]}


def _overall_text(overall: dict[str, Any] | None) -> str | None:
    """A video's faces-and-voice line (analysis.audio.fusion)."""
    if not overall:
        return None
    weights = ", ".join(f"{k} {v:.0%}" for k, v in (overall.get("weights") or {}).items()) or "nothing to weigh"
    text = (f"{HEADLINES.get(overall.get('verdict'), 'NOT SCORED')} ({_pct(overall.get('probability'), 1)}) by "
            f"fusion {overall.get('mode')} → {overall.get('applied')} ({weights}); faces "
            f"{_pct(overall.get('faces_probability'), 1)}, voice {_pct(overall.get('voice_probability'), 1)}")
    return text + (f". {overall['note']}" if overall.get("note") else "")


def _image_part(data: dict[str, Any], pictures: ReportPictures, threshold: float, band: float,
                strategy: str | None, not_voting: list[dict[str, str]]) -> dict[str, Any]:
    faces = list(data.get("faces") or [])
    whole = bool(data.get("whole_image"))
    scored = [f for f in faces if f.get("probability") is not None]
    worst = max(scored, key=lambda f: f["probability"]) if scored else None
    crops = pictures.crops
    figures = []
    if pictures.picture is not None:
        picture = pictures.picture
        if not pictures.boxed:
            small, _ = fit_within(picture, PICTURE_SIDE)
            width = data.get("width") or picture.shape[1]
            scale = small.shape[1] / max(1, width)
            if crops is None and faces and not whole:
                crops = crop_faces(picture, scale_faces(faces, picture.shape[1] / max(1, width)),
                                   margin=float((data.get("settings") or {}).get("margin", 0.3)), size=CROP_SIDE)
            picture = small if whole else draw_faces(small, scale_faces(faces, scale))
        caption = (f"{face_count_text(len(faces), whole)}{'' if whole else ' found'}"
                   f" · {data.get('width')}×{data.get('height')} px" + ("" if whole else " · box colour = verdict"))
        figures.append({"src": data_uri(picture), "caption": caption, "alt": "the analysed picture"})
    face_views = []
    for i, face in enumerate(faces):
        agreement = face.get("agreement")
        face_views.append({
            "label": "Whole picture" if whole else f"Face {i + 1}",
            "verdict": _verdict_view(face.get("verdict"),
                                     _result_text(face.get("probability"), face.get("votes"), strategy)),
            "box": ", ".join(f"{v:.0f}" for v in face.get("box") or []),
            "size": face.get("size"), "score": _pct(face.get("score"), 1),
            "agreement": "n/a (one detector)" if agreement is None
                         else f"{agreement:.2f} ({agreement_label(agreement)})",
            "votes": votes_text(face.get("votes")),
            "crop": data_uri(crops[i], CROP_SIDE) if crops is not None and i < len(crops) else None,
            "detectors": _detector_rows(face.get("models") or {}, face.get("weights") or {}, threshold, band,
                                        not_voting),
        })
    return {
        "subject": "this picture",
        "verdict": _verdict_view(data.get("verdict"), _result_text(data.get("probability"),
                                                                   worst.get("votes") if worst else None, strategy)),
        "face_count": face_count_text(len(faces), whole),
        "figures": figures, "faces": face_views,
    }


def _video_part(data: dict[str, Any], report: Any, threshold: float, band: float, strategy: str | None,
                not_voting: list[dict[str, str]]) -> dict[str, Any]:
    frames = list(data.get("frames") or [])
    tracks = list(data.get("tracks") or [])
    decisive = data.get("decisive_track")
    frame_objects = {getattr(f, "index", None): f for f in getattr(report, "frames", None) or []}
    decider = next((t for t in tracks if t.get("id") == decisive), None)

    # each person's most suspicious frame (the decisive person first): where a reader should look
    best: dict[int, tuple[int, int]] = {}           # track -> (position in frames, face position)
    for fi, frame in enumerate(frames):
        for ji, face in enumerate(frame.get("faces") or []):
            track, p = face.get("track"), face.get("probability")
            if track is None or p is None:
                continue
            if track not in best or p > frames[best[track][0]]["faces"][best[track][1]]["probability"]:
                best[track] = (fi, ji)
    order = sorted(best, key=lambda t: (t != decisive, t))
    people = []
    for t in tracks:
        crop = None
        if t.get("id") in best:
            fi, ji = best[t["id"]]
            obj = frame_objects.get(frames[fi].get("index"))
            if obj is not None and ji < len(obj.faces):
                rgb = obj.faces[ji].crop_rgb()
                crop = None if rgb is None else data_uri(rgb, CROP_SIDE)
        people.append({
            "label": person_label(t.get("id")), "decides": t.get("id") == decisive,
            "role": track_role(t.get("id"), decisive, t.get("minor_reason")),
            "verdict": _verdict_view(t.get("verdict"), _result_text(t.get("probability"), t.get("votes"), strategy)),
            "frames": f"{len(t.get('frames') or [])} of {len(frames)}",
            "fake_share": _pct(t.get("fake_share")), "importance": _value_text(t.get("importance"), "{:.2f}"),
            "size": "–" if t.get("median_size") is None else f"{t['median_size']:.0f} px",
            "crop": crop,
            "detectors": _detector_rows(t.get("models") or {}, {}, threshold, band, not_voting),
        })
    figures = []
    for track in order[:KEY_FRAMES]:
        fi, _ = best[track]
        frame = frames[fi]
        obj = frame_objects.get(frame.get("index"))
        rgb = obj.thumbnail_rgb() if obj is not None else None
        if rgb is None:
            continue
        boxed = draw_faces(rgb, scale_faces(frame.get("faces") or [], float(getattr(obj, "thumb_scale", 1.0))))
        figures.append({"src": data_uri(boxed), "alt": f"frame {frame.get('index')}",
                        "caption": f"Frame {frame.get('index')} at {frame.get('time', 0.0):.2f} s: "
                                   f"{person_label(track)} at their most suspicious"})
    return {
        "subject": "this video",
        "verdict": _verdict_view(data.get("verdict"), _result_text(data.get("probability"),
                                                                   decider.get("votes") if decider else None,
                                                                   strategy)),
        "face_count": f"{len(tracks)} {'person' if len(tracks) == 1 else 'people'} in "
                      f"{len(frames)} analysed frames",
        "figures": figures, "people": people,
        "timeline": _timeline(frames, decisive, threshold, band),
        "complete": data.get("complete", True),
    }


def _timeline(frames: list[dict[str, Any]], decisive: int | None, threshold: float,
              band: float) -> dict[str, Any] | None:
    """An inline SVG chart of each person's ensemble probability over time (the decisive one drawn thickest)."""
    width, height, left, top = 720.0, 200.0, 40.0, 10.0
    plot_w, plot_h = width - left - 10.0, height - top - 30.0
    times = [float(f.get("time") or 0.0) for f in frames]
    if not frames or not any(face.get("probability") is not None for f in frames for face in f.get("faces") or []):
        return None
    t0, t1 = min(times), max(times)
    x = lambda t: left + (plot_w * (t - t0) / (t1 - t0) if t1 > t0 else plot_w / 2)   # noqa: E731
    y = lambda p: top + plot_h * (1.0 - min(max(p, 0.0), 1.0))                        # noqa: E731
    series: dict[int, list[tuple[float, float]]] = {}
    for frame, t in zip(frames, times):
        for face in frame.get("faces") or []:
            if face.get("track") is not None and face.get("probability") is not None:
                series.setdefault(int(face["track"]), []).append((x(t), y(face["probability"])))
    palette = ["#1f4e79", "#7b3294", "#008837", "#a6611a", "#4d4d4d", "#d01c8b"]
    lines = []
    for i, track in enumerate(sorted(series, key=lambda k: (k != decisive, k))[:PEOPLE_SHOWN]):
        pts = series[track]
        lines.append({"label": person_label(track), "color": palette[i % len(palette)],
                      "width": 3 if track == decisive else 1.5,
                      "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in pts),
                      "dots": [(round(px, 1), round(py, 1)) for px, py in pts]})
    return {"width": width, "height": height, "left": left, "right": left + plot_w, "top": top,
            "bottom": top + plot_h, "threshold_y": round(y(threshold), 1),
            "band_top": round(y(threshold + band), 1), "band_bottom": round(y(threshold - band), 1),
            "ticks": [(round(y(p), 1), f"{p:.0%}") for p in (0.0, 0.5, 1.0)],
            "t0": f"{t0:.1f} s", "t1": f"{t1:.1f} s", "lines": lines}
