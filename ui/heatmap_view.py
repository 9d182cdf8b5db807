"""Grad-CAM over the photo and the video frame: the toggle, which heatmap (a detector or the ensemble), and a cache
in the session. The heatmaps themselves are visualization.heatmaps'; they are computed only while the toggle is on.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import streamlit as st

from visualization.heatmaps import face_cams, heatmap_overlay, weighted_cam
from visualization.overlays import draw_faces

from .resources import shared_analyzer

HEATMAP_CACHE = "heatmap_cache"   # (crop digest, detector) -> CAM_SIDE square heatmap, or the one-line error
MAX_CACHED = 256                  # heatmaps kept per session (64 KB each)
ENSEMBLE = "ensemble"             # the heatmap choice "the ensemble's weighted mean"
HEATMAP_HELP = ("Grad-CAM: the regions of each face that pushed a detector towards FAKE (red, yellow) or mattered "
                "little (blue), drawn inside the face boxes: the detectors never see the rest of the picture. "
                "Computing them takes a few seconds per face.")
HEATMAP_NOTE = ("Red and yellow: where the face pushed the score towards FAKE; blue: what mattered little. A heatmap "
                "shows where a detector looked, not proof of manipulation.")


@dataclass
class FaceToExplain:
    """One face of the picture shown: its box in the picture's pixels, the crop the detectors saw, and who scored
    it with what weight."""
    box: Sequence[float]
    crop: np.ndarray | None
    names: list[str]                                        # the detectors that scored this face
    weights: Mapping[str, float] = field(default_factory=dict)   # each one's share in the face's result


def heatmap_choice(uid: str, names: Sequence[str]) -> str | None:
    """The toggle and, while it is on, whose heatmap: a detector's name or ENSEMBLE; None while it is off."""
    c1, c2 = st.columns([1, 2], vertical_alignment="center")
    on = c1.toggle("Heatmap", key=f"heat-on-{uid}", help=HEATMAP_HELP)
    if not on or not names:
        return None
    return c2.selectbox("Heatmap of", [ENSEMBLE, *names], key=f"heat-of-{uid}", label_visibility="collapsed",
                        format_func=lambda n: "All detectors (weighted as in the ensemble)" if n == ENSEMBLE else n)


def _digest(crop: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(crop).tobytes() + str(crop.shape).encode()).hexdigest()


def _cams(crop: np.ndarray, names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each detector's heatmap of the crop, from the session's cache or computed now."""
    cache: dict = st.session_state.setdefault(HEATMAP_CACHE, {})
    digest = _digest(crop)
    todo = [n for n in names if (digest, n) not in cache]
    if todo:
        found = face_cams(shared_analyzer().detectors, crop, todo)
        for n in todo:
            cache[(digest, n)] = found.cams[n] if n in found.cams else found.errors.get(n, "no heatmap")
        while len(cache) > MAX_CACHED:
            cache.pop(next(iter(cache)))
    values = {n: cache[(digest, n)] for n in names}
    return ({n: v for n, v in values.items() if isinstance(v, np.ndarray)},
            {n: v for n, v in values.items() if isinstance(v, str)})


def heatmap_picture(picture: np.ndarray, faces: Sequence[FaceToExplain], choice: str, margin: float,
                    boxed_faces: Sequence[Mapping]) -> tuple[np.ndarray, dict[str, str]]:
    """`picture` (no boxes) with the chosen heatmap inside each face box, then the boxes (`boxed_faces`, as
    draw_faces takes them) drawn over it; and the detectors whose heatmap failed, with the reason."""
    heat: list[np.ndarray | None] = []
    errors: dict[str, str] = {}
    with st.spinner("Computing the heatmaps…"):
        for face in faces:
            names = [n for n in face.names if choice == ENSEMBLE or n == choice]
            if face.crop is None or not names:
                heat.append(None)
                continue
            cams, failed = _cams(face.crop, names)
            errors.update(failed)
            heat.append(weighted_cam(cams, face.weights) if choice == ENSEMBLE else cams.get(choice))
    overlay = heatmap_overlay(picture, [f.box for f in faces], heat, margin)
    return draw_faces(overlay, boxed_faces), errors


def heatmap_title(choice: str) -> str:
    """"Grad-CAM heatmap: all detectors, weighted as in the ensemble" / "Grad-CAM heatmap: swin"."""
    return f"Grad-CAM heatmap: {'all detectors, weighted as in the ensemble' if choice == ENSEMBLE else choice}"


def heatmap_caption(choice: str, errors: Mapping[str, str]) -> None:
    who = ("all detectors, each weighted by its share in the face's result" if choice == ENSEMBLE
           else f"{choice}")
    st.caption(f"Heatmap of {who}. {HEATMAP_NOTE}")
    for name, why in errors.items():
        st.caption(f":material/error: No heatmap from {name}: {why}")
