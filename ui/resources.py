"""Process-wide resources of the dashboard: the analyzer (models load once per server, shared by sessions)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from analysis.analyzer import Analyzer, get_analyzer
from detectors.artifacts import default_models_dir



def models_dir() -> Path:
    """The models folder (detectors.artifacts.default_models_dir: read on every call, so tests can point the app at
    tiny models)."""
    return default_models_dir()


@st.cache_resource(show_spinner="Loading the detectors (once per server)…")
def _shared_analyzer(folder: str) -> Analyzer:
    return get_analyzer(folder)


def shared_analyzer() -> Analyzer:
    """The one Analyzer of this server for the current models folder."""
    return _shared_analyzer(str(models_dir().resolve()))


def sample_photo() -> Path:
    """A public-domain portrait that ships with scikit-image (NASA astronaut Eileen Collins), to try the app."""
    from skimage import data

    return Path(data.__file__).resolve().parent / "astronaut.png"
