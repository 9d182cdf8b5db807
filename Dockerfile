# The deepfake detector as one CPU image: the dashboard (default, port 8501), the HTTP API (`serve`, port 8000) and
# the batch scanner (`scan`), with the shipped models in /app/converted_models.
#
#   docker build -t deepfake-check .            # or: podman build --format docker -t deepfake-check .
#   docker run --rm -p 127.0.0.1:8501:8501 deepfake-check                                   # the dashboard
#   docker run --rm -p 127.0.0.1:8000:8000 -e DEEPFAKE_API_KEY=... deepfake-check serve     # the HTTP API
#   docker run --rm -v "$PWD/media:/data" deepfake-check scan /data --out /data/results.jsonl
#
# Stages: `runtime` (Debian's Python 3.11, tini, the user `app`) -> `deps` (+ venv tooling; the pinned requirements
# into /opt/venv, as `make venv` installs them) -> `project` (the project installed editable into that venv, as
# `make venv` does; only the files this adds are kept) -> the final image: `runtime` + the venv + the code and models.
# Nothing of `deps` / `project` but /opt/venv reaches the final image: no compiler, no venv tooling, no pip settings.
#
# pip's registry settings are build arguments (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_TRUSTED_HOST,
# PIP_DEFAULT_TIMEOUT) and a CA bundle for pip is the build secret `pip-ca` (`--secret id=pip-ca,src=FILE`); only the
# RUN steps of `deps` and `project` use them and nothing of them is written into the final image.
# docker/image-build.sh passes this machine's. The requirements pin PyPI's torch, a CUDA build that also runs on the
# CPU; a registry that serves torch 2.14.1+cpu (given as PIP_EXTRA_INDEX_URL) makes the image ~4 GB smaller.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${BASE_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 tini \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
 && groupadd --gid 10001 app \
 && useradd --uid 10001 --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data

# ---------------------------------------------------------------------------------------------------------------
FROM runtime AS deps
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
ARG PIP_DEFAULT_TIMEOUT
# The requirements layer: only the two requirement files, so that a change of code reuses it.
COPY requirements.txt requirements-nodeps.txt /tmp/req/
# As the Makefile's $(STAMP) recipe: pip upgraded, the pins, the --no-deps pins. PIP_CONSTRAINT=/dev/null as there
# (our pins are the constraint). An empty build argument is unset, not passed to pip as an empty setting.
RUN --mount=type=secret,id=pip-ca \
    set -eu; \
    for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do \
      eval "val=\${$v:-}"; [ -n "$val" ] || unset "$v"; \
    done; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    export PIP_CONSTRAINT=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --quiet --upgrade pip; \
    /opt/venv/bin/pip install --quiet -r /tmp/req/requirements.txt; \
    /opt/venv/bin/pip install --quiet --no-deps -r /tmp/req/requirements-nodeps.txt; \
    /opt/venv/bin/python -c "import torch, torchvision, timm, facenet_pytorch, pytorch_grad_cam, streamlit, ray, mlflow"

# ---------------------------------------------------------------------------------------------------------------
FROM deps AS project
# (a build argument is declared again in each stage that uses it)
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_TRUSTED_HOST
ARG PIP_DEFAULT_TIMEOUT
COPY . /app
# `pip install --no-deps -e .` as `make venv` does (the venv points at /app, where the final image has the code);
# the files it adds to the venv (its RECORD) are copied to /delta, so that the final image takes them without a new
# copy of the whole venv.
RUN --mount=type=secret,id=pip-ca \
    set -eu; \
    for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_FIND_LINKS PIP_TRUSTED_HOST PIP_DEFAULT_TIMEOUT; do \
      eval "val=\${$v:-}"; [ -n "$val" ] || unset "$v"; \
    done; \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi; \
    export PIP_CONSTRAINT=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1; \
    /opt/venv/bin/pip install --quiet --no-deps -e /app; \
    /opt/venv/bin/python /app/docker/venv_delta.py deepfake-check /delta

# ---------------------------------------------------------------------------------------------------------------
FROM runtime
LABEL org.opencontainers.image.title="deepfake-check" \
      org.opencontainers.image.description="Is this face real? Deepfake detection: dashboard, HTTP API, batch scanner (CPU)"
COPY --from=deps /opt/venv /opt/venv
COPY --from=project /delta/ /
COPY . /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/app \
    DEEPFAKE_MODELS_DIR=/app/converted_models \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    DEEPFAKE_API_HOST=0.0.0.0 \
    DEEPFAKE_API_PORT=8000 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=1
WORKDIR /app
USER app
# As `make venv` checks it, from another folder, as the user that runs the app.
# (It leaves matplotlib's font cache in $HOME, which saves each start the time to build it.)
RUN cd / && python -c "import torch, torchvision, timm, facenet_pytorch, pytorch_grad_cam, streamlit, ray, mlflow; import cli, analysis, train.engine" \
 && test -x /opt/venv/bin/deepfake-check \
 && test -r /app/converted_models \
 && rm -rf /tmp/* /home/app/.config/mlflow
EXPOSE 8501 8000
# The dashboard's /_stcore/health or the API's /healthz, by the command the container runs; `scan` and other
# commands are healthy while they run. Model loading takes a while on a small CPU: hence the start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 \
    CMD ["/usr/bin/python3", "-I", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD ["dashboard"]
