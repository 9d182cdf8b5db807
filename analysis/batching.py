"""Face crops of concurrent analyses scored together: one batched pass per detector for every thread waiting.

`CropBatcher.logits(crops)` is what `Analyzer.score_crops` calls for each detector. A caller alone runs its own
crops, exactly as a direct call would; while a batch runs, other threads' requests queue, and the next thread to
run takes every queued request (up to `max_crops` crops, FIFO, never splitting a request) into one pass. No
worker thread and no waiting for a batch to fill: the batch forms while the previous one runs, so a lone caller
pays nothing and a burst of requests (the HTTP API's concurrent clients) is scored in large batches.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_MAX_CROPS = 64   # crops per merged pass: large enough to amortise, small enough to bound the batch memory


@dataclass
class _Request:
    crops: Sequence[np.ndarray]
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


@dataclass
class BatchStats:
    """What the batcher has done: passes run, requests and crops scored (bench/ reads the mean batch size)."""
    passes: int = 0
    requests: int = 0
    crops: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        return self.crops / self.passes if self.passes else 0.0


@dataclass
class CropBatcher:
    """Merges concurrent `logits(crops)` calls of one detector into shared passes of `score`.

    `score(crops) -> (N,) logits` must be thread-compatible with itself never running twice at once here (the
    batcher runs one pass at a time per detector). `max_crops` < 1 turns merging off: every call runs alone.
    """
    score: Callable[[Sequence[np.ndarray]], np.ndarray]
    max_crops: int = DEFAULT_MAX_CROPS
    stats: BatchStats = field(default_factory=BatchStats)
    _pending: deque[_Request] = field(default_factory=deque, init=False, repr=False)
    _busy: bool = field(default=False, init=False, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, init=False, repr=False)

    def logits(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if self.max_crops < 1 or not crops:
            return np.asarray(self.score(crops), dtype=np.float32)
        request = _Request(crops)
        with self._cond:
            self._pending.append(request)
            while True:
                while self._busy and not request.done:
                    self._cond.wait()
                if request.done:
                    break
                batch = self._take()
                self._busy = True
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _take(self) -> list[_Request]:
        """The oldest queued requests, up to max_crops crops in all (at least one request)."""
        batch = [self._pending.popleft()]
        total = len(batch[0].crops)
        while self._pending and total + len(self._pending[0].crops) <= self.max_crops:
            total += len(self._pending[0].crops)
            batch.append(self._pending.popleft())
        return batch

    def _run(self, batch: list[_Request]) -> None:
        crops = [c for r in batch for c in r.crops]
        try:
            out = np.asarray(self.score(crops), dtype=np.float32).reshape(-1)
            if len(out) != len(crops):
                raise RuntimeError(f"the detector returned {len(out)} logits for {len(crops)} crops")
        except BaseException as exc:   # every request of the pass fails with the pass's error
            for r in batch:
                r.error, r.done = exc, True
            return
        start = 0
        for r in batch:
            r.result, r.done = out[start:start + len(r.crops)].copy(), True
            start += len(r.crops)
        self.stats.passes += 1
        self.stats.requests += len(batch)
        self.stats.crops += len(crops)
        self.stats.largest = max(self.stats.largest, len(crops))
