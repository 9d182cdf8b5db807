"""The feature-map page's body: choose a face, a detector and a layer; see activations and Grad-CAM heatmaps."""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import streamlit as st

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings
from video.report import person_label
from visualization.feature_maps import FeatureMaps, capture_feature_maps, feature_grid, grid_picture
from visualization.gradcam import CAM_METHODS, explain_all

from .resources import sample_photo
from .runner import FaceSource, faces_for_features
from .state import VIDEO_VIEW, current_image_views
from .uploads import MediaInput

SRC_IMAGE, SRC_VIDEO, SRC_UPLOAD, SRC_SAMPLE = "image", "video", "upload", "sample"
SOURCE_LABELS = {SRC_IMAGE: "A picture from the Image page", SRC_VIDEO: "A frame of the last video",
                 SRC_UPLOAD: "Upload a picture here", SRC_SAMPLE: "The sample photo"}
TARGET_LABELS = {"fake": "What pushes each detector towards FAKE", "real": "What pushes each detector towards REAL"}
CAM_CACHE_KEY = "fm_cam_cache"
STAGES_CACHE_KEY = "fm_stages_cache"
FACES_CACHE_KEY = "fm_faces"


def crop_digest(crop: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(crop).tobytes() + str(crop.shape).encode()).hexdigest()[:16]


def _image_views() -> list[Any]:
    return [v for v in current_image_views() if v.crops]


def _video_frames() -> list[Any]:
    view = st.session_state.get(VIDEO_VIEW)
    frames = getattr(getattr(view, "report", None), "frames", None) or []
    return [fr for fr in frames if any(f.crop_jpeg for f in fr.faces)]


def _cached_faces(analyzer: Analyzer, item: MediaInput, settings: AnalysisSettings) -> FaceSource:
    cache = st.session_state.setdefault(FACES_CACHE_KEY, {})
    key = f"{item.digest}|{settings.min_face_size}|{settings.margin}"
    if key not in cache:
        with st.spinner("Finding faces…"):
            cache[key] = faces_for_features(analyzer, item, settings)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[key]


def choose_face(analyzer: Analyzer, settings: AnalysisSettings) -> tuple[np.ndarray | None, str]:
    """Source picker; returns (crop RGB uint8 or None, description)."""
    sources = []
    if _image_views():
        sources.append(SRC_IMAGE)
    if _video_frames():
        sources.append(SRC_VIDEO)
    sources += [SRC_UPLOAD, SRC_SAMPLE]
    if st.session_state.get("fm_source") not in sources:
        st.session_state["fm_source"] = sources[0]
    source = st.radio("Face to examine", sources, key="fm_source", horizontal=True,
                      format_func=SOURCE_LABELS.get)
    if source == SRC_IMAGE:
        views = _image_views()
        names = [v.name for v in views]
        pick = st.selectbox("Picture", range(len(views)), key="fm_image", format_func=lambda i: names[i])
        view = views[min(pick, len(views) - 1)]
        face = st.selectbox("Face", range(len(view.crops)), key="fm_image_face",
                            format_func=lambda i: f"Face {i + 1}") if len(view.crops) > 1 else 0
        return view.crops[min(face, len(view.crops) - 1)], f"{view.name}, face {face + 1}"
    if source == SRC_VIDEO:
        frames = _video_frames()
        i = st.select_slider("Frame of the last video", options=list(range(len(frames))), key="fm_video_frame",
                             format_func=lambda k: f"{frames[k].time:.2f} s")
        frame = frames[min(i, len(frames) - 1)]
        faces = [f for f in frame.faces if f.crop_jpeg]
        j = st.selectbox("Face", range(len(faces)), key="fm_video_face",
                         format_func=lambda k: person_label(faces[k].track)) if len(faces) > 1 else 0
        face = faces[min(j, len(faces) - 1)]
        return face.crop_rgb(), f"frame at {frame.time:.2f} s, {person_label(face.track)}"
    if source == SRC_UPLOAD:
        upload = st.file_uploader("Picture with a face", type=["jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"],
                                  key="fm_upload")
        path = st.session_state.get("fm_path")   # a server-side path (tests, scripted checks)
        if upload is None and not path:
            return None, ""
        item = MediaInput.from_upload(upload) if upload is not None else MediaInput.from_path(path)
    else:
        item = MediaInput.from_path(sample_photo(), name="sample photo (astronaut)")
    found = _cached_faces(analyzer, item, settings)
    if found.message:
        st.warning(f"{found.name}: {found.message}")
        return None, ""
    k = st.selectbox("Face", range(len(found.crops)), key="fm_pic_face",
                     format_func=lambda n: found.labels[n]) if len(found.crops) > 1 else 0
    k = min(k, len(found.crops) - 1)
    return found.crops[k], f"{found.name}, {found.labels[k]}"


