"""Session-state caches: an analysis runs once per (file, settings); reruns of the page reuse it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import streamlit as st

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings
from video.engine import Rescored, rescore_video
from video.report import VideoReport

from .runner import (ImageView, VideoProbe, VideoView, analyze_image_input, image_key, probe_video_input,
                     settings_key)
from .uploads import MediaInput

IMAGE_VIEWS = "image_views"          # key -> ImageView (most recent last)
IMAGE_CURRENT = "image_current"      # keys of the pictures on the Image page now
VIDEO_VIEW = "video_view"            # the last VideoView
VIDEO_PROBES = "video_probes"        # digest -> VideoProbe
VIDEO_SHOWN = "video_shown"          # (analysis key, settings key, ShownVideo): the last one under other settings
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


def probed(item: MediaInput) -> VideoProbe:
    cache = st.session_state.setdefault(VIDEO_PROBES, {})
    digest = item.digest
    if digest not in cache:
        cache[digest] = probe_video_input(item)
        while len(cache) > 8:
            cache.pop(next(iter(cache)))
    return cache[digest]


@dataclass
class ShownVideo:
    """The Video page's analysis as it is shown: under the sidebar's settings when they differ from its own."""
    view: VideoView
    rescored: Rescored | None = None     # set when the settings differ from the analysis's
    live: bool = False                   # the stored scores were re-combined under the sidebar's settings


def shown_video(analyzer: Analyzer, view: VideoView, settings: AnalysisSettings) -> ShownVideo:
    """`view` re-combined under `settings` from its stored per-face scores (video.engine.rescore_video), computed
    once per analysis and settings; the view itself when the settings are those of the analysis or it has no
    frames (an error)."""
    report = view.report
    if not isinstance(report, VideoReport) or not report.frames or view.settings == settings.to_dict():
        return ShownVideo(view)
    key = settings_key(settings)
    cached = st.session_state.get(VIDEO_SHOWN)
    if cached is None or cached[0] != view.key or cached[1] != key:
        try:
            rescored = rescore_video(report, analyzer, settings)
        except ValueError:   # a detector name this server does not know: the analysis stays as it was
            rescored = Rescored(report=report)
        live = rescored.report is not report
        shown = ShownVideo(VideoView(view.key, view.name, rescored.report, settings.to_dict() if live
                                     else view.settings), rescored, live)
        cached = (view.key, key, shown)
        st.session_state[VIDEO_SHOWN] = cached
    return cached[2]
