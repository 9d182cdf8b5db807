"""Image check: upload pictures, see each face boxed and scored, download the report."""
import streamlit as st

from ui.components import caveats
from ui.image_view import render_image_views
from ui.page import page_setup
from ui.resources import sample_photo
from ui.state import analysed_images
from ui.uploads import MediaInput

IMAGE_TYPES = ["jpg", "jpeg", "jfif", "png", "webp", "bmp", "gif", "tif", "tiff", "heic", "heif"]
PATHS_KEY = "image_paths"   # server-side files to analyse (the sample photo; tests)

analyzer, settings = page_setup(
    "Image check", "Upload one or more photos. Every face is found and scored by each detector; the scores are "
    "combined into one verdict per face and per picture.", ":material/image:")

uploads = st.file_uploader("Photos to check", type=IMAGE_TYPES, accept_multiple_files=True, key="image_uploads",
                           help="JPEG, PNG, WebP, BMP, GIF, TIFF. Files are deleted as soon as they are analysed.")
b1, b2, _ = st.columns([1, 1, 3])
if b1.button("Try the sample photo", key="image_sample", icon=":material/person:"):
    st.session_state[PATHS_KEY] = [str(sample_photo())]
if st.session_state.get(PATHS_KEY) and b2.button("Remove the sample", key="image_clear"):
    st.session_state[PATHS_KEY] = []
    st.rerun()

items = [MediaInput.from_upload(u) for u in uploads or []]
items += [MediaInput.from_path(p, name="sample photo (astronaut).png" if p == str(sample_photo()) else None)
          for p in st.session_state.get(PATHS_KEY, [])]

if not items:
    st.info("Upload one or more photos to start, or try the sample photo.", icon=":material/upload:")
    caveats()
elif settings.detectors == []:
    st.warning("Select at least one detector in the sidebar to analyse pictures.")
else:
    render_image_views(analysed_images(analyzer, items, settings))
