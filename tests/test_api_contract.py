"""The HTTP API keeps the promises of its OpenAPI document (issue 16), checked by Schemathesis in-process.

Schemathesis reads /openapi.json from the ASGI app and sends generated requests to it directly (no socket, no
network), without and with an API key, on every operation, with every check except one: no server error, no
undocumented status code or content type, no response that violates its schema or its documented headers, no
schema-violating request accepted, auth enforced where declared, unsupported methods refused.

Left out: `positive_data_acceptance` ("schema-valid request rejected"). An upload's bytes cannot be described by
the schema: any bytes are a schema-valid `file`, and junk that is no image or video is rightly refused with 415;
likewise parameter combinations the schema cannot express (`every` with `rate`, `end` before `start`, detectors
that are registered but not loaded) are rightly refused with 422.

Fixed seed, few examples per operation and the tiny models of the test fixture keep it fast.
"""
from __future__ import annotations

import time
from pathlib import Path
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, events
from schemathesis.python.asgi import shutdown_lifespans

from api.app import create_app
from api.config import ApiConfig
from api.openapi import API_KEY_SCHEME

KEY = "contract-test-key"
SEED = 16
MAX_EXAMPLES = 12
EXCLUDED_CHECK = "positive_data_acceptance"


def contract_config(key: str | None) -> schemathesis.Config:
    data: dict[str, Any] = {
        "seed": SEED,
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        "checks": {EXCLUDED_CHECK: {"enabled": False}},
    }
    if key:
        data["auth"] = {"openapi": {API_KEY_SCHEME: {"api_key": key}}}
    return schemathesis.Config.from_dict(data)


@dataclass
class Run:
    """What one Schemathesis run saw: failures (one line each) and (operation, status) counts."""
    failures: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)

    @property
    def operations(self) -> set[str]:
        return {label for label, _ in self.statuses}


def run_schemathesis(schema: Any) -> Run:
    """Every phase Schemathesis runs by default (examples, coverage, fuzzing, stateful), as `schemathesis run`."""
    run = Run()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    run.statuses[(recorder.label, interaction.response.status_code)] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        run.failures.append(f"{recorder.label}: {check.name}: {failure.title}: "
                                            f"{' '.join(str(failure.message).split())[:300]}")
        elif isinstance(event, events.NonFatalError):
            run.failures.append(f"{event.label}: error: {event.value!r}")
        elif isinstance(event, events.FatalError):
            run.failures.append(f"fatal: {event.exception!r}")
    return run


@pytest.mark.parametrize("key", [None, KEY], ids=["without-key", "with-key"])
def test_api_keeps_its_openapi_contract(analyzer, tmp_path, key) -> None:
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads"), api_key=key),
                     analyzer=analyzer)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=contract_config(key))
        operations = {op.ok().label for op in schema.get_all_operations()}
        run = run_schemathesis(schema)
        assert not run.failures, "\n".join(sorted(set(run.failures)))
        assert run.operations >= operations, f"not exercised: {sorted(operations - run.operations)}"
        if key:   # the key was sent: the operations answered, not only 401
            assert run.statuses[("GET /v1/models", 200)] > 0, dict(run.statuses)
        state = app.state.api
        deadline = time.monotonic() + 30   # jobs started by the stateful phase may still be analysing
        while (not all(job.done for job in state.jobs.list()) or list(state.upload_dir.iterdir())) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(state.upload_dir.iterdir()) == [], "an upload outlived its analysis"
    finally:
        shutdown_lifespans()


def api_section() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    return readme.split("## HTTP API", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("key", [None, KEY], ids=["without-key", "with-key"])
def test_readme_and_docs_state_the_same_contract(analyzer, tmp_path, key) -> None:
    doc = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path), api_key=key), analyzer=analyzer).openapi()
    section = api_section()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            readme_path = path.replace("{job_id}", "{id}")
            assert f"{method.upper()} {readme_path}" in section or (
                f"/{method.upper()} {readme_path}" in section), f"README's API section lacks {method.upper()} {path}"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorResponse"}, (method, path, status)
                    assert status in section, f"README does not mention status {status}"
            if path.startswith("/v1"):
                for param in [p for p in op.get("parameters", []) if p["in"] == "query"]:
                    assert f"`{param['name']}" in section, f"README lacks parameter {param['name']}"
    schemes = doc.get("components", {}).get("securitySchemes")
    health = doc["paths"]["/healthz"]["get"]
    if key:
        assert schemes == {API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                            "description": schemes[API_KEY_SCHEME]["description"]}}
        assert health["security"] == [] and doc["paths"]["/v1/models"]["get"]["security"] == [{API_KEY_SCHEME: []}]
        assert "X-API-Key" in section and "ApiKeyAuth" in section
    else:
        assert schemes is None and "security" not in health
