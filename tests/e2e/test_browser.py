"""End to end in a real browser: the Streamlit server as a subprocess, Debian's chromium driven by Playwright.

Uploads a face photo and a short generated clip with a face, waits for the verdicts, downloads the photo's HTML
report and opens it on its own, checks the provenance panel of a photo whose XMP declares it AI-generated, scrubs the video's frame slider, opens the feature-map and model pages, analyses a clip with a sound track (the voice's verdict beside the people, its timeline under the faces' on the same time axis), and saves
a screenshot of each step in tests/e2e/screenshots/ (git-ignored) for a person to look at. Runs on the shipped
weights in converted_models/ when all five face detectors and the audio detector are there (as a user gets them),
else on tiny random models (the `tiny_models_dir` fixture and a random audio detector), whose verdicts are
meaningless.
Skips cleanly without chromium or Playwright.
"""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.audio_fixtures import add_audio_detector, speech_like, video_with_sound
from tests.provenance_fixtures import xmp_exif_jpeg
from visualization.charts import ENSEMBLE

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = Path(os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium"))

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)")]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
SLOW = 240_000   # ms: 2 shared CPU cores, torch imports and five models in one server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def face_frames(frames: int, width: int = 480, height: int = 360) -> list[np.ndarray]:
    """RGB frames: the astronaut's face (skimage) gliding over a plain gradient."""
    import cv2
    from skimage import data

    face = cv2.resize(data.astronaut()[20:220, 140:340], (150, 150), interpolation=cv2.INTER_AREA)
    out = []
    for i in range(frames):
        ramp = np.linspace(90, 200, height, dtype=np.float32)[:, None].repeat(width, axis=1)
        frame = np.repeat(ramp[:, :, None], 3, axis=2).astype(np.uint8)
        x = 60 + int(220 * i / max(1, frames - 1))
        frame[100:250, x:x + 150] = face
        out.append(frame)
    return out


def face_clip(path: Path, frames: int = 24, fps: float = 8.0, width: int = 480, height: int = 360) -> Path:
    """A short silent MP4 of face_frames."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for frame in face_frames(frames, width, height):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _models_dir(tiny_models_dir: Path, scratch: Path) -> Path:
    shipped = ROOT / "converted_models"
    names = ("xception", "efficientnet_b3", "swin", "cross_attention", "cnn_transformer", "audio_cnn")
    if all((shipped / n / "manifest.json").is_file() for n in names):
        return shipped
    from conftest import linked_models
    return add_audio_detector(linked_models(tiny_models_dir, scratch)).parent


@pytest.fixture(scope="module")
def server(tiny_models_dir, tmp_path_factory):
    pytest.importorskip("playwright.sync_api")
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    models = _models_dir(tiny_models_dir, tmp_path_factory.mktemp("e2e_models"))
    env = {**os.environ, "DEEPFAKE_MODELS_DIR": str(models), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--server.address", "127.0.0.1",
                                 "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read().strip() == b"ok":
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if os.environ.get("E2E_SHOW_LOG"):
            print(log.read_text()[-5000:])


@pytest.fixture(scope="module")
def browser_page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})   # reports open in their own tabs
        page = context.new_page()
        page.set_default_timeout(SLOW)
        try:
            yield page
        finally:
            browser.close()


def _idle(page, settle_ms: int = 800) -> None:
    """Wait until the script run triggered by the last action has finished."""
    page.wait_for_timeout(settle_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=SLOW)
    page.wait_for_timeout(300)


def _no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0, "a traceback is shown on the page"


def _shot(page, name: str) -> Path:
    """The whole page: Streamlit scrolls inside its own container, so the viewport is stretched to fit it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(...[...document.querySelectorAll(
        '[data-testid="stMain"], [data-testid="stAppViewContainer"], section.main, [data-testid="stSidebarContent"]')]
        .map(e => e.scrollHeight), document.body.scrollHeight)""")
    page.set_viewport_size({"width": size["width"], "height": min(int(height) + 40, 12000)})
    page.wait_for_timeout(700)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)
    return path


def _go(page, title: str) -> None:
    page.get_by_role("link", name=title).first.click()
    _idle(page)


def _open_report(context, report: Path, name: str) -> str:
    """An HTML report opened on its own, as a recipient would: the verdict is visible, every picture loads from
    the file itself (nothing is requested from anywhere), and it prints to PDF. Returns the verdict's headline."""
    page = context.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    try:
        page.goto(report.as_uri())
        verdict = page.locator("#verdict")
        verdict.wait_for()
        headline = page.locator("#verdict .badge").inner_text().strip()
        assert verdict.is_visible(), "the verdict is not visible"
        assert re.fullmatch(r"LIKELY FAKE|LIKELY REAL|UNCERTAIN|NOT SCORED", headline), headline
        assert all(url.startswith(("file:", "data:")) for url in fetched), f"the report fetched {fetched}"
        pictures = page.locator("img")
        assert pictures.count() >= 2, "the report's pictures are missing"
        assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"), \
            "a picture in the report does not load"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        page.emulate_media(media="print")
        page.pdf(path=str(SHOTS / f"{name}.pdf"), format="A4", print_background=True)
        assert (SHOTS / f"{name}.pdf").stat().st_size > 10_000
        return headline
    finally:
        page.close()


