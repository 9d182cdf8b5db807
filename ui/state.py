"""Session-state caches: an analysis runs once per (file, settings); reruns of the page reuse it."""
from __future__ import annotations

from typing import Any, Sequence

import streamlit as st

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings

from .runner import ImageView, analyze_image_input, image_key, probe_duration
from .uploads import MediaInput

IMAGE_VIEWS = "image_views"          # key -> ImageView (most recent last)
IMAGE_CURRENT = "image_current"      # keys of the pictures on the Image page now
VIDEO_VIEW = "video_view"            # the last VideoView
VIDEO_PROBES = "video_probes"        # digest -> metadata dict or None
MAX_IMAGE_VIEWS = 24


def analysed_images(analyzer: Analyzer, items: Sequence[MediaInput], settings: AnalysisSettings) -> list[ImageView]:
    cache: dict[str, ImageView] = st.session_state.setdefault(IMAGE_VIEWS, {})
    keys = [image_key(item, settings) for item in items]
    todo = [(k, item) for k, item in zip(keys, items) if k not in cache]
    if todo:
        bar = st.progress(0.0, text=f"Analysing {len(todo)} picture{'s' if len(todo) > 1 else ''}…")
        for n, (key, item) in enumerate(todo):
            bar.progress(n / len(todo), text=f"Analysing {item.name} ({n + 1} of {len(todo)})…")
            cache[key] = analyze_image_input(analyzer, item, settings)
        bar.empty()
    for key in keys:                      # most recently shown last, then trim the oldest
        cache[key] = cache.pop(key)
    while len(cache) > max(MAX_IMAGE_VIEWS, len(keys)):
        cache.pop(next(iter(cache)))
    st.session_state[IMAGE_CURRENT] = list(keys)
    return [cache[k] for k in keys]


def current_image_views() -> list[ImageView]:
    cache = st.session_state.get(IMAGE_VIEWS, {})
    return [cache[k] for k in st.session_state.get(IMAGE_CURRENT, []) if k in cache]


def probed(item: MediaInput) -> dict[str, Any] | None:
    cache = st.session_state.setdefault(VIDEO_PROBES, {})
    digest = item.digest
    if digest not in cache:
        cache[digest] = probe_duration(item)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[digest]
