"""Deepfake check dashboard: `streamlit run app.py`. Layout only: the analysis lives in analysis/, video/, detectors/.
"""
import streamlit as st

st.set_page_config(page_title="Deepfake check", page_icon=":material/search:", layout="wide")

from ui.home import render_home  # noqa: E402

navigation = st.navigation([
    st.Page(render_home, title="Overview", icon=":material/search:", default=True),
    st.Page("pages/1_Image.py", title="Image check", icon=":material/image:"),
    st.Page("pages/2_Video.py", title="Video check", icon=":material/movie:"),
    st.Page("pages/3_Feature_maps.py", title="Feature maps", icon=":material/psychology:"),
    st.Page("pages/4_Models.py", title="Models", icon=":material/fact_check:"),
])
navigation.run()