def test_dashboard_in_a_browser(server, browser_page, face_photo, astronaut_rgb, tmp_path):
    page = browser_page
    page.goto(server)
    page.get_by_text("How to read a result").wait_for()
    _idle(page)
    _no_exception(page)
    _shot(page, "01_home.png")

    # Image: upload the astronaut, wait for her verdict.
    _go(page, "Image check")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(face_photo))
    page.locator(".verdict-badge").first.wait_for()
    _idle(page)
    _no_exception(page)
    assert page.get_by_text("Verdict for this picture").count() >= 1, "no picture verdict"
    assert page.get_by_text("1 face found").count() >= 1, "the astronaut's face was not found"
    _shot(page, "02_image.png")

    # One click gives the report to share; it opens on its own with the same verdict.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download report (HTML)").first.click()
    report = tmp_path / download.value.suggested_filename
    download.value.save_as(str(report))
    assert report.name == "astronaut.report.html"
    shown = page.locator(".verdict-badge").first.inner_text()
    headline = _open_report(page.context, report, "02b_image_report")
    assert headline in shown.upper(), (headline, shown)

    # Provenance beside the pixels: the same face in a JPEG whose XMP declares it AI-generated.
    declared = tmp_path / "declared.jpg"
    declared.write_bytes(xmp_exif_jpeg(astronaut_rgb))
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(declared))
    page.get_by_text("Provenance: says generated").first.wait_for()
    _idle(page)
    _no_exception(page)
    assert page.get_by_text("trainedAlgorithmicMedia").count() >= 1, "the XMP finding is not shown"
    _shot(page, "02c_provenance.png")

    # Video: upload a generated clip, analyse it, scrub the frame slider.
    clip = face_clip(tmp_path / "face_clip.mp4")
    _go(page, "Video check")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(clip))
    page.get_by_text("24 frames").first.wait_for()
    _idle(page)
    page.get_by_role("button", name="Analyse video").click()
    page.get_by_text("Verdict for the video").wait_for()
    _idle(page)
    _no_exception(page)
    assert page.get_by_text("People in the video").count() >= 1, "no per-person verdicts"
    _shot(page, "03_video.png")
    assert page.get_by_text("Frame 0 at 0.00 s").count() >= 1, "the first frame is not shown"
    thumb = page.locator('[data-testid="stSlider"] input[type="range"][aria-label="Analysed frame"]')
    first_frame = page.get_by_text("Frame 0 at 0.00 s")
    for _ in range(3):   # a key pressed while the page is still re-running can be lost: press again, then judge
        thumb.focus()
        for _ in range(5):
            thumb.press("ArrowRight")
        _idle(page, 1500)
        if first_frame.count() == 0:
            break
    assert first_frame.count() == 0, "the frame view did not follow the slider"
    assert page.locator('[data-testid="stImage"]').count() >= 3, "frame pictures are missing"
    _no_exception(page)
    _shot(page, "04_video_frame.png")

    # Feature maps: the astronaut from the Image page is picked; activations and five Grad-CAM heatmaps.
    _go(page, "Feature maps")
    page.get_by_text("Grad-CAM: where each detector looked").wait_for()
    page.get_by_text("Red and yellow mark the regions").wait_for()
    _idle(page)
    _no_exception(page)
    _shot(page, "05_feature_maps.png")

    _go(page, "Models")
    page.get_by_text("detectors loaded from").wait_for()
    _no_exception(page)
    _shot(page, "06_models.png")
    assert all((SHOTS / n).stat().st_size > 10_000 for n in
               ["01_home.png", "02_image.png", "03_video.png", "04_video_frame.png", "05_feature_maps.png",
                "06_models.png"])


