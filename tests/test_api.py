"""The HTTP API: every endpoint, limits, bad uploads, jobs, temp files, concurrency through a real server.

In-process tests use FastAPI's TestClient; the concurrency tests run uvicorn in a thread on 127.0.0.1 and a
free port. A `GatedAnalyzer` wraps the tiny-model analyzer so a test can hold an analysis open and count how
many run at once: deterministic, no sleeps to "make it slow".
"""
from __future__ import annotations

import io
import json
import os
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.config import ApiConfig
from api.jobs import DONE, JobStore

from video_fixtures import two_faces_frames, write_clip


# ------------------------------------------------------------------------------------------------ helpers
class GatedAnalyzer:
    """The real analyzer, except that analyses wait for `gate` and report how many ran at once."""

    def __init__(self, inner, gate: threading.Event | None = None, fail: Exception | None = None) -> None:
        self._inner = inner
        self.gate = gate or threading.Event()
        self.fail = fail
        self.entered = threading.Semaphore(0)
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _held(self, fn, *args, **kwargs):
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.entered.release()
        try:
            assert self.gate.wait(30), "test gate never opened"
            if self.fail is not None:
                raise self.fail
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def analyze_image(self, *args, **kwargs):
        return self._held(self._inner.analyze_image, *args, **kwargs)

    def score_crops(self, *args, **kwargs):  # the video engine's step: a video can be held mid-analysis
        return self._held(self._inner.score_crops, *args, **kwargs)


def small_face_jpeg(face_photo: Path, side: int = 256) -> bytes:
    im = Image.open(face_photo).convert("RGB").resize((side, side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def upload_dir(client_or_app) -> Path:
    app = client_or_app.app if hasattr(client_or_app, "app") else client_or_app
    return app.state.api.upload_dir


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in resp.text and "File \"" not in resp.text
    return body["error"]


def strip_volatile(report: dict) -> dict:
    out = {k: v for k, v in report.items() if k not in ("timings", "path", "created")}
    out["settings"] = {k: v for k, v in report["settings"].items()}
    return out


@pytest.fixture(scope="module")
def jpeg(face_photo) -> bytes:
    return small_face_jpeg(face_photo)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    frames, _ = two_faces_frames(12, width=320, height=240, face_side=90)
    return write_clip(tmp_path_factory.mktemp("api_clips") / "two_faces.mp4", frames, fps=12)


@pytest.fixture
def client(analyzer, tmp_path):
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads")), analyzer=analyzer)
    with TestClient(app) as c:
        yield c


def make_client(analyzer, tmp_path, **config):
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads"), **config), analyzer=analyzer)
    return TestClient(app, raise_server_exceptions=False)


# ------------------------------------------------------------------------------------------ health, models
def test_healthz_readyz_models(client, analyzer):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert sorted(ready.json()["detectors"]) == sorted(analyzer.detectors)
    models = client.get("/v1/models").json()["models"]
    assert len(models) == 5 and all(m["loaded"] for m in models)
    assert {m["name"] for m in models} == set(analyzer.detectors)
    assert all(m["manifest"]["temperature"] == 1.5 and len(m["checksum"]) == 64 for m in models)
    assert all(m["votes"] is True and m["gate_reason"] is None and m["gate_floor"] == 0.75 for m in models)
    op = client.get("/v1/models").json()["operating_point"]
    assert op["source"] == "default" and (op["threshold"], op["band"]) == (0.5, 0.1)
    assert op["reason"] == "no ensemble.json in the models folder"


def test_not_ready_without_models(tmp_path, jpeg):
    from analysis.analyzer import Analyzer

    empty = tmp_path / "no_models"
    empty.mkdir()
    app = create_app(ApiConfig(models_dir=str(empty), temp_dir=str(tmp_path / "up")))  # loads in lifespan
    with TestClient(app) as c:
        assert c.get("/healthz").status_code == 200
        assert_error(c.get("/readyz"), 503, "not_ready")
        err = assert_error(c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}), 503, "not_ready")
        assert "xception" in err["message"]
        assert isinstance(app.state.api.analyzer, Analyzer)
        assert list(upload_dir(c).iterdir()) == []


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/v1/analyze", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/models", "/healthz", "/readyz"):
        assert path in spec["paths"]
    body = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert {"file", "frames", "strategy", "threshold", "detectors"} <= set(body["properties"])


