"""The start page: what the tool does, how to read it, what it cannot do, and the state of the detectors."""
from __future__ import annotations

import streamlit as st

from analysis.ensemble import AGREEMENT_MEANING

from .components import CAVEATS, legend
from .page import page_setup

PAGES = {"image": "pages/1_Image.py", "video": "pages/2_Video.py", "features": "pages/3_Feature_maps.py",
         "models": "pages/4_Models.py"}


def render_home() -> None:
    analyzer, _ = page_setup("Deepfake check", "Is this face real? Five independent detectors examine every face in "
                             "a picture or a video and vote.", ":material/search:")
    c1, c2 = st.columns(2, gap="large")
    with c1, st.container(border=True):
        st.markdown("### :material/image: Check pictures")
        st.markdown("Upload one or more photos. Every face is found, boxed and scored.")
        st.page_link(PAGES["image"], label="Open the Image check", icon=":material/arrow_forward:")
    with c2, st.container(border=True):
        st.markdown("### :material/movie: Check a video")
        st.markdown("Upload a clip. Faces are followed from frame to frame; see the score over time.")
        st.page_link(PAGES["video"], label="Open the Video check", icon=":material/arrow_forward:")
    c3, c4 = st.columns(2, gap="large")
    with c3, st.container(border=True):
        st.markdown("### :material/psychology: See what the detectors look at")
        st.markdown("Heatmaps of the face regions each detector relied on.")
        st.page_link(PAGES["features"], label="Open Feature maps", icon=":material/arrow_forward:")
    with c4, st.container(border=True):
        st.markdown("### :material/fact_check: The detectors")
        st.markdown(f"{len(analyzer.detectors)} of {len(analyzer.detectors) + len(analyzer.load_errors)} loaded: "
                    "what they were trained on and how well they did.")
        st.page_link(PAGES["models"], label="Open Models", icon=":material/arrow_forward:")
    st.markdown("### How to read a result")
    legend()
    st.markdown(
        "- **LIKELY FAKE / LIKELY REAL**: the detectors' combined, calibrated probability that the face is fake is "
        "clearly above / below the decision threshold.\n"
        "- **UNCERTAIN**: the probability lies within the uncertainty band around the threshold. No conclusion.\n"
        f"- **Agreement** says whether the detectors tell the same story; weak agreement means be careful. "
        f"{AGREEMENT_MEANING}\n"
        "- With the **majority** strategy the result is a vote: \"2 of 5 detectors say fake\"; a detector whose "
        "score lies inside the uncertainty band abstains.\n"
        "- The **input-quality** panel warns when the picture is smaller, blurrier or more compressed than what the "
        "detectors were trained on.\n"
        "- Threshold, band and how the detectors are combined are set in the sidebar.")
    st.markdown("### Limits")
    st.warning(CAVEATS, icon=":material/warning:")
    st.caption("Uploads are kept in a private temporary folder only while they are analysed, then deleted. "
               "Each report records the file's SHA-256, the detectors' checksums and the settings, so it can be "
               "reproduced.")
