"""analysis.quality: JPEG quality from quantisation tables, blur, face sizes and journalist-facing warnings."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from analysis.faces import Face, FaceFinder
from analysis.quality import (BLURRY, HEAVY_JPEG, SMALL_FACE_PX, VERY_BLURRY, assess_quality, assess_video_quality,
                              estimate_jpeg_quality, sharpness)


def _jpeg(rgb: np.ndarray, quality: int, **params) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, **params)
    return buf.getvalue()


def _blurred(rgb: np.ndarray, radius: float) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(radius)))


def _face(box) -> Face:
    return Face(box=tuple(float(v) for v in box), score=0.99, landmarks=None, crop=np.zeros((4, 4, 3), np.uint8))


@pytest.fixture(scope="module")
def astronaut_faces(astronaut_rgb) -> list[Face]:
    return FaceFinder().detect(astronaut_rgb)


@pytest.mark.parametrize("quality", [30, 90])
def test_jpeg_quality_estimate(astronaut_rgb, quality):
    data = _jpeg(astronaut_rgb, quality)
    assert abs(estimate_jpeg_quality(data) - quality) <= 2
    assert abs(estimate_jpeg_quality(Image.open(io.BytesIO(data))) - quality) <= 2


def test_jpeg_quality_is_monotonic_and_independent_of_subsampling(astronaut_rgb):
    estimates = [estimate_jpeg_quality(_jpeg(astronaut_rgb, q)) for q in (5, 20, 45, 50, 55, 70, 85, 95, 100)]
    assert estimates == sorted(estimates) and estimates[0] <= 7 and estimates[-1] == 100
    assert estimate_jpeg_quality(_jpeg(astronaut_rgb, 75, subsampling=0)) == 75


def test_jpeg_quality_none_for_other_formats(astronaut_rgb, tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(astronaut_rgb).save(png)
    assert estimate_jpeg_quality(png) is None
    assert estimate_jpeg_quality(b"not an image at all") is None
    assert estimate_jpeg_quality(Image.fromarray(astronaut_rgb)) is None


def test_blur_score_drops_when_blurred(astronaut_rgb, astronaut_faces):
    sharp_face = assess_quality(astronaut_rgb, astronaut_faces, None)["blur"]
    soft_face = assess_quality(_blurred(astronaut_rgb, 1.5), astronaut_faces, None)["blur"]
    very_soft = assess_quality(_blurred(astronaut_rgb, 4), astronaut_faces, None)["blur"]
    assert sharp_face > 3 * soft_face > 3 * very_soft
    whole_sharp = assess_quality(astronaut_rgb, None, None)
    whole_soft = assess_quality(_blurred(astronaut_rgb, 1.5), None, None)
    assert whole_sharp["blur_source"] == "image" and whole_sharp["blur"] > 3 * whole_soft["blur"]
    # The measure is resolution-independent enough: an upscaled copy is not judged sharper.
    upscaled = np.asarray(Image.fromarray(astronaut_rgb).resize((2048, 2048), Image.Resampling.BICUBIC))
    assert sharpness(upscaled) < 2 * sharpness(astronaut_rgb)


def test_clean_photo_has_no_warnings(astronaut_rgb, astronaut_faces):
    report = assess_quality(astronaut_rgb, astronaut_faces, 92)
    assert report["warnings"] == []
    assert (report["width"], report["height"], report["face_count"]) == (512, 512, 1)
    assert 90 < report["smallest_face_px"] == report["largest_face_px"] < 130
    assert report["blur_source"] == "faces" and len(report["face_blur"]) == 1
    assert report["jpeg_quality"] == 92


def test_each_warning(astronaut_rgb, astronaut_faces):
    heavy = assess_quality(astronaut_rgb, astronaut_faces, HEAVY_JPEG - 30)
    assert len(heavy["warnings"]) == 1 and "compressed" in heavy["warnings"][0]

    small_face = _face((100, 100, 100 + SMALL_FACE_PX - 14, 100 + SMALL_FACE_PX - 10))
    small = assess_quality(astronaut_rgb, [astronaut_faces[0], small_face], None)
    assert small["smallest_face_px"] == SMALL_FACE_PX - 10
    assert any("54 pixels" in w for w in small["warnings"])

    blurry = assess_quality(_blurred(astronaut_rgb, 5), astronaut_faces, None)
    assert any("blurry" in w for w in blurry["warnings"])

    tiny = assess_quality(astronaut_rgb[:150, :200], [], None)
    assert any("very small" in w and "200x150" in w for w in tiny["warnings"])
    assert tiny["face_count"] == 0 and tiny["smallest_face_px"] is None

    dark = assess_quality((astronaut_rgb // 10).astype(np.uint8), astronaut_faces, None)
    assert any("dark" in w for w in dark["warnings"])

    for report in (heavy, small, blurry, tiny, dark):
        assert all(isinstance(w, str) and "\n" not in w and w.endswith(".") for w in report["warnings"])


def test_small_face_warning_from_real_detection(astronaut_rgb):
    small_picture = np.asarray(Image.fromarray(astronaut_rgb).resize((256, 256), Image.Resampling.LANCZOS))
    faces = FaceFinder(min_face_size=20).detect(small_picture)
    assert len(faces) == 1 and faces[0].size < SMALL_FACE_PX
    warnings = assess_quality(small_picture, faces, None)["warnings"]
    assert any("smallest face" in w for w in warnings) and any("very small" in w for w in warnings)


def test_video_quality():
    good = assess_video_quality(1920, 1080, 30.0, 8000, [220, 240, 260])
    assert good["warnings"] == [] and good["median_face_px"] == 240
    assert good["bits_per_pixel"] == pytest.approx(8000e3 / (1920 * 1080 * 30), abs=1e-4)

    poor = assess_video_quality(320, 240, 10.0, 15, [30, 40])
    text = " ".join(poor["warnings"])
    assert len(poor["warnings"]) == 4
    assert "low resolution" in text and "frame rate" in text and "compressed" in text and "small" in text

    unknown = assess_video_quality(1280, 720, None, None, None)
    assert unknown["warnings"] == [] and unknown["bits_per_pixel"] is None and unknown["median_face_px"] is None


def test_shared_ffhq_quality(shared_data):
    from analysis.media import load_image

    paths = sorted((shared_data / "faces" / "ffhq_stylegan2" / "real").glob("*.jpg"))[:3]
    finder = FaceFinder()
    for path in paths:
        loaded = load_image(path)
        report = assess_quality(loaded.rgb, finder.detect(loaded.rgb), loaded.jpeg_quality)
        assert report["jpeg_quality"] == 90 and report["face_count"] == 1
        assert report["blur"] > 20 and not any("compressed" in w for w in report["warnings"])


def test_a_soft_face_warns_and_says_how_soft(astronaut_rgb, astronaut_faces):
    soft = assess_quality(_blurred(astronaut_rgb, 1.9), astronaut_faces, None)
    assert VERY_BLURRY <= soft["blur"] < BLURRY            # about 12: visibly soft
    assert any(w.startswith(f"The face is blurry (sharpness {soft['blur']:.0f};") for w in soft["warnings"])
    smeared = assess_quality(_blurred(astronaut_rgb, 3), astronaut_faces, None)
    assert smeared["blur"] < VERY_BLURRY and any("is very blurry" in w for w in smeared["warnings"])
    assert assess_quality(_blurred(astronaut_rgb, 1.0), astronaut_faces, None)["blur"] > BLURRY


def test_a_face_filling_a_tight_crop_is_no_larger_than_the_picture(astronaut_rgb, analyzer, tmp_path):
    """MTCNN regresses the box of a face that fills the picture past the borders: the face's size is the part of
    the box inside the picture, in the quality panel and in the report."""
    tight = np.asarray(Image.fromarray(astronaut_rgb[60:172, 168:280]).resize((224, 224), Image.Resampling.LANCZOS))
    faces = FaceFinder().detect(tight)
    assert len(faces) == 1 and faces[0].size > 224, "the box no longer reaches past the picture: pick a tighter crop"
    quality = assess_quality(tight, faces, None)
    assert quality["smallest_face_px"] <= 224 and quality["largest_face_px"] <= 224
    path = tmp_path / "tight.png"
    Image.fromarray(tight).save(path)
    report = analyzer.analyze_image(path)
    assert report.faces and all(f.size <= 224 for f in report.faces)
    assert report.quality["smallest_face_px"] <= 224