# ------------------------------------------------------------------------------------------------ analyze
def test_analyze_image_is_the_cli_report(analyzer, tiny_models_dir, face_photo, tmp_path, capsys):
    import cli

    assert cli.main(["analyze", str(face_photo), "--json", "--models-dir", str(tiny_models_dir)]) == 0
    cli_report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    with make_client(analyzer, tmp_path, max_pixels=100_000_000) as c:
        resp = c.post("/v1/analyze", files={"file": ("astronaut.jpg", face_photo.read_bytes(), "image/jpeg")})
        assert resp.status_code == 200, resp.text
        report = resp.json()
        assert report["path"] == "astronaut.jpg"
        assert strip_volatile(report) == strip_volatile(cli_report)
        assert report["verdict"] in ("FAKE", "REAL", "UNCERTAIN") and len(report["faces"]) == 1
        assert list(upload_dir(c).iterdir()) == []


def test_parameters_reach_the_analysis(client, jpeg):
    resp = client.post("/v1/analyze", files={"file": ("a.jpg", jpeg)},
                       data={"threshold": "0.3", "band": "0.05", "strategy": "mean_probability", "detectors": "xception,swin"})
    assert resp.status_code == 200, resp.text
    r = resp.json()
    assert r["settings"]["threshold"] == 0.3 and r["settings"]["strategy"] == "mean_probability"
    assert r["models_used"] == ["xception", "swin"] and set(r["faces"][0]["models"]) == {"xception", "swin"}
    # query parameters work too, and a raw body instead of multipart
    resp = client.post("/v1/analyze?threshold=0.9&filename=raw.jpg", content=jpeg,
                       headers={"content-type": "application/octet-stream"})
    assert resp.status_code == 200 and resp.json()["settings"]["threshold"] == 0.9
    assert resp.json()["path"] == "raw.jpg"


@pytest.mark.parametrize("data, fragment", [
    ({"strategy": "nope"}, "unknown strategy"),
    ({"threshold": "1.5"}, "threshold must be between 0 and 1"),
    ({"threshold": "abc"}, "threshold must be a number"),
    ({"band": "0.5"}, "band must be at least 0 and below 0.5"),
    ({"frames": "0"}, "frames must be between 1 and"),
    ({"frames": "100000"}, "frames must be between 1 and"),
    ({"detectors": "xception,bogus"}, "unknown detector"),
    ({"colour": "red"}, "unknown parameter"),
    ({"every": "2", "rate": "1"}, "not both"),
])
def test_bad_parameters(client, jpeg, data, fragment):
    err = assert_error(client.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data=data), 422,
                       "invalid_parameter")
    assert fragment in err["message"]
    assert list(upload_dir(client).iterdir()) == []