def test_html_reports_in_a_browser(browser_page, analyzer, face_photo, tmp_path):
    """The reports of `cli.py analyze --report` for a photo and a clip, without the dashboard (in a context of its
    own, offline, of the module's one browser: Playwright's sync API runs one instance at a time)."""
    from visualization.html_report import load_pictures, render_html_report
    from video.engine import VideoOptions, analyze_video

    photo = analyzer.analyze_image(face_photo, name='<b>astronaut</b> "1".jpg')
    clip = analyze_video(face_clip(tmp_path / "face_clip.mp4", frames=12), analyzer, options=VideoOptions(frames=6))
    reports = {"08_photo_report": render_html_report(photo, load_pictures(photo, face_photo)),
               "09_video_report": render_html_report(clip)}
    context = browser_page.context.browser.new_context(viewport={"width": 1100, "height": 900}, offline=True)
    try:
        for name, page_html in reports.items():
            path = tmp_path / f"{name}.html"
            path.write_text(page_html, encoding="utf-8")
            assert _open_report(context, path, name)
        page = context.new_page()
        page.goto((tmp_path / "08_photo_report.html").as_uri())
        assert page.locator("#file-name").inner_text() == '<b>astronaut</b> "1".jpg'   # shown, not parsed
        page.close()
    finally:
        context.close()


TIMELINES = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .filter(p => p._fullLayout && p._fullLayout.xaxis.title.text === 'time in the video (seconds)')
    .map(p => { const ax = p._fullLayout.xaxis, box = p.getBoundingClientRect();
                const px = t => box.left + ax._offset + ax.l2p(t);   // where time t is drawn on the page
                return {top: box.top, range: ax.range, x0: px(0), x5: px(5),
                        traces: p._fullData.map(t => ({name: t.name, x: [...t.x]}))}; })"""


def test_video_with_sound_in_a_browser(server, browser_page, tmp_path):
    """A clip with a voice: the voice's verdict beside the people, and its timeline drawn under the faces' on the
    same time axis (a second on one is a second on the other, at the same place on the page)."""
    page = browser_page
    frames, fps = 24, 4
    clip = video_with_sound(tmp_path / "talking.mp4", face_frames(frames), fps=fps,
                            sound=speech_like(frames / fps, seed=7))
    page.goto(server)
    page.get_by_text("How to read a result").wait_for()
    _idle(page)
    _go(page, "Video check")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(clip))
    page.get_by_text(f"{frames} frames").first.wait_for()
    _idle(page)
    page.get_by_role("button", name="Analyse video").click()
    page.get_by_text("Verdict for the video").wait_for()
    _idle(page)
    _no_exception(page)

    video_badge = page.locator(".verdict-badge", has_text="Verdict for the video").first
    voice_badge = page.locator(".verdict-badge", has_text="Voice (sound track)")
    assert voice_badge.count() == 1, "no verdict for the voice"
    assert voice_badge.get_attribute("data-verdict") in ("FAKE", "REAL", "UNCERTAIN")
    assert page.locator(".verdict-badge", has_text="Overall: faces and voice").count() == 1
    people = page.get_by_text("People in the video").first
    assert page.locator(".verdict-badge", has_text="Person 1").count() >= 1, "no per-person verdicts"
    video_box, voice_box, people_box = video_badge.bounding_box(), voice_badge.bounding_box(), people.bounding_box()
    assert abs(voice_box["x"] - video_box["x"]) < 2 and video_box["y"] < voice_box["y"] < people_box["y"], \
        "the voice's verdict is not under the video's, above the people"

    page.wait_for_function(f"() => ({TIMELINES})().length === 2", timeout=SLOW)
    faces, voice = page.evaluate(TIMELINES)
    face_lines = {t["name"] for t in faces["traces"]}
    assert ENSEMBLE in face_lines and "voice" not in face_lines, f"the upper chart is not the faces': {face_lines}"
    (voice_line,) = [t for t in voice["traces"] if t["name"] == "voice"]
    assert voice["top"] > faces["top"], "the voice's timeline is not under the faces'"
    assert faces["range"] == voice["range"] and faces["range"][0] == 0
    assert abs(faces["x0"] - voice["x0"]) < 2 and abs(faces["x5"] - voice["x5"]) < 2, \
        f"the time axes do not line up on the page: {faces} {voice}"
    speech_end = max(x for t in voice["traces"] for x in t["x"])
    assert frames / fps - 1 <= speech_end <= voice["range"][1], "the voice does not reach the end of the clip"
    assert len(voice_line["x"]) >= 2, "the voice has fewer than two windows"
    _shot(page, "07_video_sound.png")
