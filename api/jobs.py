"""Analysis jobs kept in memory: for long videos, POST /v1/jobs answers at once with an id, and
GET /v1/jobs/{id} shows progress and, at the end, the report. Bounded in count; finished jobs expire."""
from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .limits import ApiError

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
JOB_STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
JOB_ID_BYTES = 12
JOB_ID_PATTERN = rf"^[A-Za-z0-9_-]{{{4 * JOB_ID_BYTES // 3}}}$"   # secrets.token_urlsafe(JOB_ID_BYTES)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Job:
    id: str
    filename: str
    kind: str | None = None
    status: str = QUEUED
    progress: float = 0.0
    stage: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    report: dict[str, Any] | None = None
    html: str | None = field(default=None, repr=False)   # the report's HTML page (GET /v1/jobs/{id}/report.html)
    error: dict[str, str] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task | None = None

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def set_progress(self, fraction: float, stage: str = "") -> None:
        """Called from the analysis thread: plain attribute stores, read by the event loop."""
        try:
            self.progress = round(min(max(float(fraction), 0.0), 1.0), 4)
        except (TypeError, ValueError):
            pass
        if stage:
            self.stage = str(stage)[:200]

    def finish(self, status: str, report: dict[str, Any] | None = None,
               error: dict[str, str] | None = None, html: str | None = None) -> None:
        self.status, self.report, self.error, self.html = status, report, error, html
        self.finished = time.time()
        if status == DONE:
            self.progress, self.stage = 1.0, "done"
        else:
            self.stage = status

    def to_dict(self, with_report: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "status": self.status, "kind": self.kind, "filename": self.filename,
            "progress": self.progress, "stage": self.stage, "created_at": _iso(self.created),
            "started_at": _iso(self.started), "finished_at": _iso(self.finished), "error": self.error,
            "url": f"/v1/jobs/{self.id}",
            "report_html_url": f"/v1/jobs/{self.id}/report.html" if self.html is not None else None,
        }
        if with_report:
            out["report"] = self.report
        return out


class JobStore:
    """Jobs by id. Finished jobs are forgotten `ttl_s` after they end; at most `max_jobs` are held."""

    def __init__(self, max_jobs: int, ttl_s: float, retry_after_s: int = 5) -> None:
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self.retry_after_s = retry_after_s
        self._jobs: dict[str, Job] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def purge(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for job_id in [j.id for j in self._jobs.values()
                       if j.done and j.finished is not None and now - j.finished > self.ttl_s]:
            del self._jobs[job_id]

    def create(self, filename: str, kind: str | None = None) -> Job:
        self.purge()
        if len(self._jobs) >= self.max_jobs:
            oldest = min((j for j in self._jobs.values() if j.done), key=lambda j: j.finished or 0, default=None)
            if oldest is None:
                raise ApiError(429, "too_many_jobs",
                               f"{self.max_jobs} jobs are queued or running; retry when one has finished",
                               {"Retry-After": str(max(1, self.retry_after_s))})
            del self._jobs[oldest.id]  # room for the new one: the oldest finished job goes first
        job = Job(id=secrets.token_urlsafe(JOB_ID_BYTES), filename=filename, kind=kind)
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        self.purge()
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, "job_not_found", f"no job {job_id!r} (unknown, deleted or expired)")
        return job

    def list(self) -> list[Job]:
        self.purge()
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def remove(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.cancel_event.set()
            if job.task is not None and not job.task.done():
                job.task.cancel()
