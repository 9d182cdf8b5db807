"""Aggregation arithmetic on hand-made numbers."""
from __future__ import annotations

import pytest

from video.aggregate import (confident_mean, decisive_tracks, frame_probability, mean_per_model, summarize,
                             top_mean, video_probability)


def test_many_confident_fakes_use_their_mean():
    probs = [0.9] * 5 + [0.95] * 5 + [0.1] * 10 + [0.5] * 2     # 10 of 22 >= 0.8: more than 22/2.5 = 8.8
    value, method = confident_mean(probs)
    assert method == "confident_fake" and value == pytest.approx(0.925)


def test_few_confident_fakes_fall_back_to_the_mean():
    probs = [0.9] * 8 + [0.1] * 14                                # 8 of 22 <= 8.8
    value, method = confident_mean(probs)
    assert method == "mean" and value == pytest.approx((0.9 * 8 + 0.1 * 14) / 22)


def test_nearly_all_confident_reals_use_their_mean():
    probs = [0.1] * 19 + [0.05] + [0.6]                           # 20 of 21 < 0.2: more than 90 %
    value, method = confident_mean(probs)
    assert method == "confident_real" and value == pytest.approx((0.1 * 19 + 0.05) / 20)


def test_a_single_confident_frame_is_not_enough():
    assert confident_mean([0.9]) == (pytest.approx(0.9), "mean")
    assert confident_mean([0.9, 0.85]) == (pytest.approx(0.875), "confident_fake")
    assert confident_mean([]) == (None, "none")


def test_summary_numbers():
    s = summarize([0.2, 0.4, 0.6, 0.8, None], threshold=0.5)
    assert s.count == 4 and s.mean == pytest.approx(0.5) and s.max == 0.8
    assert s.fake_share == pytest.approx(0.5) and s.top_mean == pytest.approx(0.8)   # top quarter of 4 = 1 frame
    assert s.method == "mean" and s.probability == pytest.approx(0.5)
    assert top_mean([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], share=0.25) == pytest.approx(0.75)
    assert summarize([]).probability is None


def test_frame_is_its_most_suspicious_face():
    assert frame_probability([0.2, 0.7, None]) == 0.7
    assert frame_probability([]) is None


def test_mean_per_model():
    assert mean_per_model([{"a": 0.2, "b": 0.4}, {"a": 0.6, "b": 0.8}]) == {"a": 0.4, "b": 0.6}


def test_short_tracks_do_not_decide_the_video():
    assert sorted(decisive_tracks({0: 30, 1: 1, 2: 3}, analysed_frames=32)) == [0, 2]
    assert decisive_tracks({0: 1}, analysed_frames=32) == [0]      # nothing long: all count
    assert video_probability({0: 0.3, 1: 0.99, 2: 0.7}, [0, 2]) == (0.7, 2)
    assert video_probability({0: None}, [0]) == (None, None)
