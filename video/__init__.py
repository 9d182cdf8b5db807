"""The video engine: decode, sample, find faces, track them, score them in batches and aggregate.

No UI import. Entry point: `analyze_video(path, analyzer, settings, options, progress, cancel) -> VideoReport`.
"""
from .report import FrameFace, FrameResult, TrackResult, VideoReport
from .sampling import VideoOptions

__all__ = ["FrameFace", "FrameResult", "TrackResult", "VideoOptions", "VideoReport", "analyze_video", "probe_video"]


def __getattr__(name: str):
    # the engine pulls in torch-heavy modules; import it only when asked for
    if name == "analyze_video":
        from .engine import analyze_video
        return analyze_video
    if name == "probe_video":
        from .decode import probe_video
        return probe_video
    raise AttributeError(name)
