"""Audio check: is this voice cloned? One audio file, windows over time, the voice's verdict."""
import streamlit as st

from ui.audio_view import render_audio_view
from analysis.media import AUDIO_SUFFIXES
from ui.page import page_setup, single_media_input
from ui.runner import analyze_audio_input, audio_key

PATH_KEY = "audio_path"     # a server-side file to analyse (tests, scripted checks)
VIEW_KEY = "audio_view"

analyzer, settings = page_setup(
    "Audio check", "Upload a recording of speech. It is cut into overlapping windows; the windows with speech are "
    "scored by the audio detector, and the voice gets a verdict.", ":material/graphic_eq:")

item = single_media_input("Audio to check", AUDIO_SUFFIXES, "audio_upload", PATH_KEY,
                          help="WAV, MP3, M4A/AAC, FLAC, OGG/Opus. The file is deleted as soon as it is analysed.")
if item is not None:
    view = st.session_state.get(VIEW_KEY)
    if view is None or view.key != audio_key(item, settings):
        with st.spinner("Listening..."):
            view = analyze_audio_input(analyzer, item, settings)
        st.session_state[VIEW_KEY] = view
    render_audio_view(view)
else:
    st.info("Choose an audio file to check.", icon=":material/upload_file:")
