"""Video check: sample frames, follow faces, see the score over time and frame by frame."""
import streamlit as st

from analysis.media import VIDEO_SUFFIXES
from analysis.options import OPTIONS_BY_NAME
from ui.components import caveats
from ui.page import page_setup, single_media_input
from ui.runner import CROP_SIDE, VIDEO_THUMB_SIDE, analyze_video_input
from ui.state import VIDEO_VIEW, probed, shown_video
from ui.video_view import FRAME_KEY, render_video_view, rerun_reasons
from video.sampling import VideoOptions

PATH_KEY = "video_path"     # a server-side file to analyse (tests, scripted checks)
MAX_FRAMES = VideoOptions.max_frames           # the engine's cap, whatever the choice below
FRAMES, RATE = OPTIONS_BY_NAME["frames"], OPTIONS_BY_NAME["rate"]

analyzer, settings = page_setup(
    "Video check", "Upload a clip. A set of frames is analysed; faces are followed from frame to frame, and each "
    "person gets a verdict.", ":material/movie:")

item = single_media_input("Video to check", VIDEO_SUFFIXES, "video_upload", PATH_KEY,
                          help="MP4, MOV, AVI, MKV or WebM. The file is deleted as soon as it is analysed.")
if item is not None and st.session_state.get(VIDEO_VIEW) is not None \
        and st.session_state[VIDEO_VIEW].digest != item.digest:
    # another file: the last analysis is not about it, so it leaves the page (no stale verdict beside a new file)
    del st.session_state[VIDEO_VIEW]
    st.session_state[FRAME_KEY] = 0
probe = probed(item) if item is not None else None
meta = probe.metadata if probe is not None else None
duration = float(meta["duration"]) if meta and meta.get("duration") else None
if item is not None and meta:
    st.caption(f"**{item.name}**: {duration or 0:.1f} s · {meta['width']}×{meta['height']} px · "
               f"{meta['fps']:.1f} fps · {meta['frame_count']} frames")
elif probe is not None and probe.problem:
    st.error(f"{probe.problem}. Choose another file.", icon=":material/block:")

with st.container(border=True):
    st.markdown("**Which frames to analyse**")
    c1, c2 = st.columns([1, 2], gap="large")
    mode = c1.radio("Choose frames by", ["count", "rate"], key="video_mode",
                    format_func={"count": "A number of frames", "rate": "A sampling rate"}.get)
    frames, rate = FRAMES.default(VideoOptions), None
    if mode == "count":
        frames = c2.slider("Frames, spread evenly over the video", int(FRAMES.slider.minimum),
                           int(min(FRAMES.slider.maximum, MAX_FRAMES)), frames, step=int(FRAMES.slider.step),
                           key="video_frames", help="More frames: a steadier result, a longer wait.")
    else:
        rate = c2.number_input("Frames per second of video", min_value=RATE.slider.minimum,
                               max_value=RATE.slider.maximum, value=2.0, step=RATE.slider.step, key="video_rate",
                               help=f"At most {MAX_FRAMES} frames are analysed in all.")
    start = end = None
    if st.checkbox("Only part of the video", key="video_part"):
        if duration:
            start, end = st.slider("Time range (seconds)", 0.0, round(duration, 1), (0.0, round(duration, 1)),
                                   step=0.1, key=f"video_range_{duration:.1f}")
        else:
            r1, r2 = st.columns(2)
            start = r1.number_input("From (seconds)", min_value=0.0, value=0.0, step=1.0, key="video_start")
            end = r2.number_input("To (seconds, 0 = the end)", min_value=0.0, value=0.0, step=1.0, key="video_end")
            end = end or None
        start = start or None
    if duration:
        span = (end or duration) - (start or 0.0)
        planned = min(MAX_FRAMES, max(1, round(span * rate)) if rate else frames, meta.get("frame_count") or MAX_FRAMES)
        st.caption(f"About {planned} frames will be analysed.")
    options = VideoOptions(frames=int(frames), rate=float(rate) if rate else None, start=start, end=end,
                           max_frames=MAX_FRAMES, thumb_side=VIDEO_THUMB_SIDE, crop_side=CROP_SIDE)
    blocked = ("Upload a video first" if item is None else probe.problem if probe is not None and probe.problem
               else "Select at least one detector in the sidebar" if settings.detectors == [] else None)
    go = st.button("Analyse video", type="primary", key="video_go", icon=":material/play_arrow:",
                   disabled=blocked is not None, help=blocked)

if go and item is not None and blocked is None:
    bar = st.progress(0.0, text="Starting…")
    note = st.empty()
    note.caption("Changing a setting or pressing Stop (top right) cancels the analysis.")

    def show_progress(value: float, stage: str) -> None:
        bar.progress(min(1.0, max(0.0, value)), text=f"{stage[:1].upper()}{stage[1:]} · {value:.0%}")

    st.session_state[VIDEO_VIEW] = analyze_video_input(analyzer, item, settings, options, progress=show_progress)
    st.session_state[FRAME_KEY] = 0
    bar.empty()
    note.empty()

view = st.session_state.get(VIDEO_VIEW)
if view is not None:
    shown = shown_video(analyzer, view, settings)
    analysed_options = getattr(view.report, "options", None)
    render_video_view(shown.view, rerun_reasons(shown.rescored, bool(analysed_options)
                                                and analysed_options != options.to_dict()),
                      live=shown.live)
else:
    st.info("Upload a video, choose the frames, then press **Analyse video**.", icon=":material/upload:")
    caveats()