def test_analyze_video(client, clip):
    resp = client.post("/v1/analyze", files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")},
                       data={"frames": "4"})
    assert resp.status_code == 200, resp.text
    r = resp.json()
    assert r["kind"] == "video" and r["path"] == "clip.mp4" and len(r["frames"]) == 4
    assert r["options"]["frames"] == 4 and r["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
    decider = r["tracks"][r["decisive_track"]]            # who decides the video, and why, as in the CLI and UI
    assert decider["id"] == r["decisive_track"] and r["probability"] == decider["probability"]
    assert r["decision"].startswith(f"Person {r['decisive_track'] + 1} (")
    assert all({"importance", "major", "minor_reason", "votes"} <= set(t) for t in r["tracks"])
    assert list(upload_dir(client).iterdir()) == []


# ----------------------------------------------------------------------------------------- HTML report
EVIL_NAME = '<img src=x onerror=alert(1)>.jpg'


def assert_html(resp) -> str:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in resp.headers["content-security-policy"]
    page = resp.text
    assert "http://" not in page and "https://" not in page and "<script" not in page.lower()
    return page


def test_analyze_as_html(client, jpeg):
    from analysis import __version__

    page = assert_html(client.post("/v1/analyze?format=html", files={"file": (EVIL_NAME, jpeg)}))
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in page and "<img src=x" not in page
    assert page.count("data:image/jpeg;base64,") == 2          # the picture with its box, the face crop
    assert list(upload_dir(client).iterdir()) == []
    assert_html(client.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data={"format": "html"}))
    report = client.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data={"format": "json"}).json()
    assert report["version"] == __version__ and report["created"].endswith("Z")
    err = assert_error(client.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data={"format": "pdf"}), 422,
                       "invalid_parameter")
    assert "format must be one of json, html" in err["message"]
    assert list(upload_dir(client).iterdir()) == []
    assert "/v1/jobs/{job_id}/report.html" in client.get("/openapi.json").json()["paths"]


def test_job_offers_its_html_report(analyzer, tmp_path, clip):
    gated = GatedAnalyzer(analyzer)
    with make_client(gated, tmp_path) as c:
        job = c.post("/v1/jobs", files={"file": ("clip.mp4", clip.read_bytes())}, data={"frames": "4"}).json()
        assert job["report_html_url"] is None
        assert gated.entered.acquire(timeout=30)
        assert_error(c.get(f"/v1/jobs/{job['id']}/report.html"), 409, "job_not_finished")
        gated.gate.set()
        done = wait_job(c, job["id"])
        assert done["status"] == "done" and done["report_html_url"] == f"/v1/jobs/{job['id']}/report.html"
        page = assert_html(c.get(done["report_html_url"]))
        assert "Person 1" in page and done["report"]["created"] in page and "clip.mp4" in page
        assert "data:image/jpeg;base64," in page                 # key frames from the (deleted) upload
        assert_error(c.get(f"/v1/jobs/{'x' * 16}/report.html"), 404, "job_not_found")
        assert_error(c.get("/v1/jobs/nope/report.html"), 422, "invalid_parameter")   # not a job id at all
        assert list(upload_dir(c).iterdir()) == []


# ------------------------------------------------------------------------------------------- bad uploads
def test_bad_uploads(analyzer, tmp_path, jpeg, clip):
    with make_client(analyzer, tmp_path, max_upload_bytes=200_000, max_pixels=300 * 300,
                     max_video_seconds=0.5) as c:
        post = lambda name, content, **kw: c.post("/v1/analyze", files={"file": (name, content, "image/jpeg")}, **kw)
        assert_error(post("empty.jpg", b""), 400, "empty_upload")
        assert_error(post("notes.jpg", b"<html>just text pretending to be a JPEG</html>" * 20), 415,
                     "unsupported_media_type")
        fake = b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))
        err = assert_error(post("fake.jpg", fake), 422, "invalid_media")
        assert "upload-" not in err["message"]  # the private file's name never leaks
        err = assert_error(post("half.jpg", jpeg[: len(jpeg) // 2]), 422, "invalid_media")
        assert "half.jpg" in err["message"] and "truncated" in err["message"]
        assert_error(post("big.jpg", os.urandom(300_000)), 413, "upload_too_large")
        big = io.BytesIO()
        Image.new("RGB", (400, 400), (120, 90, 60)).save(big, format="PNG")
        assert "90,000" in assert_error(post("wide.png", big.getvalue()), 413, "too_many_pixels")["message"]
        assert "0.5 s" in assert_error(post("clip.mp4", clip.read_bytes()), 413, "video_too_long")["message"]
        assert_error(c.post("/v1/analyze", data={"frames": "3"}), 400, "bad_request")  # a form, no file
        assert_error(c.post("/v1/analyze", files={"frames": (None, "3")}), 400, "bad_request")  # no file part
        assert_error(c.post("/v1/analyze", files={"image": ("a.jpg", jpeg)}), 400, "bad_request")  # wrong field
        assert_error(c.post("/v1/analyze", content=b"--x\r\ngarbage", headers={
            "content-type": "multipart/form-data; boundary=x"}), 400, "bad_request")
        assert_error(c.get("/v1/analyze"), 405, "method_not_allowed")
        assert_error(c.get("/v1/nothing"), 404, "not_found")
        assert list(upload_dir(c).iterdir()) == []


def test_upload_folder_is_private_and_removed_at_shutdown(analyzer, tmp_path, jpeg):
    c = make_client(analyzer, tmp_path)
    with c:
        folder = upload_dir(c)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}).status_code == 200
    assert not folder.exists()


def test_internal_errors_are_json_without_trace(analyzer, tmp_path, jpeg):
    gated = GatedAnalyzer(analyzer, fail=RuntimeError("secret internals at /srv/model.py line 3"))
    gated.gate.set()
    with make_client(gated, tmp_path) as c:
        err = assert_error(c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}), 500, "internal_error")
        assert "secret" not in err["message"]
        assert list(upload_dir(c).iterdir()) == []


