"""MLflow tracking, offline: a local SQLite store `sqlite:///<repo>/mlflow.db` with artifacts in `<repo>/mlartifacts`
unless `MLFLOW_TRACKING_URI` (or an explicit URI) says otherwise. For any local SQLite store the artifacts go to
an `mlartifacts` folder beside the database file, so a test's temporary store never writes into the repository.

`Tracker` wraps one run through `MlflowClient` (no global fluent state), so a resumed training continues the same
run and a conversion can attach its artifact to the run that trained the weights. A disabled tracker (no MLflow
wanted, or MLflow unavailable) accepts the same calls and does nothing.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPERIMENT = "deepfake-detectors"
_MAX_PARAM = 6000  # MLflow 3 limit on a param value's length (8000); leave room


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def artifact_root_for(uri: str) -> str | None:
    """Where a new experiment keeps its artifacts: beside a local SQLite file, else the server decides (None)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if str(db) not in ("", ":memory:"):
            return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def _schema_lock(uri: str) -> Iterator[None]:
    """Two runs starting together on a fresh SQLite store race to create its tables; serialise them."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri[len("sqlite:///"):]).with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class Tracker:
    def __init__(self, enabled: bool = True, tracking_uri: str | None = None,
                 experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.enabled = enabled
        self.uri = tracking_uri or default_tracking_uri()
        self.experiment = experiment
        self.run_id: str | None = None
        self.client = None
        if not enabled:
            return
        try:
            os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
            from mlflow import MlflowClient
            with _schema_lock(self.uri):
                self.client = MlflowClient(tracking_uri=self.uri)
                self.client.search_experiments(max_results=1)  # creates/migrates the SQLite schema under the lock
        except Exception as exc:  # noqa: BLE001 - tracking must never stop a training run
            log.warning("MLflow tracking disabled: %s", exc)
            self.enabled = False

    # ---- runs -------------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        root = artifact_root_for(self.uri)
        location = f"{root}/{self.experiment}" if root else None
        return self.client.create_experiment(self.experiment, artifact_location=location)

    def start(self, run_name: str | None = None, tags: Mapping[str, Any] | None = None,
              run_id: str | None = None) -> str | None:
        """A new run, or the existing `run_id` reopened (resume, conversion). Returns the run id."""
        if not self.enabled:
            return None
        try:
            if run_id:
                self.client.get_run(run_id)
                self.client.update_run(run_id, status="RUNNING")
                self.run_id = run_id
            else:
                run = self.client.create_run(self._experiment_id(), tags=dict(tags or {}), run_name=run_name)
                self.run_id = run.info.run_id
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow run not started (%s): tracking disabled for this run", exc)
            self.enabled = False
            return None
        return self.run_id

    def end(self, status: str = "FINISHED") -> None:
        self._call("set_terminated", status=status)

    # ---- logging ----------------------------------------------------------------------------
    def _call(self, method: str, *args, **kwargs) -> None:
        if not (self.enabled and self.run_id):
            return
        try:
            getattr(self.client, method)(self.run_id, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow %s failed: %s", method, exc)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not (self.enabled and self.run_id):
            return
        from mlflow.entities import Param
        items = [Param(k, str(v)[:_MAX_PARAM]) for k, v in flatten(params).items()]
        for start in range(0, len(items), 100):
            self._call("log_batch", params=items[start:start + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if not (self.enabled and self.run_id):
            return
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in flatten(metrics).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")]
        for start in range(0, len(items), 500):
            self._call("log_batch", metrics=items[start:start + 500])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in tags.items():
            self._call("set_tag", k, str(v))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._call("log_artifacts", str(path), artifact_path)
        elif path.exists():
            self._call("log_artifact", str(path), artifact_path)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        if not (self.enabled and self.run_id):
            return
        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / name
            file.write_text(json.dumps(data, indent=2, default=str))
            self.log_artifact(file)

    def run_url(self) -> str:
        return f"{self.uri} experiment={self.experiment} run={self.run_id}" if self.run_id else "(not tracked)"
