"""Provenance (issue 13): files made here — generator text chunks, XMP / EXIF, C2PA signed with a throwaway
certificate (valid, then tampered), stripped, malformed — give the expected finding and strength through the core,
the report, the CLI, the API, the HTML report and the Image page."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.provenance import (CAMERA_ORIGIN, NEUTRAL, NO_METADATA, PRESENT, SAYS_EDITED, SAYS_GENERATED,
                                 Limits, read_provenance)
from analysis.provenance import c2pa_check
from provenance_fixtures import (SIGNER, a1111_png, broken_c2pa_store, camera_jpeg, comfy_png, digital_source_xmp,
                                 encode, itxt, noise, png_chunk, png_with, signed_c2pa, tagged_clip, tampered, text,
                                 write, xmp_exif_jpeg, xmp_packet)
from visualization.html_report import render_html_report

ROOT = Path(__file__).resolve().parent.parent
RGB = noise()
UNTRUSTED = "signature valid but signer not trusted"
MISMATCH = "content does not match the manifest"


@pytest.fixture(scope="module")
def signed() -> bytes:
    return signed_c2pa(encode(RGB, "JPEG", quality=90))


def deep_xmp(levels: int) -> bytes:
    inner = "<rdf:Description xmlns:a='urn:a'>" + "<a:x>" * levels + "deep" + "</a:x>" * levels + "</rdf:Description>"
    return xmp_packet(inner)


# (name, file bytes, source, strength, words in that finding's text)
CASES = {
    "a1111": (lambda: a1111_png(RGB), "PNG text", SAYS_GENERATED, "Stable Diffusion WebUI generation parameters: "
              "model sd_xl_base_1.0, sampler Euler a, steps 20, seed 1234"),
    "comfyui": (lambda: comfy_png(RGB), "PNG text", SAYS_GENERATED, "ComfyUI workflow (2 nodes): ckpt_name flux1-dev"),
    "xmp source type": (lambda: xmp_exif_jpeg(RGB), "XMP", SAYS_GENERATED,
                        "IPTC digital source type: AI-generated (trainedAlgorithmicMedia)"),
    "exif camera": (lambda: xmp_exif_jpeg(RGB), "EXIF", CAMERA_ORIGIN, "camera: Canon EOS 5D Mark IV"),
    "exif software": (lambda: xmp_exif_jpeg(RGB), "EXIF", SAYS_EDITED, "software: Adobe Photoshop 25.0"),
    "jpeg recompressed": (lambda: camera_jpeg(RGB), "JPEG", NEUTRAL, "quality ≈ 92, libjpeg's standard tables"),
    "stripped png": (lambda: encode(RGB, "PNG"), "file", NO_METADATA, "no metadata"),
    "stripped jpeg": (lambda: encode(RGB, "JPEG", quality=95), "file", NO_METADATA, "no metadata"),
    "stripped gif": (lambda: encode(RGB, "GIF"), "file", NO_METADATA, "no metadata"),
    "stripped bmp": (lambda: encode(RGB, "BMP"), "file", NO_METADATA, "no metadata"),
    "stripped webp": (lambda: encode(RGB, "WEBP"), "file", NO_METADATA, "no metadata"),
    "webp xmp": (lambda: encode(RGB, "WEBP", xmp=digital_source_xmp()), "XMP", SAYS_GENERATED,
                 "IPTC digital source type: AI-generated"),
    "huge xmp": (lambda: png_with(RGB, itxt("XML:com.adobe.xmp", xmp_packet("<!-- " + "x" * 2_000_000 + " -->"))),
                 "XMP", NEUTRAL, "over the 1,048,576-byte limit; not read"),
    "hostile xmp": (lambda: png_with(RGB, itxt("XML:com.adobe.xmp", b'<!DOCTYPE x [<!ENTITY a "aaaa">]>'
                                                + digital_source_xmp())), "XMP", NEUTRAL, "declares a DTD"),
    "deep xmp": (lambda: png_with(RGB, itxt("XML:com.adobe.xmp", deep_xmp(200))), "XMP", NEUTRAL,
                 "nested deeper than 32 levels"),
    "deep json": (lambda: png_with(RGB, text("prompt", "[" * 100_000 + "]" * 100_000)), "PNG text", NEUTRAL,
                  "JSON nested deeper than 32 levels"),
    "non-utf8 text": (lambda: png_with(RGB, itxt("parameters", b"caf\xe9 \xff\xfe")), "PNG text", NEUTRAL,
                      "not valid text in its declared encoding"),
    "non-utf8 xmp": (lambda: png_with(RGB, itxt("XML:com.adobe.xmp", b"<x:xmpmeta \xff\xfe")), "XMP", NEUTRAL,
                     "unreadable: malformed XML"),
    "broken exif": (lambda: png_with(RGB, png_chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff" + b"\x00" * 6)),
                    "EXIF", NEUTRAL, "unreadable: malformed"),
    "broken c2pa store": (lambda: broken_c2pa_store(encode(RGB, "JPEG")), "C2PA", NEUTRAL,
                          "a manifest store is present but cannot be read"),
    "truncated chunk": (lambda: encode(RGB, "PNG")[:33] + b"\x00\x01\x00\x00tEXtabc", "PNG", NEUTRAL,
                        "PNG structure is broken"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_file_gives_its_finding_and_strength(name):
    make, source, strength, words = CASES[name]
    prov = read_provenance(make(), "image")
    hits = [f for f in prov.findings if f.source == source and words in f.text]
    assert hits, [(f.source, f.strength, f.text) for f in prov.findings]
    assert hits[0].strength == strength
    assert all("\n" not in f.text and len(f.text) <= 400 for f in prov.findings)
    if strength == NO_METADATA:   # beside it at most the JPEG quality, which every JPEG has
        assert prov.findings[0] == hits[0] and prov.declares_generated is None
        assert [f.source for f in prov.findings[1:]] in ([], ["JPEG"])


def test_signed_c2pa_is_valid_but_untrusted_and_declares_generated(signed):
    prov = read_provenance(signed, "image")
    c2pa = [f for f in prov.findings if f.source == "C2PA"]
    assert len(c2pa) == 1 and c2pa[0].strength == SAYS_GENERATED
    assert c2pa[0].text.startswith("AI-generated (c2pa.created, trainedAlgorithmicMedia); signed by " + SIGNER)
    assert UNTRUSTED in c2pa[0].text and "Throwaway Image Generator 1.0" in c2pa[0].text
    assert prov.declares_generated == (f"File declares: AI-generated (C2PA, signed by {SIGNER} (Throwaway Test Org), "
                                       "signer not trusted)")
    assert prov.fields["C2PA"]["validation_state"] == "Valid" and prov.fields["C2PA"]["actions"] == ["c2pa.created"]


def test_pixels_changed_after_signing_break_the_manifest(signed):
    prov = read_provenance(tampered(signed), "image")
    broken = next(f for f in prov.findings if f.source == "C2PA" and f.strength == SAYS_EDITED)
    assert MISMATCH in broken.text and "assertion.dataHash.mismatch" in broken.text and SIGNER in broken.text
    assert UNTRUSTED not in " ".join(f.text for f in prov.findings)
    assert prov.declares_generated is None, "a broken manifest does not make the file declare anything"
    assert prov.fields["C2PA"]["validation_state"] == "Invalid"


def test_signed_png_and_a_camera_claim(signed):
    prov = read_provenance(signed_c2pa(encode(RGB, "PNG"), "image/png", source_type=(
        "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture")), "image")
    assert [(f.strength, f.text.split(";")[0]) for f in prov.findings] == [
        (CAMERA_ORIGIN, "digital capture (camera) (c2pa.created, digitalCapture)")]
    assert prov.declares_generated is None


def test_private_fields_are_present_only(tmp_path, analyzer):
    path = write(tmp_path / "camera.jpg", camera_jpeg(RGB, gps=True, serial="SN-998877"))
    report = analyzer.analyze_image(path)
    prov = report.provenance
    assert report.error is None
    assert prov.fields["EXIF"]["BodySerialNumber"] == PRESENT and prov.fields["EXIF"]["GPSLatitude"] == PRESENT
    assert prov.private["EXIF BodySerialNumber"] == "SN-998877" and "48.0" in prov.private["EXIF GPSLatitude"]
    assert {f.text for f in prov.findings} >= {f"GPS position: {PRESENT}", f"BodySerialNumber: {PRESENT}"}
    dumped = json.dumps(report.to_dict())
    assert "SN-998877" not in dumped and "48.0, 51.0" not in dumped and '"private"' not in dumped
    page = render_html_report(report)
    assert "SN-998877" not in page and "Provenance" in page and "camera: Canon EOS 5D Mark IV" in page


@pytest.mark.parametrize("name", ["huge xmp", "deep json", "broken c2pa store", "non-utf8 xmp", "broken exif",
                                  "hostile xmp", "deep xmp"])
def test_malformed_metadata_never_stops_the_pixel_analysis(name, analyzer):
    report = analyzer.analyze_image(CASES[name][0]())
    assert report.error is None and report.sha256 and "faces" in report.timings
    assert any(CASES[name][3] in f.text for f in report.provenance.findings)


def test_c2pa_time_and_size_limits(monkeypatch, signed):
    def slow(source, box):
        time.sleep(2)

    monkeypatch.setattr(c2pa_check, "LIMITS", Limits(c2pa_timeout_s=0.05))
    monkeypatch.setattr(c2pa_check, "_read_into", slow)
    started = time.perf_counter()
    prov = read_provenance(signed, "image")
    assert time.perf_counter() - started < 1.5
    assert any(f.text == "not checked: reading the manifest took over 0.05 s" for f in prov.findings)
    monkeypatch.setattr(c2pa_check, "LIMITS", Limits(max_c2pa_file_bytes=100))
    prov = read_provenance(signed, "image")
    assert any(f.source == "C2PA" and "over the 100-byte limit" in f.text for f in prov.findings)


def test_a_crashing_reader_is_one_line(monkeypatch):
    def boom(source):
        raise RuntimeError("native\nfailure")

    monkeypatch.setattr("analysis.provenance.reader.read_c2pa", boom)
    prov = read_provenance(a1111_png(RGB), "image")
    assert prov.findings[0].source == "C2PA" and prov.findings[0].text == "could not be read (RuntimeError: native failure)"
    assert any(f.strength == SAYS_GENERATED for f in prov.findings[1:])


def test_video_container_metadata(tmp_path):
    clip = tagged_clip(tmp_path / "tagged.mp4", {"comment": "Generated with Sora", "location": "+48.85+002.35/"})
    prov = read_provenance(clip, "video")
    found = {(f.strength, f.text) for f in prov.findings}
    assert (SAYS_GENERATED, "comment: Generated with Sora") in found
    assert (NEUTRAL, f"GPS position: {PRESENT}") in found
    assert any(t.startswith("encoder: Lavf") and "FFmpeg" in t for _, t in found)
    assert prov.fields["container"]["format:location"] == PRESENT and "+48.85" in prov.private["container format:location"]
    assert prov.declares_generated == "File declares: AI-generated (container, not signed)"


def test_video_report_carries_provenance(tmp_path, analyzer):
    from video.engine import analyze_video
    from video.sampling import VideoOptions

    clip = tagged_clip(tmp_path / "sora.mp4", {"comment": "Generated with Sora"}, frames=8)
    report = analyze_video(clip, analyzer, options=VideoOptions(frames=4))
    data = report.to_dict()
    assert data["provenance"]["declares_generated"] == "File declares: AI-generated (container, not signed)"
    assert "File declares: AI-generated (container, not signed)" in (report.message or "")
    assert "provenance" in report.timings and len(report.frames) == 4


# ----------------------------------------------------------------------------------------------- the CLI, the API
@pytest.fixture(scope="module")
def files(tmp_path_factory, signed) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("provenance")
    return {"signed": write(d / "signed.jpg", signed), "tampered": write(d / "tampered.jpg", tampered(signed)),
            "camera": write(d / "camera.jpg", camera_jpeg(RGB, gps=True)),
            "stripped": write(d / "stripped.png", encode(RGB, "PNG")), "a1111": write(d / "a1111.png", a1111_png(RGB))}


# file -> (strength, words) that its report must carry
EXPECTED = {"signed": (SAYS_GENERATED, UNTRUSTED), "tampered": (SAYS_EDITED, MISMATCH),
            "camera": (CAMERA_ORIGIN, "camera: Canon EOS 5D Mark IV"), "stripped": (NO_METADATA, "no metadata"),
            "a1111": (SAYS_GENERATED, "Stable Diffusion WebUI generation parameters")}


def run_cli(*args, models_dir):
    import os
    env = {**os.environ, "DEEPFAKE_MODELS_DIR": str(models_dir)}
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


def test_cli_prints_the_findings_beside_the_verdict(tiny_models_dir, files):
    r = run_cli("analyze", *files.values(), models_dir=tiny_models_dir)
    assert r.returncode == 0, r.stderr
    blocks = {Path(b.split()[0]).stem: b for b in r.stdout.split("\n/") if b.strip()}
    for name, (strength, words) in EXPECTED.items():
        block = next(b for stem, b in blocks.items() if stem.endswith(name))
        assert any(line.strip().startswith(f"[{strength}]") and words in line for line in block.splitlines()), block
    signed_block = next(b for stem, b in blocks.items() if stem.endswith("signed"))
    verdict_line = next(line for line in signed_block.splitlines() if "verdict:" in line)
    assert f"-- File declares: AI-generated (C2PA, signed by {SIGNER}" in verdict_line
    camera_block = next(b for stem, b in blocks.items() if stem.endswith("camera"))
    assert f"GPS position: {PRESENT}" in camera_block and "48.0" not in camera_block
    assert "Traceback" not in r.stderr


def test_cli_json_and_show_private(tiny_models_dir, files):
    r = run_cli("analyze", files["camera"], files["signed"], "--json", "--show-private", models_dir=tiny_models_dir)
    assert r.returncode == 0, r.stderr
    camera, signed = map(json.loads, r.stdout.strip().splitlines())
    assert camera["provenance"]["private"]["EXIF GPSLatitude"] == "(48.0, 51.0, 24.0)"
    assert camera["provenance"]["fields"]["EXIF"]["GPSLatitude"] == PRESENT
    assert signed["provenance"]["findings"][0]["strength"] == SAYS_GENERATED
    assert signed["verdict"] is None or signed["verdict"] in ("FAKE", "REAL", "UNCERTAIN")
    assert "File declares: AI-generated (C2PA" in signed["message"]


def test_api_reports_carry_provenance(analyzer, tmp_path, files):
    from test_api import make_client, upload_dir

    with make_client(analyzer, tmp_path) as c:
        for name, (strength, words) in EXPECTED.items():
            resp = c.post("/v1/analyze", files={"file": (files[name].name, files[name].read_bytes())})
            assert resp.status_code == 200, resp.text
            prov = resp.json()["provenance"]
            assert any(f["strength"] == strength and words in f["text"] for f in prov["findings"]), (name, prov)
            assert "private" not in prov
        html = c.post("/v1/analyze", files={"file": ("signed.jpg", files["signed"].read_bytes())},
                      data={"format": "html"}).text
        assert 'id="provenance"' in html and "File declares: AI-generated (C2PA" in html and UNTRUSTED in html
        assert list(upload_dir(c).iterdir()) == []


def test_image_page_shows_the_provenance_panel(tiny_models_dir, monkeypatch, files):
    from test_app import app, ok, texts

    monkeypatch.setenv("DEEPFAKE_MODELS_DIR", str(tiny_models_dir))
    at = app("pages/1_Image.py")
    at.file_uploader(key="image_uploads").upload("signed.jpg", files["signed"].read_bytes(), "image/jpeg").run()
    ok(at)
    body = texts(at)
    assert "Provenance: says generated" in body and UNTRUSTED in body
    assert f"File declares: AI-generated (C2PA, signed by {SIGNER}" in body
    at.file_uploader(key="image_uploads").upload("camera.jpg", files["camera"].read_bytes(), "image/jpeg").run()
    ok(at)
    assert "camera: Canon EOS 5D Mark IV" in texts(at) and "(48.0, 51.0, 24.0)" not in texts(at)
