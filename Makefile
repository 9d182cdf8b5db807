# Two commands do all the set-up on a fresh machine:
#   make run    - create/refresh .venv, install pinned requirements, start the dashboard (streamlit run app.py)
#   make test   - create/refresh .venv, install pinned requirements, run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The machine-wide pip constraints cap torchvision below the pinned release; our pins are the constraint here.
PIP := PIP_CONSTRAINT=/dev/null $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PORT ?= 8501
PYTEST_ARGS ?=

.PHONY: venv run test test-fast serve bench clean-venv image image-test

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps -r requirements-nodeps.txt
	$(PIP) install --quiet --no-deps -e .
	$(PY) -c "import torch, torchvision, timm, facenet_pytorch, pytorch_grad_cam, streamlit, ray, mlflow"
	cd / && $(CURDIR)/$(PY) -c "import cli, analysis, train.engine" && test -x $(CURDIR)/$(VENV)/bin/deepfake-check
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

serve: $(STAMP)
	$(PY) cli.py serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench.bench_models
	$(PY) -m bench.bench_video

clean-venv:
	rm -rf $(VENV)

# The container image (Dockerfile) with podman: machine set-up, a Debian base from the package mirror (mmdebstrap),
# podman build. image-test also runs it (API + dashboard), posts a face photo and checks both health endpoints;
# it takes a while and is not part of `make test`. See docker/image-build.sh and docker/image-test.sh.
image:
	bash docker/image-build.sh

image-test:
	bash docker/image-test.sh
