"""The report to share: self-contained HTML (pictures as data URIs, nothing fetched), escaped file names, the
verdict, each detector and each person; `created` and `version` in every JSON report."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import analysis
from analysis.report import HEADLINES, ImageReport, report_stamp
from analysis.settings import AnalysisSettings
from visualization.html_report import ReportPictures, load_pictures, render_html_report

from video_fixtures import two_faces_frames, write_clip

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>&.jpg'
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


class Links(HTMLParser):
    """Every URL-bearing attribute, every tag name and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            if name in ("src", "href", "srcset", "action", "poster", "data", "xlink:href"):
                self.urls.append((tag, name, value or ""))

    def handle_data(self, data):
        self.text.append(data)


def parsed(page: str) -> Links:
    links = Links()
    links.feed(page)
    return links


def assert_self_contained(page: str) -> Links:
    links = parsed(page)
    assert "script" not in links.tags and "link" not in links.tags and "iframe" not in links.tags
    assert not any(name.startswith("on") for name in links.attributes), "an event handler attribute"
    for tag, name, value in links.urls:
        assert value.startswith("data:image/"), f"<{tag} {name}> points outside the file: {value[:80]}"
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page), "CSS fetches something"
    assert not re.search(r"(src|href)\s*=\s*['\"]?\s*(https?:)?//", page, re.I)
    assert "@media print" in page
    return links


@pytest.fixture(scope="module")
def image_report(analyzer, face_photo):
    return analyzer.analyze_image(face_photo, AnalysisSettings(), name=EVIL)


def test_image_report_is_self_contained_and_escaped(image_report, face_photo):
    page = render_html_report(image_report, load_pictures(image_report, face_photo))
    links = assert_self_contained(page)
    assert "<script" not in page.lower() and "<img src=x" not in page
    assert "&lt;script&gt;alert(" in page                        # the name is shown, as text
    text = " ".join(links.text)
    assert EVIL in text                                          # ... and reads as the user named it
    assert HEADLINES[image_report.verdict] in text and f"{image_report.probability:.0%} probability of fake" in text
    for name in image_report.models_used:
        assert name in text
    images = [u for t, n, u in links.urls if t == "img"]
    assert len(images) == 2 and all(u.startswith("data:image/jpeg;base64,") for u in images)   # picture + crop
    assert image_report.sha256 in text and all(c in text for c in image_report.model_checksums.values())
    assert image_report.created in text and analysis.__version__ in text
    assert "Input quality" in text and "Operating point" in text


def test_not_voting_detectors_are_listed_with_their_reason(image_report):
    data = json.loads(json.dumps(image_report.to_dict()))
    gone = data["models_used"].pop()
    for face in data["faces"]:
        face["models"].pop(gone)
    data["models_not_voting"] = [{"name": gone, "reason": "validation AUC below 0.75 on dfdc (0.501)"}]
    text = " ".join(parsed(render_html_report(data)).text)
    assert f"not voting: validation AUC below 0.75 on dfdc (0.501)" in text and gone in text


def test_a_json_report_without_pictures_or_stamp_still_renders():
    old = {"path": "old.jpg", "kind": "image", "verdict": None, "faces": [], "error": "empty file (0 bytes)"}
    page = render_html_report(old)
    assert_self_contained(page)
    text = " ".join(parsed(page).text)
    assert "empty file (0 bytes)" in text and HEADLINES[None] in text and "app version unknown" in text


def test_heatmaps_and_a_prerendered_picture_are_embedded(image_report, astronaut_rgb):
    pictures = ReportPictures(picture=astronaut_rgb, boxed=True, crops=[astronaut_rgb[:64, :64]],
                              heatmaps={"Grad-CAM <xception>": astronaut_rgb[:100, :100]})
    page = render_html_report(image_report, pictures)
    links = assert_self_contained(page)
    assert len([u for t, n, u in links.urls if t == "img"]) == 3
    assert "Grad-CAM &lt;xception&gt;" in page


def test_video_report_names_the_decisive_person(analyzer, tmp_path):
    from video.engine import VideoOptions, analyze_video

    frames, _ = two_faces_frames(6, width=320, height=240, face_side=90)
    clip = write_clip(tmp_path / "two.mp4", frames, fps=6)
    report = analyze_video(clip, analyzer, AnalysisSettings(), VideoOptions(frames=6))
    report.path = EVIL
    page = render_html_report(report)
    links = assert_self_contained(page)
    text = " ".join(links.text)
    assert "<script" not in page.lower() and EVIL in text
    assert report.decision and report.decision in text and "decides the video" in text
    assert HEADLINES[report.verdict] in text
    for track in report.tracks:
        assert f"Person {track.id + 1}" in text
    images = [u for t, n, u in links.urls if t == "img"]
    assert len(images) >= 2 * len(report.tracks)            # each person's key frame and face crop
    assert "<svg" in page and "<polyline" in page            # the timeline, drawn inline
    assert report.created in text and analysis.__version__ in text


# ------------------------------------------------------------------------------------------- JSON stamp
def test_every_json_report_has_created_and_version(image_report):
    from scan.local import error_record
    from video.report import VideoReport

    for data in (image_report.to_dict(), ImageReport(path="x").to_dict(), VideoReport(path="v").to_dict(),
                 error_record("x.jpg", "boom"), report_stamp()):
        assert STAMP.match(data["created"]), data["created"]
        assert data["version"] == analysis.__version__
    assert json.loads(json.dumps(image_report.to_dict()))["created"] == image_report.created


def test_load_pictures_only_for_analysed_images(image_report, face_photo):
    assert load_pictures(image_report, face_photo).picture is not None
    failed = ImageReport(path="x", kind="unknown", error="not an image")
    assert load_pictures(failed, Path("/nonexistent")).picture is None
