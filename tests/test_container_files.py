"""The container files, read statically (no image is built here; `make image-test` builds and runs it):
Dockerfile (multi-stage, requirements before code, installs as the Makefile does, non-root, ports, HEALTHCHECK, no
build tools or pip settings in the final stage), .dockerignore, compose.yaml, the Makefile targets, and the
HEALTHCHECK script's choice of URL."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions split by FROM (each stage starts with its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for ins in instructions((ROOT / "Dockerfile").read_text()):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def test_dockerfile_is_multi_stage_with_the_requirements_layer_before_the_code(stages):
    assert len(stages) >= 3
    deps = next(s for s in stages if " AS deps" in s[0][1])
    copies = [args for word, args in deps if word == "COPY"]
    assert copies and copies[0].startswith("requirements.txt requirements-nodeps.txt"), copies
    assert not any(args.startswith(". ") for args in copies), "the deps stage must not copy the code"
    run = " ".join(args for word, args in deps if word == "RUN")
    assert "pip install --quiet -r /tmp/req/requirements.txt" in run
    assert "--no-deps -r /tmp/req/requirements-nodeps.txt" in run
    assert "PIP_CONSTRAINT=/dev/null" in run       # as the Makefile's PIP
    project = next(s for s in stages if " AS project" in s[0][1])
    assert "pip install --quiet --no-deps -e /app" in " ".join(args for _, args in project)
    for stage in (deps, project):   # a build argument reaches only the stage that declares it
        declared = {args for word, args in stage if word == "ARG"}
        assert {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"} <= declared, stage[0]
        pip_runs = [args for word, args in stage if word == "RUN" and "pip install" in args]
        assert pip_runs and all(args.startswith("--mount=type=secret,id=pip-ca") for args in pip_runs)


def test_the_final_stage_runs_as_a_user_with_ports_healthcheck_and_the_dashboard_by_default(stages):
    final = stages[-1]
    words = dict(final)   # last of each kind
    user = [args for word, args in final if word == "USER"]
    assert user and user[-1] not in {"root", "0"} and not user[-1].startswith("0:")
    exposed = " ".join(args for word, args in final if word == "EXPOSE").split()
    assert {"8501", "8000"} <= set(exposed)
    assert "healthcheck.py" in words["HEALTHCHECK"]
    assert "entrypoint.sh" in words["ENTRYPOINT"] and "tini" in words["ENTRYPOINT"]
    assert words["CMD"] == '["dashboard"]'
    copies = [args for word, args in final if word == "COPY"]
    assert any(args.startswith("--from=deps /opt/venv") for args in copies)
    assert any(args == ". /app" for args in copies)   # the code and converted_models/


def test_no_build_tools_or_pip_settings_in_the_final_stage(stages):
    final = stages[-1]
    text = " ".join(args for _, args in final)
    runtime = next(s for s in stages if " AS runtime" in s[0][1])
    installs = " ".join(args for word, args in runtime if word == "RUN")
    for tool in ("gcc", "g++", "build-essential", "python3-dev", "python3-venv", "python3-pip", "make "):
        assert tool not in installs and tool not in text, tool
    assert not [args for word, args in final if word == "ARG"]
    assert "PIP_" not in " ".join(args for word, args in final if word in {"ENV", "ARG", "LABEL"})
    assert not re.search(r"\bpip\b.*install", text)


def test_entrypoint_offers_dashboard_serve_and_scan():
    text = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "dashboard)" in text and "streamlit run /app/app.py" in text
    assert "serve|scan|analyze|models)" in text and 'exec deepfake-check "$@"' in text


def test_dockerignore_keeps_data_caches_and_runs_out_but_not_what_the_image_needs():
    lines = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")}
    for entry in (".venv", ".git", "data", "data_cache", "runs", "logs", "reports", "mlruns", "mlartifacts",
                  "mlflow.db", "tests/e2e/screenshots", "**/__pycache__", ".pytest_cache", "*.egg-info",
                  ".streamlit/secrets.toml"):
        assert entry in lines, entry
    for needed in ("converted_models", "requirements.txt", "requirements-nodeps.txt", "pyproject.toml", "README.md",
                   "app.py", "analysis", "train", ".streamlit", "docker"):
        assert needed not in lines, needed
    assert "!docker/entrypoint.sh" in lines


def test_compose_runs_dashboard_and_api_with_models_mount_and_key_from_the_environment():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["dashboard"]["command"] == ["dashboard"]
    assert services["api"]["command"] == ["serve"]
    for name in ("dashboard", "api"):
        svc = services[name]
        assert any(v.endswith(":/models:ro") for v in svc["volumes"])
        assert svc["environment"]["DEEPFAKE_MODELS_DIR"] == "/models"
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"])
    assert services["api"]["environment"]["DEEPFAKE_API_KEY"].startswith("${DEEPFAKE_API_KEY")


def test_make_image_test_is_not_part_of_make_test():
    makefile = (ROOT / "Makefile").read_text()
    targets = dict(re.findall(r"^([\w-]+):(.*)$", makefile, flags=re.M))
    assert "image" in targets and "image-test" in targets
    recipe = re.search(r"^test:.*\n((?:\t.*\n)*)", makefile, flags=re.M).group(0)
    assert "image" not in recipe


@pytest.fixture(scope="module")
def healthcheck():
    spec = importlib.util.spec_from_file_location("container_healthcheck", ROOT / "docker" / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_healthcheck_reads_what_the_container_runs(healthcheck, tmp_path, monkeypatch):
    cmdline = tmp_path / "cmdline"
    monkeypatch.delenv("STREAMLIT_SERVER_PORT", raising=False)
    monkeypatch.setenv("DEEPFAKE_API_PORT", "8123")
    monkeypatch.setenv("DEEPFAKE_API_HOST", "0.0.0.0")

    cmdline.write_bytes(b"/usr/bin/tini\0--\0/app/docker/entrypoint.sh\0serve\0--port\0" + b"9000\0")
    args = healthcheck.entry_args(str(cmdline))
    assert args == ["serve", "--port", "9000"]
    assert healthcheck.api_url(args[1:]) == "http://127.0.0.1:9000/healthz"
    assert healthcheck.api_url([]) == "http://127.0.0.1:8123/healthz"
    assert healthcheck.dashboard_url(["--server.port=8600"]) == "http://127.0.0.1:8600/_stcore/health"
    assert healthcheck.dashboard_url([]) == "http://127.0.0.1:8501/_stcore/health"

    cmdline.write_bytes(b"/usr/bin/tini\0--\0/app/docker/entrypoint.sh\0dashboard\0")
    assert healthcheck.entry_args(str(cmdline)) == ["dashboard"]
    cmdline.write_bytes(b"python\0-c\0pass\0")
    assert healthcheck.entry_args(str(cmdline)) is None
    assert healthcheck.entry_args(str(tmp_path / "missing")) is None
