"""What every page does first: title, the shared analyzer, the settings sidebar, the model notice."""
from __future__ import annotations

import logging
from collections.abc import Iterable

import streamlit as st

from analysis.analyzer import Analyzer
from analysis.settings import AnalysisSettings

from .components import models_notice
from .resources import shared_analyzer
from .sidebar import settings_sidebar
from .uploads import MediaInput

log = logging.getLogger(__name__)

_CSS = """
<style>
.block-container {padding-top: 2.2rem; max-width: 1250px;}
div[data-testid="stMetricValue"] {font-size: 1.35rem;}
.lede {font-size: 1.05rem; color: #455a64; margin-top: -0.6rem; margin-bottom: 0.8rem;}
</style>
"""


def page_setup(title: str, lede: str, icon: str = "") -> tuple[Analyzer, AnalysisSettings]:
    """Draw the page header and sidebar; stop the page with one error line if the models cannot be read at all."""
    st.markdown(_CSS, unsafe_allow_html=True)
    st.title(f"{icon} {title}".strip())
    st.markdown(f'<div class="lede">{lede}</div>', unsafe_allow_html=True)
    try:
        analyzer = shared_analyzer()
    except Exception as exc:  # noqa: BLE001 - a broken install must still show a readable page
        log.exception("cannot create the analyzer")
        st.error(f"The detectors could not be set up: {' '.join(str(exc).split())[:300]}")
        st.stop()
    settings = settings_sidebar(analyzer)
    models_notice(analyzer)
    return analyzer, settings


def upload_types(suffixes: Iterable[str]) -> list[str]:
    """The file_uploader's `type` list for a set of analysis.media suffixes (".mp4" -> "mp4")."""
    return sorted(s.lstrip(".") for s in suffixes)


def single_media_input(label: str, suffixes: Iterable[str], key: str, path_key: str,
                       help: str) -> MediaInput | None:
    """One uploaded file, else the server-side path in session state `path_key` (tests, scripted checks)."""
    upload = st.file_uploader(label, type=upload_types(suffixes), key=key, help=help)
    if upload is not None:
        return MediaInput.from_upload(upload)
    return MediaInput.from_path(st.session_state[path_key]) if st.session_state.get(path_key) else None