def test_api_key(analyzer, tmp_path, jpeg):
    with make_client(analyzer, tmp_path, api_key="s3cret") as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200
        assert_error(c.get("/v1/models"), 401, "unauthorized")
        assert_error(c.get("/v1/models", headers={"X-API-Key": "wrong"}), 401, "unauthorized")
        assert_error(c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}), 401, "unauthorized")
        assert c.get("/v1/models", headers={"X-API-Key": "s3cret"}).status_code == 200
        ok = c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 200
        assert list(upload_dir(c).iterdir()) == []


def test_config_from_environment(tmp_path):
    env = {"DEEPFAKE_MODELS_DIR": str(tmp_path), "DEEPFAKE_API_KEY": "k", "DEEPFAKE_API_MAX_CONCURRENT": "3",
           "DEEPFAKE_API_QUEUE_TIMEOUT_S": "2.5"}
    cfg = ApiConfig.from_env(env, port=9000)
    assert (cfg.models_dir, cfg.api_key, cfg.max_concurrent, cfg.queue_timeout_s, cfg.port) == (
        str(tmp_path), "k", 3, 2.5, 9000)
    with pytest.raises(ValueError, match="not a number"):
        ApiConfig.from_env({"DEEPFAKE_API_MAX_PIXELS": "many"})
    with pytest.raises(ValueError, match="max_concurrent"):
        ApiConfig(max_concurrent=0)


