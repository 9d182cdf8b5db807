"""Frame sampling: evenly N, every k-th, by rate, inside a time range, capped."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.errors import MediaError
from video.sampling import VideoOptions, sample_indices

TIMES_25 = np.arange(250) / 25.0       # 10 s at 25 fps


def indices(times=TIMES_25, **kw):
    return sample_indices(times, VideoOptions(**kw)).indices


def test_evenly_n_spans_the_whole_video():
    assert indices(frames=5) == [0, 62, 124, 187, 249]
    assert indices(frames=1) == [124]
    assert indices(frames=1000) == list(range(250))     # more than there are: every frame once


def test_every_kth():
    assert indices(every=50) == [0, 50, 100, 150, 200]
    assert indices(every=1, max_frames=1000) == list(range(250))


def test_by_rate_picks_the_frame_on_screen():
    assert indices(rate=1.0) == [0, 25, 50, 75, 100, 125, 150, 175, 200, 225]
    assert indices(rate=2.0, start=1.0, end=3.0) == [25, 37, 50, 62]


def test_time_range_limits_every_mode():
    assert indices(frames=3, start=2.0, end=4.0) == [50, 74, 99]
    assert indices(every=10, start=9.0) == [225, 235, 245]
    assert indices(frames=2, end=0.2) == [0, 4]


def test_rate_on_variable_frame_rate_uses_timestamps():
    times = np.concatenate([np.arange(10) * 0.1, 1.0 + np.arange(10) * 1.0])   # 10 fps then 1 fps
    assert sample_indices(times, VideoOptions(rate=2.0)).indices == [0, 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert sample_indices(times, VideoOptions(frames=3, start=3.5)).indices == [13, 16, 19]


def test_max_frames_thins_evenly():
    plan = sample_indices(TIMES_25, VideoOptions(every=1, max_frames=4))
    assert plan.indices == [0, 83, 166, 249] and plan.capped_from == 250


def test_range_outside_the_video_is_a_media_error():
    with pytest.raises(MediaError, match="holds no frame"):
        indices(start=20.0)


@pytest.mark.parametrize("kw", [dict(frames=0), dict(every=0), dict(rate=0), dict(every=2, rate=1.0),
                                dict(start=5, end=4), dict(start=-1), dict(max_frames=0)])
def test_invalid_options_raise_value_error(kw):
    with pytest.raises(ValueError):
        VideoOptions(**kw).validate()