def _cached_stages(analyzer: Analyzer, name: str, crop: np.ndarray) -> dict[str, FeatureMaps] | str:
    """Every stage of detector `name` for the crop (one pass), or the one-line reason it failed; kept per session."""
    cache = st.session_state.setdefault(STAGES_CACHE_KEY, {})
    key = f"{crop_digest(crop)}|{name}"
    if key not in cache:
        try:
            cache[key] = capture_feature_maps(analyzer.detectors[name], crop)
        except (ValueError, RuntimeError) as exc:
            cache[key] = " ".join(str(exc).split())[:200]
        while len(cache) > 4:
            cache.pop(next(iter(cache)))
    return cache[key]


def render_activations(analyzer: Analyzer, crop: np.ndarray) -> None:
    names = list(analyzer.detectors)
    c1, c2, c3 = st.columns([2, 2, 1])
    name = c1.selectbox("Detector", names, key="fm_detector")
    stages = _cached_stages(analyzer, name, crop)
    if isinstance(stages, str):
        st.error(f"Cannot show the layers of {name}: {stages}")
        return
    layers = list(stages)
    if st.session_state.get("fm_layer") not in layers:
        st.session_state["fm_layer"] = layers[len(layers) // 2]
    layer = c2.selectbox("Layer (top = shallow, close to the pixels; bottom = deep)", layers, key="fm_layer",
                         format_func=lambda l: f"{layers.index(l) + 1}. {l}")
    count = c3.select_slider("Maps shown", options=[4, 9, 16, 25, 36, 64], value=16, key="fm_count")
    maps = stages[layer]
    grid = feature_grid(maps.maps, max_maps=count)
    c, h, w = maps.maps.shape
    st.image(grid_picture(grid), width=560,
             caption=f"{name} · {layer}: the {len(grid.channels)} most active of {c} channels, each {h}×{w} "
                     "(bright = strong activation)")


def render_gradcam(analyzer: Analyzer, crop: np.ndarray) -> None:
    c1, c2 = st.columns([3, 1])
    target = c1.radio("Heatmaps show", list(TARGET_LABELS), key="fm_target", horizontal=True,
                      format_func=TARGET_LABELS.get)
    method = c2.selectbox("Method", list(CAM_METHODS), key="fm_method")
    key = f"{crop_digest(crop)}|{target}|{method}|{','.join(analyzer.detectors)}"
    cache = st.session_state.setdefault(CAM_CACHE_KEY, {})
    if key not in cache:
        with st.spinner(f"Computing {method} for {len(analyzer.detectors)} detectors…"):
            cache[key] = explain_all(analyzer.detectors, crop, target=target, method=method)
        while len(cache) > 6:
            cache.pop(next(iter(cache)))
    results, errors = cache[key]
    cols = st.columns(max(1, min(5, len(results) + len(errors))))
    for col, name in zip(cols * 2, list(analyzer.detectors)):
        with col:
            if name in results:
                r = results[name]
                prob = "" if r.probability is None else f" · {r.probability:.0%} fake"
                st.image(r.overlay, width="stretch", caption=f"{name}{prob}")
            else:
                st.error(f"{name}: {errors.get(name, 'not available')}")
    st.caption("Red and yellow mark the regions that moved each detector's score the most in the chosen "
               "direction; blue regions mattered little. A heatmap shows where a detector looked, not proof of "
               "manipulation, and detectors often disagree on where to look.")


def render_feature_page(analyzer: Analyzer, settings: AnalysisSettings) -> None:
    if not analyzer.detectors:
        st.info("Feature maps and heatmaps need at least one detector with weights (see the Models page).")
        return
    crop, described = choose_face(analyzer, settings)
    if crop is None:
        st.info("Choose a face above: upload a picture, or analyse one on the Image or Video page first.")
        return
    top_left, top_right = st.columns([1, 4], gap="large")
    with top_left:
        st.image(crop, width=200, caption=described)
    with top_right:
        st.markdown("The detectors never see the whole picture: only this square crop around the face, "
                    "resized to each detector's input size. Below, what their layers respond to and where "
                    "they looked.")
    st.markdown("#### Activation maps")
    render_activations(analyzer, crop)
    st.markdown("#### Grad-CAM: where each detector looked")
    render_gradcam(analyzer, crop)
