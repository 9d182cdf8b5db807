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
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from analysis import __version__
from analysis.audio.engine import audio_models
from analysis.report import json_safe, report_failed

from fastapi import APIRouter, FastAPI, Path as PathParam, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from .config import ApiConfig
from .jobs import CANCELLED, DONE, FAILED, JOB_ID_PATTERN, RUNNING, Job, JobStore
from .limits import AnalysisSlots, ApiError, Upload, check_media, receive_upload
from .openapi import (API_KEY_HEADER, API_KEY_SCHEME, JOB_ID_ERRORS, OPEN_NOTE, UPLOAD_DESCRIPTION, UPLOAD_ERRORS,
                      Deleted, Health, Job as JobDoc, JobList, ModelsResponse, Ready, Report, errors, upload_doc,
                      v1_errors)
from .params import ANALYZE, FILENAME, JOBS, parse_params

log = logging.getLogger("api")

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 413: "upload_too_large",
              415: "unsupported_media_type", 422: "invalid_parameter", 429: "busy", 503: "not_ready"}


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
    from pipeline.dispatch import analyze_path

    try:
        report = analyze_path(upload.path, analyzer, settings, options, progress=progress, cancel=cancel,
                              name=upload.filename)
        for key in ("error", "message"):  # messages name the upload as the client did, not its private copy
            value = getattr(report, key, None)
            if isinstance(value, str):
                setattr(report, key, value.replace(str(upload.path), upload.filename)
                        .replace(upload.path.name, upload.filename))
        out = json_safe(report.to_dict())
        return Analysis(out, html_page(report, upload, settings) if html and not report_failed(out) else None)
    finally:
        upload.discard()


