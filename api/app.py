"""The HTTP API: FastAPI app factory.

The analyzer loads once at start-up (lifespan) and is shared; analyses run in a thread pool bounded by
`AnalysisSlots`; uploads stream into a private 0700 folder and are deleted when their analysis ends, also on
errors; every error is JSON `{"error": {"code", "message"}}`, never a stack trace.
The HTML report (`format=html`, `GET /v1/jobs/{id}/report.html`) is rendered inside the analysis, while the
upload still exists: it embeds the picture, and nothing of the upload is kept after the analysis.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from analysis import __version__
from analysis.report import json_safe

from fastapi import APIRouter, Depends, FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .config import ApiConfig
from .jobs import CANCELLED, DONE, FAILED, RUNNING, Job, JobStore
from .limits import AnalysisSlots, ApiError, Upload, check_media, receive_upload

log = logging.getLogger("api")

API_KEY_HEADER = "X-API-Key"
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "upload_too_large",
              415: "unsupported_media_type", 422: "invalid_parameter", 429: "busy", 503: "not_ready"}

# name -> (type, help); accepted as multipart form fields next to `file`, or as query parameters.
PARAMS: dict[str, tuple[str, str]] = {
    "frames": ("integer", "video: evenly spaced frames to analyse (1..max_frames, default 32)"),
    "every": ("integer", "video: analyse every k-th frame instead"),
    "rate": ("number", "video: analyse this many frames per second instead"),
    "start": ("number", "video: start time in seconds"),
    "end": ("number", "video: end time in seconds"),
    "strategy": ("string", "ensemble strategy (see analysis.ensemble.STRATEGIES; default weighted)"),
    "threshold": ("number", "probability at or above which a face is FAKE (0..1; default: the models' validated "
                            "operating point, GET /v1/models `operating_point`, else 0.5)"),
    "band": ("number", "|p - threshold| below this is UNCERTAIN (0..0.5, below 0.5; default: the models' validated "
                       "operating point, else 0.1)"),
    "detectors": ("string", "comma-separated detector names (default: the loaded ones that pass the quality "
                            "gate, see GET /v1/models `votes`; a named detector is used even if it does not pass)"),
    "margin": ("number", "face crop margin, fraction of the face box (default 0.3)"),
    "min_face": ("integer", "smallest face side in pixels (default 40)"),
    "whole_image": ("boolean", "with no face found, score the whole image (default false)"),
    "format": ("string", "POST /v1/analyze only: `json` (default) or `html`, a self-contained HTML report to "
                         "share (pictures embedded, printable to PDF); a job always offers both"),
}
FORMATS = ("json", "html")


def _upload_body_doc() -> dict[str, Any]:
    props: dict[str, Any] = {"file": {"type": "string", "format": "binary",
                                      "description": "the image or video; its content is sniffed, the name ignored"}}
    props.update({name: {"type": t, "description": d} for name, (t, d) in PARAMS.items()})
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": props}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }}}


# ------------------------------------------------------------------------------------------------ parameters
def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ApiError(422, "invalid_parameter", f"{name} must be true or false, got {raw!r}")


def _number(name: str, raw: str, kind: type, lo: float | None = None, hi: float | None = None) -> Any:
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ApiError(422, "invalid_parameter",
                       f"{name} must be {'an integer' if kind is int else 'a number'}, got {raw!r}") from None
    if kind is float and not math.isfinite(value):
        raise ApiError(422, "invalid_parameter", f"{name} must be a finite number, got {raw!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"between {lo:g} and {hi:g}" if hi is not None else f"at least {lo:g}"
        raise ApiError(422, "invalid_parameter", f"{name} must be {bounds}, got {raw!r}")
    return value


def parse_format(values: dict[str, str]) -> str:
    """The `format` parameter: "json" (default) or "html"; ApiError 422 otherwise."""
    value = (values.get("format") or "json").strip().lower() or "json"
    if value not in FORMATS:
        raise ApiError(422, "invalid_parameter", f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def parse_params(values: dict[str, str], config: ApiConfig, analyzer: Any) -> tuple[Any, Any]:
    """Form fields / query parameters -> (AnalysisSettings, VideoOptions); ApiError 422 for bad values.
    `format` is read by parse_format."""
    from analysis.ensemble import STRATEGIES
    from analysis.settings import AnalysisSettings
    from detectors.registry import detector_names

    unknown = sorted(set(values) - set(PARAMS))
    if unknown:
        raise ApiError(422, "invalid_parameter",
                       f"unknown parameter(s): {', '.join(unknown)}; known: {', '.join(PARAMS)}")
    v = {k: s for k, s in values.items() if s is not None and str(s).strip() != ""}
    # threshold / band absent: None, which the analyzer fills from the models' validated operating point
    fields: dict[str, Any] = {"max_pixels": config.max_pixels}
    if "strategy" in v:
        if v["strategy"] not in STRATEGIES:
            raise ApiError(422, "invalid_parameter",
                           f"unknown strategy {v['strategy']!r}; choose one of {', '.join(sorted(STRATEGIES))}")
        fields["strategy"] = v["strategy"]
    if "threshold" in v:
        fields["threshold"] = _number("threshold", v["threshold"], float, 0.0, 1.0)
    if "band" in v:
        fields["band"] = _number("band", v["band"], float, 0.0, 0.5)
    if "margin" in v:
        fields["margin"] = _number("margin", v["margin"], float, 0.0, 2.0)
    if "min_face" in v:
        fields["min_face_size"] = _number("min_face", v["min_face"], int, 1, 10_000)
    if "whole_image" in v:
        fields["whole_image_fallback"] = _parse_bool("whole_image", v["whole_image"])
    try:
        settings = AnalysisSettings(**fields)   # the same checks as every other entry point
    except ValueError as exc:
        raise ApiError(422, "invalid_parameter", str(exc)) from None
    if "detectors" in v:
        names = [d.strip() for d in v["detectors"].split(",") if d.strip()]
        bad = [n for n in names if n not in detector_names()]
        if bad or not names:
            raise ApiError(422, "invalid_parameter", f"unknown detector(s): {', '.join(bad) or '(none given)'}; "
                                                     f"known: {', '.join(detector_names())}")
        if not any(n in analyzer.detectors for n in names):
            raise ApiError(422, "invalid_parameter", f"none of the requested detectors is loaded: "
                                                     f"{', '.join(names)}; loaded: {', '.join(analyzer.detectors)}")
        settings.detectors = names

    options = video_options_class()(max_frames=config.max_frames, keep_thumbnails=False)
    if "frames" in v:
        options.frames = _number("frames", v["frames"], int, 1, config.max_frames)
    if "every" in v:
        options.every = _number("every", v["every"], int, 1)
    if "rate" in v:
        options.rate = _number("rate", v["rate"], float, 1e-6)
    if "start" in v:
        options.start = _number("start", v["start"], float, 0.0)
    if "end" in v:
        options.end = _number("end", v["end"], float, 0.0)
    try:
        options.validate()
    except ValueError as exc:
        raise ApiError(422, "invalid_parameter", str(exc)) from None
    return settings, options


def video_options_class() -> type:
    try:
        from video.engine import VideoOptions
    except ImportError:  # the engine re-exports it; sampling is where it lives
        from video.sampling import VideoOptions
    return VideoOptions


# --------------------------------------------------------------------------------------------------- state
@dataclass
class Analysis:
    """What an analysis thread hands back: the JSON report and, when asked for, its HTML page."""
    report: dict[str, Any]
    html: str | None = None


def analyze_upload(analyzer: Any, upload: Upload, settings: Any, options: Any,
                   progress: Callable[[float, str], None] | None = None, cancel: Any = None,
                   html: bool = False) -> Analysis:
    """Blocking: the analysis thread's work. The upload is deleted when it ends, whatever happens; the HTML
    report (`html`) is rendered before that, because it embeds the picture."""
    from analysis.dispatch import analyze_path

    try:
        report = analyze_path(upload.path, analyzer, settings, options, progress=progress, cancel=cancel,
                              name=upload.filename)
        for key in ("error", "message"):  # messages name the upload as the client did, not its private copy
            value = getattr(report, key, None)
            if isinstance(value, str):
                setattr(report, key, value.replace(str(upload.path), upload.filename)
                        .replace(upload.path.name, upload.filename))
        out = json_safe(report.to_dict())
        return Analysis(out, html_page(report, upload, settings) if html and not failed(out) else None)
    finally:
        upload.discard()


def html_page(report: Any, upload: Upload, settings: Any) -> str | None:
    """The report's HTML page with the upload's picture; None (logged) if it cannot be made."""
    from analysis.html_report import ReportPictures, load_pictures, render_html_report

    try:
        try:
            pictures = load_pictures(report, upload.path, settings.max_pixels)
        except Exception:  # noqa: BLE001 - the page is still worth having without the picture
            log.warning("picture for the HTML report of %s", upload.filename, exc_info=True)
            pictures = ReportPictures()
        return render_html_report(report, pictures)
    except Exception:  # noqa: BLE001 - the JSON report stands on its own
        log.error("HTML report of %s failed", upload.filename, exc_info=True)
        return None


def html_response(page: str) -> HTMLResponse:
    from analysis.html_report import CONTENT_SECURITY_POLICY
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                                       "X-Content-Type-Options": "nosniff"})


def failed(report: dict[str, Any]) -> bool:
    """An error with nothing analysed. A video that broke halfway keeps its sound frames: that is a report."""
    return bool(report.get("error")) and not (report.get("faces") or report.get("frames"))


class ApiState:
    """Everything the routes share: config, analyzer, slots, jobs and the private upload folder."""

    def __init__(self, config: ApiConfig, analyzer: Any = None) -> None:
        self.config = config
        self.analyzer = analyzer
        self.upload_dir: Path | None = None
        self.slots: AnalysisSlots | None = None
        self.jobs = JobStore(config.max_jobs, config.job_ttl_s, config.retry_after_s)
        self.started = time.time()

    async def start(self) -> None:
        if self.config.torch_threads:
            import torch
            torch.set_num_threads(int(self.config.torch_threads))
        if self.analyzer is None:
            from analysis.analyzer import Analyzer
            self.analyzer = await run_in_threadpool(Analyzer, self.config.models_dir, self.config.detector_names)
        for name, why in getattr(self.analyzer, "load_errors", {}).items():
            log.warning("detector %s not loaded: %s", name, why)
        parent = self.config.temp_dir
        if parent:
            Path(parent).mkdir(parents=True, exist_ok=True)
        self.upload_dir = Path(tempfile.mkdtemp(prefix="deepfake-api-", dir=parent))  # mode 0700
        c = self.config
        self.slots = AnalysisSlots(c.max_concurrent, c.max_waiting, c.queue_timeout_s, c.retry_after_s)

    async def stop(self) -> None:
        self.jobs.cancel_all()
        if self.slots is not None:
            self.slots.shutdown()
        if self.upload_dir is not None:
            shutil.rmtree(self.upload_dir, ignore_errors=True)

    @property
    def ready(self) -> bool:
        return bool(getattr(self.analyzer, "detectors", None))

    def require_ready(self) -> None:
        if not self.ready:
            errors = getattr(self.analyzer, "load_errors", {}) or {}
            detail = "; ".join(f"{n}: {why}" for n, why in errors.items()) or "no models folder"
            raise ApiError(503, "not_ready", f"no detector is loaded ({detail})", {"Retry-After": "30"})

    async def receive(self, request: Request, html: bool | None = None) -> Received:
        """Upload + parameters + content checks; the upload is deleted here if anything is wrong.
        `html` None: as the `format` parameter says; True: always (jobs keep both reports)."""
        self.require_ready()
        assert self.upload_dir is not None
        upload = await receive_upload(request, self.upload_dir, self.config.max_upload_bytes)
        try:
            values = {k: v for k, v in request.query_params.items() if k != "filename"}
            values.update(upload.fields)
            settings, options = parse_params(values, self.config, self.analyzer)
            html = parse_format(values) == "html" if html is None else html
            options.keep_thumbnails = html   # the page embeds a video's key frames and face crops
            c = self.config
            facts = await run_in_threadpool(check_media, upload.path, c.max_pixels, c.max_video_seconds,
                                            c.max_video_frames)
        except BaseException:
            upload.discard()
            raise
        return Received(upload, settings, options, facts.kind, html)


@dataclass
class Received:
    """An accepted upload and what to do with it."""
    upload: Upload
    settings: Any
    options: Any
    kind: str
    html: bool


# ----------------------------------------------------------------------------------------------------- app
def _error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        return _error_response(exc.status_code, HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                               message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path"))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _error_response(422, "invalid_parameter", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error_response(500, "internal_error", "internal error; the server log has the details")


def create_app(settings: ApiConfig | None = None, analyzer: Any = None) -> FastAPI:
    """The API. `settings` None reads the environment (ApiConfig.from_env); `analyzer` None loads one from
    `settings.models_dir` at start-up (tests pass a ready one)."""
    config = settings or ApiConfig.from_env()
    state = ApiState(config, analyzer)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.start()
        try:
            yield
        finally:
            await state.stop()

    app = FastAPI(title="Deepfake detector API", version=__version__,
                  description="Is this face real? Upload an image or a video; get per-face, per-model fake "
                              "probabilities and a verdict (FAKE, REAL or UNCERTAIN). Errors are "
                              '`{"error": {"code", "message"}}`.', lifespan=lifespan)
    app.state.api = state
    _install_error_handlers(app)

    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="needed only when the server was started with an API key")

    async def require_key(key: str | None = Security(key_header)) -> None:
        expected = config.api_key
        if expected and not (key and secrets.compare_digest(key.encode(), expected.encode())):
            raise ApiError(401, "unauthorized", f"missing or wrong API key (header {API_KEY_HEADER})")

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 1)}

    @app.get("/readyz", tags=["health"], summary="Readiness: at least one detector is loaded",
             responses={503: {"description": "no detector loaded"}})
    async def readyz() -> dict[str, Any]:
        state.require_ready()
        slots = state.slots
        return {"status": "ready", "detectors": list(state.analyzer.detectors),
                "missing": dict(getattr(state.analyzer, "load_errors", {}) or {}),
                "running": slots.running if slots else 0, "waiting": slots.waiting if slots else 0}

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

    @v1.get("/models", tags=["models"], summary="The detectors: manifests, checksums, load status, "
                                                         "whether each votes by default (quality gate), and the "
                                                         "ensemble's operating point (default threshold and band)")
    async def models() -> dict[str, Any]:
        return {"models": json_safe(state.analyzer.model_info()),
                "operating_point": json_safe(state.analyzer.operating_point_info())}

    @v1.post("/analyze", tags=["analysis"], openapi_extra=_upload_body_doc(),
             summary="Analyse one image or video and return its report (same JSON as `cli.py analyze --json`, "
                     "or with format=html a self-contained HTML report)",
             description="Send multipart/form-data with the media in field `file` (parameters as more form fields "
                         "or as query parameters), or the raw bytes as the body with parameters in the query. "
                         "When every analysis slot is taken, the request waits up to the configured queue time, "
                         "then gets 429 with Retry-After.",
             responses={200: {"content": {"application/json": {}, "text/html": {}}}})
    async def analyze(request: Request) -> Any:
        got = await state.receive(request)
        assert state.slots is not None
        done = await state.slots.run(lambda: analyze_upload(state.analyzer, got.upload, got.settings, got.options,
                                                            html=got.html), not_started=got.upload.discard)
        if failed(done.report):
            raise ApiError(422, "invalid_media", done.report["error"])
        if not got.html:
            return JSONResponse(done.report)
        if done.html is None:
            raise ApiError(500, "internal_error", "the HTML report could not be made; the server log has the details")
        return html_response(done.html)

    @v1.post("/jobs", tags=["jobs"], status_code=202, openapi_extra=_upload_body_doc(),
             summary="Start an analysis job (long videos); poll GET /v1/jobs/{id}")
    async def create_job(request: Request) -> JSONResponse:
        got = await state.receive(request, html=True)
        try:
            job = state.jobs.create(got.upload.filename, got.kind)
        except BaseException:
            got.upload.discard()
            raise
        job.task = asyncio.create_task(_run_job(state, job, got.upload, got.settings, got.options))
        return JSONResponse(job.to_dict(with_report=False), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @v1.get("/jobs", tags=["jobs"], summary="Jobs held in memory (without their reports)")
    async def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_dict(with_report=False) for j in state.jobs.list()]}

    @v1.get("/jobs/{job_id}", tags=["jobs"], summary="A job's status, progress and (when done) its report")
    async def get_job(job_id: str) -> dict[str, Any]:
        return state.jobs.get(job_id).to_dict()

    @v1.get("/jobs/{job_id}/report.html", tags=["jobs"], response_class=HTMLResponse,
            summary="A finished job's report as a self-contained HTML page (pictures embedded, printable to PDF)",
            responses={404: {"description": "unknown job, or a job without a report"},
                       409: {"description": "the job has not finished"}})
    async def get_job_html(job_id: str) -> HTMLResponse:
        job = state.jobs.get(job_id)
        if not job.done:
            raise ApiError(409, "job_not_finished", f"job {job_id} is {job.status}; poll GET /v1/jobs/{job_id}")
        if job.html is None:
            raise ApiError(404, "no_report", f"job {job_id} is {job.status} without a report to show")
        return html_response(job.html)

    @v1.delete("/jobs/{job_id}", tags=["jobs"],
               summary="Cancel a queued or running job; delete a finished one")
    async def delete_job(job_id: str) -> JSONResponse:
        job = state.jobs.get(job_id)
        if job.done:
            state.jobs.remove(job_id)
            return JSONResponse({"id": job_id, "status": "deleted"})
        job.cancel_event.set()
        if job.status != RUNNING and job.task is not None:
            job.task.cancel()  # still waiting for a slot: it never starts
        else:
            job.stage = "cancelling"
        await asyncio.sleep(0)
        return JSONResponse(job.to_dict(with_report=False), status_code=202)

    app.include_router(v1)
    return app


async def _run_job(state: ApiState, job: Job, upload: Upload, settings: Any, options: Any) -> None:
    def work() -> Analysis | None:
        if job.cancel_event.is_set():
            upload.discard()
            return None
        job.status, job.started, job.stage = RUNNING, time.time(), "analysing"
        return analyze_upload(state.analyzer, upload, settings, options, progress=job.set_progress,
                              cancel=job.cancel_event, html=True)

    try:
        assert state.slots is not None
        done = await state.slots.run(work, wait=None, counted=False, not_started=upload.discard)
        if done is None or job.cancel_event.is_set():  # a cancelled video keeps what it analysed
            job.finish(CANCELLED, report=done.report if done else None, html=done.html if done else None)
        elif failed(done.report):
            job.finish(FAILED, error={"code": "invalid_media", "message": done.report["error"]})
        else:
            job.finish(DONE, done.report, html=done.html)
    except asyncio.CancelledError:
        job.finish(CANCELLED)
    except Exception as exc:  # noqa: BLE001 - a job's failure is reported in the job, never raised
        if job.cancel_event.is_set():
            job.finish(CANCELLED)
        else:
            log.error("job %s failed", job.id, exc_info=exc)
            job.finish(FAILED, error={"code": "internal_error",
                                      "message": "internal error; the server log has the details"})
