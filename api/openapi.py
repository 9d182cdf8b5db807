"""What the OpenAPI document (/openapi.json, /docs) says about each operation: the response bodies (the error body
`{"error": {"code", "message"}}` is one schema, `ErrorResponse`, referenced by every error response), the upload
forms with their parameters (api.params), and the API-key security scheme (only when the server has a key).

Report bodies are open objects (`additionalProperties`): a new report section is not a contract change.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from analysis.report import FAKE, REAL, UNCERTAIN

from .config import ApiConfig
from .jobs import JOB_STATUSES
from .params import ANALYZE, FILENAME, json_schema, params_for

API_KEY_HEADER = "X-API-Key"
API_KEY_SCHEME = "ApiKeyAuth"
OPEN_NOTE = "Open: never needs an API key, also when the server has one (for load balancers and probes)."

MediaKind = Literal["image", "video", "audio"]


# ------------------------------------------------------------------------------------------------ schemas
class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="stable machine-readable code, e.g. invalid_parameter, unsupported_media_type")
    message: str = Field(description="one line for people")


class ErrorResponse(BaseModel):
    """Every error: the HTTP status says the class, `error.code` the reason."""
    model_config = ConfigDict(extra="forbid")
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]
    uptime_s: float


class Ready(BaseModel):
    status: Literal["ready"]
    detectors: list[str] = Field(description="the loaded detectors")
    missing: dict[str, str] = Field(description="detector -> why it is not loaded")
    running: int = Field(ge=0, description="analyses running now")
    waiting: int = Field(ge=0, description="requests waiting for an analysis slot")


class Report(BaseModel):
    """The report of `cli.py analyze --json` (an image's, a video's or an audio file's). Only its stable core is described;
    other sections are present as documented in the README and may be added without notice."""
    model_config = ConfigDict(extra="allow")
    kind: MediaKind
    path: str = Field(description="the upload's file name as the client sent it (`upload` when none)")
    verdict: Literal[FAKE, REAL, UNCERTAIN] | None = None  # type: ignore[valid-type]
    probability: float | None = Field(None, ge=0, le=1, description="of the most suspicious face (audio: of the "
                                                                    "voice)")
    error: str | None = None
    message: str | None = None
    settings: dict[str, Any] = Field(description="the settings used, threshold and band resolved")
    created: str = Field(description="when the analysis started (UTC, ISO 8601)")
    version: str = Field(description="of the app that made the report")


class ModelsResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    models: list[dict[str, Any]] = Field(description="per registered detector: manifest, checksum, load status, "
                                                     "`votes` (in the default ensemble), `gate_reason`")
    operating_point: dict[str, Any] = Field(description="the default threshold and band and where they come from")
    audio_models: list[dict[str, Any]] = Field(description="the audio detectors (the voice), apart from the face "
                                                           "detectors: load status, metrics, quality `gate`")


class Job(BaseModel):
    id: str
    status: Literal[JOB_STATUSES]  # type: ignore[valid-type]
    kind: MediaKind | None
    filename: str
    progress: float = Field(ge=0, le=1)
    stage: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: ErrorDetail | None = Field(description="why a failed job failed")
    url: str
    report_html_url: str | None
    report: Report | None = Field(None, description="GET /v1/jobs/{job_id} only: the report, once done "
                                                     "(a cancelled video keeps what it analysed)")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="without their reports")


class Deleted(BaseModel):
    id: str
    status: Literal["deleted"]


# ------------------------------------------------------------------------------------------------ responses
ERRORS: dict[int, str] = {
    400: "bad upload: not multipart/form-data with one file in field `file` nor a raw body, malformed, or empty "
         "(`bad_request`, `empty_upload`)",
    401: "missing or wrong API key in header X-API-Key (`unauthorized`)",
    404: "no such job: unknown, deleted or expired (`job_not_found`)",
    409: "the job has not finished (`job_not_finished`), or it ended without a report (`no_report`)",
    413: "over a limit: upload size, pixels or video length (`upload_too_large`, `too_many_pixels`, "
         "`video_too_long`)",
    415: "the content is not an image, a video or an audio file this service can read (`unsupported_media_type`)",
    422: "a parameter is out of range, unknown or malformed (`invalid_parameter`), or the media cannot be decoded "
         "(`invalid_media`)",
    429: "busy: every analysis slot is taken and the queue is full or the wait timed out (`busy`), or too many "
         "jobs (`too_many_jobs`); retry after `Retry-After` seconds",
    500: "internal error; the server log has the details (`internal_error`)",
    503: "no detector is loaded (`not_ready`)",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}}
_HEADERS = {429: RETRY_AFTER, 503: RETRY_AFTER}


ERROR_REF = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}


def errors(*statuses: int, html_route: bool = False) -> dict[int | str, dict[str, Any]]:
    """The `responses` entries of these error statuses, all with the one error body (JSON). FastAPI files a
    `model` under the route's media type, so an HTML route refers to the schema, which the other routes register
    (every route documents 500)."""
    body: dict[str, Any] = {"content": {"application/json": {"schema": ERROR_REF}}} if html_route else \
        {"model": ErrorResponse}
    return {s: {**body, "description": ERRORS[s], **({"headers": _HEADERS[s]} if s in _HEADERS else {})}
            for s in statuses}


def v1_errors(config: ApiConfig, *statuses: int, html_route: bool = False) -> dict[int | str, dict[str, Any]]:
    """Errors of a /v1 operation: 401 when the server has a key, and 500."""
    return errors(*sorted({*statuses, 500, *((401,) if config.api_key else ())}), html_route=html_route)


UPLOAD_ERRORS = (400, 413, 415, 422, 429, 503)
JOB_ID_ERRORS = (404, 422)


def upload_doc(config: ApiConfig, operation: str) -> dict[str, Any]:
    """`openapi_extra` of an upload operation: the query parameters and both request body forms."""
    props: dict[str, Any] = {"file": {"type": "string", "format": "binary",
                                      "description": "the image or video; its content is sniffed, the name ignored"}}
    query: list[dict[str, Any]] = []
    for param in params_for(operation):
        schema = json_schema(param, config)
        props[param.name] = schema
        query.append({"name": param.name, "in": "query", "required": False, "schema": schema,
                      "description": schema["description"]})
    query.append({"name": FILENAME, "in": "query", "required": False,
                  "schema": {"type": "string"},
                  "description": "raw body only: the file name the report shows (default `upload`)"})
    form = {"type": "object", "required": ["file"], "properties": props, "additionalProperties": False}
    return {"parameters": query, "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    }}}


UPLOAD_DESCRIPTION = (
    "Send `multipart/form-data` with the media in field `file` and parameters as more form fields or as query "
    "parameters (each parameter once, in one place), or the raw bytes as an `application/octet-stream` body with parameters in the "
    "query. The content is sniffed: bytes that are no image or video get 415, whatever the content type says.")