def html_page(report: Any, upload: Upload, settings: Any) -> str | None:
    """The report's HTML page with the upload's picture; None (logged) if it cannot be made."""
    from visualization.html_report import ReportPictures, load_pictures, render_html_report

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
    from visualization.html_report import CONTENT_SECURITY_POLICY
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY,
                                       "X-Content-Type-Options": "nosniff"})


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
            self.analyzer = await run_in_threadpool(Analyzer, self.config.models_dir, self.config.detector_names,
                                                    batch_crops=self.config.batch_crops)
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

    async def receive(self, request: Request, operation: str) -> Received:
        """Upload + parameters + content checks; the upload is deleted here if anything is wrong.
        POST /v1/analyze makes the HTML report when `format=html`; a job always makes it (jobs keep both)."""
        self.require_ready()
        assert self.upload_dir is not None
        upload = await receive_upload(request, self.upload_dir, self.config.max_upload_bytes)
        try:
            query = [(k, v) for k, v in request.query_params.multi_items() if k != FILENAME]
            names = [k for k, _ in query] + list(upload.fields)
            twice = sorted({k for k in names if names.count(k) > 1})
            if twice:
                raise ApiError(422, "invalid_parameter", f"parameter(s) given more than once: {', '.join(twice)}; "
                                                         "give each once, as a query parameter or a form field")
            values = {**dict(query), **upload.fields}
            settings, options, form = parse_params(values, self.config, self.analyzer, operation)
            html = operation == JOBS or form == "html"
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


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of the path: its routes are separate (GET and POST /v1/jobs)
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return _error_response(exc.status_code, HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}"),
                               message, headers or None)

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
                              "probabilities and a verdict (FAKE, REAL or UNCERTAIN). Uploads are multipart "
                              "(field `file`) or a raw `application/octet-stream` body; parameters as form fields "
                              "or query parameters, each once. Every error is `{\"error\": {\"code\", "
                              "\"message\"}}` (`ErrorResponse`). " + (
                                  "Every /v1 operation needs the API key in header X-API-Key; /healthz and /readyz "
                                  "are open." if config.api_key else "This server has no API key: every operation "
                                                                     "is open."), lifespan=lifespan)
    app.state.api = state
    _install_error_handlers(app)

    open_doc: dict[str, Any] = {"security": []} if config.api_key else {}   # says "no key", where there is one
    v1_dependencies = []
    if config.api_key:  # the security scheme exists only where a key is needed
        key_header = APIKeyHeader(name=API_KEY_HEADER, scheme_name=API_KEY_SCHEME, auto_error=False,
                                  description="the key the server was started with (DEEPFAKE_API_KEY); "
                                              "every /v1 operation needs it")

        async def require_key(key: str | None = Security(key_header)) -> None:
            expected = config.api_key or ""
            if not (key and secrets.compare_digest(key.encode(), expected.encode())):
                raise ApiError(401, "unauthorized", f"missing or wrong API key (header {API_KEY_HEADER})")

        v1_dependencies.append(Security(require_key))

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers", description=OPEN_NOTE,
             response_model=None, responses={200: {"model": Health}, **errors(500)}, openapi_extra=open_doc)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 1)}

    @app.get("/readyz", tags=["health"], summary="Readiness: at least one detector is loaded", description=OPEN_NOTE,
             response_model=None, responses={200: {"model": Ready}, **errors(500, 503)}, openapi_extra=open_doc)
    async def readyz() -> dict[str, Any]:
        state.require_ready()
        slots = state.slots
        return {"status": "ready", "detectors": list(state.analyzer.detectors),
                "missing": dict(getattr(state.analyzer, "load_errors", {}) or {}),
                "running": slots.running if slots else 0, "waiting": slots.waiting if slots else 0}

    v1 = APIRouter(prefix="/v1", dependencies=v1_dependencies)
    job_id_param = PathParam(pattern=JOB_ID_PATTERN, description="the `id` that POST /v1/jobs answered")

    @v1.get("/models", tags=["models"], summary="The detectors: manifests, checksums, load status, "
                                                 "whether each votes by default (quality gate), and the "
                                                 "ensemble's operating point (default threshold and band)",
            response_model=None, responses={200: {"model": ModelsResponse}, **v1_errors(config)})
    async def models() -> dict[str, Any]:
        return {"models": json_safe(state.analyzer.model_info()),
                "operating_point": json_safe(state.analyzer.operating_point_info()),
                "audio_models": json_safe(audio_models(state.analyzer.models_dir).info())}

    @v1.post("/analyze", tags=["analysis"], openapi_extra=upload_doc(config, ANALYZE),
             summary="Analyse one image or video and return its report (same JSON as `cli.py analyze --json`, "
                     "or with format=html a self-contained HTML report)",
             description=UPLOAD_DESCRIPTION + " When every analysis slot is taken, the request waits up to the "
                                              "configured queue time, then gets 429 with Retry-After.",
             response_model=None,
             responses={200: {"model": Report, "description": "the report (JSON), or its HTML page with format=html",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                        **v1_errors(config, *UPLOAD_ERRORS)})
    async def analyze(request: Request) -> Any:
        got = await state.receive(request, ANALYZE)
        assert state.slots is not None
        done = await state.slots.run(lambda: analyze_upload(state.analyzer, got.upload, got.settings, got.options,
                                                            html=got.html), not_started=got.upload.discard)
        if report_failed(done.report):
            raise ApiError(422, "invalid_media", done.report["error"])
        if not got.html:
            return JSONResponse(done.report)
        if done.html is None:
            raise ApiError(500, "internal_error", "the HTML report could not be made; the server log has the details")
        return html_response(done.html)

    @v1.post("/jobs", tags=["jobs"], status_code=202, openapi_extra=upload_doc(config, JOBS),
             summary="Start an analysis job (long videos); poll GET /v1/jobs/{job_id}",
             description=UPLOAD_DESCRIPTION + " A job keeps both reports, JSON and HTML.", response_model=None,
             responses={202: {"model": JobDoc, "description": "accepted: the job, without its report",
                              "headers": {"Location": {"description": "the job's URL", "schema": {"type": "string"}}}},
                        **v1_errors(config, *UPLOAD_ERRORS)})
    async def create_job(request: Request) -> JSONResponse:
        got = await state.receive(request, JOBS)
        try:
            job = state.jobs.create(got.upload.filename, got.kind)
        except BaseException:
            got.upload.discard()
            raise
        job.task = asyncio.create_task(_run_job(state, job, got.upload, got.settings, got.options))
        return JSONResponse(job.to_dict(with_report=False), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @v1.get("/jobs", tags=["jobs"], summary="Jobs held in memory (without their reports)", response_model=None,
            responses={200: {"model": JobList}, **v1_errors(config)})
    async def list_jobs() -> dict[str, Any]:
        return {"jobs": [j.to_dict(with_report=False) for j in state.jobs.list()]}

    @v1.get("/jobs/{job_id}", tags=["jobs"], summary="A job's status, progress and (when done) its report",
            response_model=None, responses={200: {"model": JobDoc}, **v1_errors(config, *JOB_ID_ERRORS)})
    async def get_job(job_id: str = job_id_param) -> dict[str, Any]:
        return state.jobs.get(job_id).to_dict()

    @v1.get("/jobs/{job_id}/report.html", tags=["jobs"], response_class=HTMLResponse,
            summary="A finished job's report as a self-contained HTML page (pictures embedded, printable to PDF)",
            responses={200: {"description": "the HTML page"},
                       **v1_errors(config, 409, *JOB_ID_ERRORS, html_route=True)})
    async def get_job_html(job_id: str = job_id_param) -> HTMLResponse:
        job = state.jobs.get(job_id)
        if not job.done:
            raise ApiError(409, "job_not_finished", f"job {job_id} is {job.status}; poll GET /v1/jobs/{job_id}")
        if job.html is None:
            raise ApiError(409, "no_report", f"job {job_id} is {job.status} without a report to show")
        return html_response(job.html)

    @v1.post("/jobs/{job_id}/cancel", tags=["jobs"], status_code=202,
             summary="Cancel a queued or running job; it stays, with what it analysed (a video's partial report)",
             response_model=None,
             responses={202: {"model": JobDoc, "description": "cancelling: poll GET /v1/jobs/{job_id}"},
                        200: {"model": JobDoc, "description": "the job had already finished: nothing to cancel"},
                        **v1_errors(config, *JOB_ID_ERRORS)})
    async def cancel_job(job_id: str = job_id_param) -> JSONResponse:
        job = state.jobs.get(job_id)
        if job.done:
            return JSONResponse(job.to_dict(with_report=False))
        _cancel(job)
        await asyncio.sleep(0)
        return JSONResponse(job.to_dict(with_report=False), status_code=202)

    @v1.delete("/jobs/{job_id}", tags=["jobs"], summary="Delete a job, cancelling it first if it has not finished",
               response_model=None,
               responses={200: {"model": Deleted, "description": "deleted: GET /v1/jobs/{job_id} answers 404"},
                          **v1_errors(config, *JOB_ID_ERRORS)})
    async def delete_job(job_id: str = job_id_param) -> JSONResponse:
        job = state.jobs.get(job_id)
        if not job.done:
            _cancel(job)   # its analysis thread still deletes the upload when it stops
        state.jobs.remove(job_id)
        return JSONResponse({"id": job_id, "status": "deleted"})

    app.include_router(v1)
    return app


def _cancel(job: Job) -> None:
    job.cancel_event.set()
    if job.status != RUNNING and job.task is not None:
        job.task.cancel()  # still waiting for a slot: it never starts
    else:
        job.stage = "cancelling"


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
        elif report_failed(done.report):
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
