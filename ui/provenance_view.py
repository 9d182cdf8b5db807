"""The Provenance panel of the Image and Video pages: what the file says of itself, beside the verdict."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from analysis.provenance import CAMERA_ORIGIN, NEUTRAL, NO_METADATA, SAYS_EDITED, SAYS_GENERATED, Provenance

ICONS = {SAYS_GENERATED: ":material/smart_toy:", SAYS_EDITED: ":material/edit:",
         CAMERA_ORIGIN: ":material/photo_camera:", NEUTRAL: ":material/info:", NO_METADATA: ":material/block:"}
INTRO = ("Content credentials, metadata and generator parameters found in the file. Evidence of its own kind: it "
         "does not change the detectors' verdict, and missing metadata proves nothing (most platforms strip it).")


def provenance_panel(provenance: Provenance | None, uid: str) -> None:
    """Findings with their strength; the raw fields on demand; private values only when the user ticks the box."""
    if provenance is None:
        return
    with st.container(border=True):
        st.markdown(f"**Provenance: {provenance.strongest()}**")
        st.caption(INTRO)
        if provenance.declares_generated:
            st.error(provenance.declares_generated, icon=":material/smart_toy:")
        for f in provenance.findings:
            st.markdown(f"{ICONS[f.strength]} **{f.strength}** · {f.source}: {f.text}")
        if provenance.fields or provenance.private:
            with st.expander("Raw fields"):
                for source, values in provenance.fields.items():
                    st.markdown(f"###### {source}")
                    st.dataframe(pd.DataFrame({"field": list(values), "value": [str(v) for v in values.values()]}),
                                 hide_index=True, width="stretch")
                if provenance.private and st.checkbox(
                        "Show private values (GPS position, serial numbers, owner names)", key=f"private-{uid}"):
                    st.dataframe(pd.DataFrame({"field": list(provenance.private),
                                               "value": list(provenance.private.values())}),
                                 hide_index=True, width="stretch")
