"""Face crops of concurrent analyses scored together (analysis.batching), and the API serving a burst of clients.

The batcher tests hold a pass open with an event, so which requests share a pass is deterministic; the API test
sends 16 clients at once (4 photos) and asks for every answer to be 200 and equal to the sequential one.
"""
from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from analysis.analyzer import Analyzer
from analysis.batching import CropBatcher
from api.app import create_app
from api.config import ApiConfig


def crops(n: int, value: int) -> list[np.ndarray]:
    return [np.full((8, 8, 3), value + i, dtype=np.uint8) for i in range(n)]


class HeldScore:
    """A detector whose first pass waits for `gate`; logits are each crop's first pixel, so results are checkable."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.passes: list[int] = []
        self.fail: Exception | None = None

    def __call__(self, batch):
        self.passes.append(len(batch))
        if len(self.passes) == 1:
            self.started.set()
            assert self.gate.wait(30), "test gate never opened"
        if self.fail is not None:
            raise self.fail
        return np.array([float(c[0, 0, 0]) for c in batch], dtype=np.float32)


def run_queued(batcher: CropBatcher, score: HeldScore, requests: list[list[np.ndarray]]) -> list:
    """The first request runs alone and is held; the others queue behind it; then the gate opens."""
    with ThreadPoolExecutor(len(requests)) as pool:
        first = pool.submit(batcher.logits, requests[0])
        assert score.started.wait(30)
        rest = []
        for r in requests[1:]:
            rest.append(pool.submit(batcher.logits, r))
        while len(batcher._pending) < len(requests) - 1:   # every other request is queued
            threading.Event().wait(0.01)
        score.gate.set()
        return [f.result(timeout=30) if score.fail is None else f for f in [first, *rest]]


def test_queued_requests_share_one_pass_and_get_their_own_logits():
    score = HeldScore()
    batcher = CropBatcher(score, max_crops=64)
    requests = [crops(2, 10), crops(3, 20), crops(1, 30), crops(4, 40)]
    results = run_queued(batcher, score, requests)
    assert score.passes == [2, 8]                     # the held one alone, then the three queued ones together
    for got, sent in zip(results, requests):
        np.testing.assert_array_equal(got, [float(c[0, 0, 0]) for c in sent])
    assert (batcher.stats.passes, batcher.stats.requests, batcher.stats.crops) == (2, 4, 10)


def test_a_pass_holds_at_most_max_crops_and_never_splits_a_request():
    score = HeldScore()
    batcher = CropBatcher(score, max_crops=5)
    requests = [crops(1, 0), crops(3, 10), crops(2, 20), crops(6, 30)]
    results = run_queued(batcher, score, requests)
    assert score.passes == [1, 5, 6]                  # 3 + 2 fit in 5; the request of 6 runs alone, whole
    for got, sent in zip(results, requests):
        np.testing.assert_array_equal(got, [float(c[0, 0, 0]) for c in sent])


def test_a_failing_pass_fails_each_of_its_requests():
    score = HeldScore()
    score.fail = ValueError("broken model")
    batcher = CropBatcher(score, max_crops=64)
    futures = run_queued(batcher, score, [crops(1, 0), crops(1, 1), crops(1, 2)])
    for f in futures:
        with pytest.raises(ValueError, match="broken model"):
            f.result(timeout=30)
    score.fail = None
    np.testing.assert_array_equal(batcher.logits(crops(2, 5)), [5.0, 6.0])   # and the batcher still works


def test_merging_off_runs_each_call_alone():
    seen: list[int] = []
    batcher = CropBatcher(lambda b: seen.append(len(b)) or np.zeros(len(b), np.float32), max_crops=0)
    batcher.logits(crops(3, 0))
    assert seen == [3] and batcher.stats.passes == 0


def test_analyzer_scores_through_its_batchers(tiny_models_dir):
    a = Analyzer(tiny_models_dir)
    some = [np.random.default_rng(i).integers(0, 255, (40, 40, 3), dtype=np.uint8) for i in range(3)]
    direct = {n: d.logits(some) for n, d in a.detectors.items()}
    got = a.score_crops(some, list(a.detectors))
    for n in a.detectors:
        np.testing.assert_array_equal(got[n], direct[n])   # a lone caller's pass is the direct one
        assert a.batchers[n].stats.passes == 1
    with pytest.raises(KeyError):
        a.score_crops(some, ["not_loaded"])


def test_mirrored_scoring_is_the_mean_of_both_views_in_one_pass(tiny_models_dir):
    a = Analyzer(tiny_models_dir)
    some = [np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8) for i in range(3)]
    mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in some]
    got = a.score_crops(some, list(a.detectors), mirror=True)
    for n, d in a.detectors.items():
        plain, flipped = d.logits(some), d.logits(mirrored)
        assert not np.allclose(plain, flipped)   # the views differ, so the mean is not one of them
        np.testing.assert_allclose(got[n], (plain + flipped) / 2, rtol=1e-5, atol=1e-6)
        assert got[n].shape == (3,) and got[n].dtype == np.float32
        assert a.batchers[n].stats.passes == 1 and a.batchers[n].stats.crops == 6


# ------------------------------------------------------------------------------ the API under a burst
def photos(face_photo: Path) -> list[bytes]:
    """Four different face photos: sizes, a mirror image and a crop of the test portrait."""
    base = Image.open(face_photo).convert("RGB")
    variants = [base.resize((256, 256)), base.resize((320, 320)).transpose(Image.FLIP_LEFT_RIGHT),
                base.crop((40, 0, base.width - 40, base.height - 80)).resize((240, 260)), base.resize((200, 200))]
    out = []
    for im in variants:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def stable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("timings", "created")}


@pytest.mark.slow
def test_sixteen_clients_at_once_are_all_answered_like_one_at_a_time(analyzer, tmp_path, face_photo):
    files = photos(face_photo)
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads")), analyzer=analyzer)
    with TestClient(app) as client:
        def post(i: int):
            return client.post("/v1/analyze", files={"file": (f"{i}.jpg", files[i % 4], "image/jpeg")})

        expected = []
        for i in range(4):
            r = post(i)
            assert r.status_code == 200, r.text
            expected.append(stable(r.json()))
        assert all(e["faces"] for e in expected)
        with ThreadPoolExecutor(16) as pool:   # 16 clients at once: more than max_concurrent, fewer than max_waiting
            answers = list(pool.map(post, range(16)))
    assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers if r.status_code != 200][:2]
    for i, r in enumerate(answers):
        assert stable(r.json()) == {**expected[i % 4], "path": f"{i}.jpg"}