# --------------------------------------------------------------------------------------------------- jobs
def wait_job(c, job_id: str, until=("done", "failed", "cancelled"), timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def test_job_life_cycle(client, clip):
    resp = client.post("/v1/jobs", files={"file": ("clip.mp4", clip.read_bytes())}, data={"frames": "4"})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == f"/v1/jobs/{job['id']}" and job["kind"] == "video"
    assert job["status"] in ("queued", "running")
    done = wait_job(client, job["id"])
    assert done["status"] == "done" and done["progress"] == 1.0 and done["error"] is None
    assert done["report"]["kind"] == "video" and len(done["report"]["frames"]) == 4
    listed = client.get("/v1/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]] and "report" not in listed[0]
    assert client.delete(f"/v1/jobs/{job['id']}").json()["status"] == "deleted"
    assert_error(client.get(f"/v1/jobs/{job['id']}"), 404, "job_not_found")
    assert list(upload_dir(client).iterdir()) == []


def test_job_with_bad_media_fails_with_a_code(client, jpeg):
    fake = b"\xff\xd8\xff\xe0" + b"\x00\x11" * 500
    job = client.post("/v1/jobs", files={"file": ("fake.jpg", fake)}).json()
    done = wait_job(client, job["id"])
    assert done["status"] == "failed" and done["error"]["code"] == "invalid_media" and done["report"] is None


def test_cancel_queued_and_running_jobs(analyzer, tmp_path, jpeg, clip):
    gated = GatedAnalyzer(analyzer)
    with make_client(gated, tmp_path, max_concurrent=1) as c:
        running = c.post("/v1/jobs", files={"file": ("clip.mp4", clip.read_bytes())}, data={"frames": "12"}).json()
        assert gated.entered.acquire(timeout=30)  # the video job is inside the detectors, holding the slot
        queued = c.post("/v1/jobs", files={"file": ("a.jpg", jpeg)}).json()
        assert c.get(f"/v1/jobs/{queued['id']}").json()["status"] == "queued"
        assert c.post(f"/v1/jobs/{queued['id']}/cancel").status_code == 202
        assert wait_job(c, queued["id"])["status"] == "cancelled"
        assert c.get(f"/v1/jobs/{running['id']}").json()["status"] == "running"
        assert c.post(f"/v1/jobs/{running['id']}/cancel").status_code == 202
        doomed = c.post("/v1/jobs", files={"file": ("b.jpg", jpeg)}).json()   # deleting an unfinished job
        assert c.delete(f"/v1/jobs/{doomed['id']}").json() == {"id": doomed["id"], "status": "deleted"}
        assert_error(c.get(f"/v1/jobs/{doomed['id']}"), 404, "job_not_found")
        gated.gate.set()
        done = wait_job(c, running["id"])
        assert done["status"] == "cancelled"
        assert done["report"]["cancelled"] is True and len(done["report"]["frames"]) < 12
        assert c.post(f"/v1/jobs/{running['id']}/cancel").status_code == 200   # finished: nothing to cancel
        assert gated.peak == 1
        deadline = time.monotonic() + 10
        while list(upload_dir(c).iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(upload_dir(c).iterdir()) == []


def test_job_store_bounds_and_ttl():
    store = JobStore(max_jobs=2, ttl_s=10, retry_after_s=7)
    a, b = store.create("a.jpg"), store.create("b.jpg")
    from api.limits import ApiError
    with pytest.raises(ApiError) as exc:
        store.create("c.jpg")  # both still active: no room
    assert exc.value.status == 429 and exc.value.code == "too_many_jobs" and exc.value.headers["Retry-After"] == "7"
    a.finish(DONE, {"verdict": "REAL"})
    c = store.create("c.jpg")  # the finished one makes room
    assert {j.id for j in store.list()} == {b.id, c.id}
    b.finish(DONE, {})
    store.purge(now=b.finished + 11)
    assert {j.id for j in store.list()} == {c.id}


# ------------------------------------------------------------------------------------ the real server
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving the app on 127.0.0.1 in a thread."""

    def __init__(self, app) -> None:
        import uvicorn
        self.app = app
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.mark.slow
def test_concurrent_requests_through_uvicorn(analyzer, tmp_path, jpeg):
    gated = GatedAnalyzer(analyzer)
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path), max_concurrent=2, max_waiting=16,
                               queue_timeout_s=120), analyzer=gated)
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=120) as http:
        def one(i: int) -> httpx.Response:
            return http.post("/v1/analyze", files={"file": (f"{i}.jpg", jpeg, "image/jpeg")})

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(one, i) for i in range(6)]
            assert gated.entered.acquire(timeout=30) and gated.entered.acquire(timeout=30)  # two analyses run
            deadline = time.monotonic() + 30
            while app.state.api.slots.waiting < 4 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert app.state.api.slots.waiting == 4 and gated.running == 2  # the other four wait their turn
            gated.gate.set()
            responses = [f.result() for f in futures]
        assert [r.status_code for r in responses] == [200] * 6
        assert {r.json()["path"] for r in responses} == {f"{i}.jpg" for i in range(6)}
        probs = {round(r.json()["probability"], 4) for r in responses}
        assert len(probs) == 1  # the same image gives the same answer under concurrency
        assert gated.peak == 2  # never more than max_concurrent analyses at once
        assert list(upload_dir(app).iterdir()) == []


@pytest.mark.slow
def test_busy_server_answers_429_with_retry_after(analyzer, tmp_path, jpeg):
    gated = GatedAnalyzer(analyzer)
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path), max_concurrent=1, max_waiting=1,
                               queue_timeout_s=2, retry_after_s=3), analyzer=gated)
    with Server(app) as server, httpx.Client(base_url=server.url, timeout=60) as http, ThreadPoolExecutor(2) as pool:
        post = lambda name: http.post("/v1/analyze", files={"file": (name, jpeg, "image/jpeg")})
        first = pool.submit(post, "first.jpg")
        assert gated.entered.acquire(timeout=30)           # the only slot is taken
        started = time.monotonic()
        timed_out = post("waits.jpg")                      # waits the queue timeout, then 429
        assert time.monotonic() - started >= 1.9
        assert_error(timed_out, 429, "busy")
        assert timed_out.headers["retry-after"] == "3"
        waiting = pool.submit(post, "second.jpg")          # takes the one waiting place ...
        deadline = time.monotonic() + 10
        while app.state.api.slots.waiting < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = post("third.jpg")                        # ... so this one is refused at once
        assert_error(refused, 429, "busy")
        assert_error(waiting.result(), 429, "busy")
        gated.gate.set()
        assert first.result().status_code == 200
        assert post("after.jpg").status_code == 200
        assert gated.peak == 1
        assert list(upload_dir(app).iterdir()) == []


@pytest.mark.slow
def test_upload_cut_off_by_the_client_leaves_no_file(analyzer, tmp_path, jpeg):
    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path)), analyzer=analyzer)
    with Server(app) as server:
        head = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
                b"Content-Type: image/jpeg\r\n\r\n")
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         + f"Content-Length: {len(head) + 10 * len(jpeg)}\r\n\r\n".encode() + head + jpeg)
            deadline = time.monotonic() + 10
            while not list(upload_dir(app).iterdir()) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(list(upload_dir(app).iterdir())) == 1  # the partial upload is on disk ...
        deadline = time.monotonic() + 10
        while list(upload_dir(app).iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(upload_dir(app).iterdir()) == []           # ... and gone once the client hung up
        with httpx.Client(base_url=server.url, timeout=60) as http:
            assert http.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}).status_code == 200


# ------------------------------------------------------------------------------------------ operating point
def test_threshold_and_band_default_to_the_operating_point(op_models_dir, tmp_path, jpeg):
    from analysis.analyzer import Analyzer
    from conftest import OP_BAND, OP_THRESHOLD

    app = create_app(ApiConfig(models_dir="unused", temp_dir=str(tmp_path / "uploads")),
                     analyzer=Analyzer(op_models_dir))
    with TestClient(app) as c:
        op = c.get("/v1/models").json()["operating_point"]
        assert op["source"] == "validation" and (op["threshold"], op["band"]) == (OP_THRESHOLD, OP_BAND)
        assert (op["max_fpr"], op["val_fpr"], op["val_tpr"]) == (0.05, 0.04, 0.61)
        r = c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}).json()
        assert (r["settings"]["threshold"], r["settings"]["band"]) == (OP_THRESHOLD, OP_BAND)
        assert r["operating_point"]["source"] == "validation" and r["operating_point"]["explicit"] == []
        r = c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data={"threshold": "0.4", "band": "0.02"}).json()
        assert (r["settings"]["threshold"], r["settings"]["band"]) == (0.4, 0.02)
        assert r["operating_point"]["source"] == "explicit"
        r = c.post("/v1/analyze", files={"file": ("a.jpg", jpeg)}, data={"strategy": "majority"}).json()
        assert r["settings"]["threshold"] == 0.5
        assert "chosen for the weighted strategy" in r["operating_point"]["reason"]
