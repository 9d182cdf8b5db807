"""Input quality: what in the picture (or video) limits how far a detector's verdict can be trusted.

Numbers are kept in the result for the report; `warnings` are sentences for a journalist, not an engineer.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

from .faces import Face, visible_side
from .media import estimate_jpeg_quality

__all__ = ["assess_quality", "assess_video_quality", "estimate_jpeg_quality", "face_sharpness", "sharpness"]

SMALL_FACE_PX = 64          # below this face side, detectors lose most of their evidence
SMALL_IMAGE_PX = 300        # longest image side below which the whole picture is a thumbnail
# Sharpness is the variance of the Laplacian (see sharpness): sharp face photos score 50-900; a face scoring under
# 20 looks visibly soft (a Gaussian blur of radius 1.5-2 px on a 110 px face), under 10 smeared.
BLURRY = 20.0
VERY_BLURRY = 10.0
VERY_DARK = 40.0            # mean grey level (0-255) of the faces, or the picture, below which detail is lost
HEAVY_JPEG = 60             # IJG quality below which compression wipes out fine detail
BLUR_SIDE = 256             # faces and images are measured at this size so scores compare across resolutions
LOW_VIDEO_SIDE = 360        # shorter video side (360p) below which faces are few pixels
LOW_FPS = 15.0
LOW_BITS_PER_PIXEL = 0.025  # bits per pixel per frame (H.264): 1080p30 under ~1.5 Mbit/s; DFDC clips run 0.035-0.05


def _gray(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def sharpness(rgb: np.ndarray, side: int = BLUR_SIDE) -> float:
    """Variance of the Laplacian of the grey image, downscaled so its longest side is at most `side`: lower = blurrier.

    Larger inputs are reduced first so a 4000 px face and a 300 px face are judged at a comparable scale; smaller
    ones are never upscaled (upscaling would make a small but sharp face look blurred; small faces get their own
    warning).
    """
    height, width = rgb.shape[:2]
    if min(height, width) < 3:
        return 0.0
    if max(height, width) > side:
        scale = side / max(height, width)
        size = (max(3, int(round(width * scale))), max(3, int(round(height * scale))))
        rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BILINEAR))
    g = _gray(rgb)
    laplacian = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(laplacian.var())


def _face_region(rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The face box itself, clipped to the image: the crop's margin and zero padding would fake sharp edges."""
    height, width = rgb.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    return rgb[y1:y2, x1:x2]


def face_sharpness(rgb: np.ndarray, box: Sequence[float]) -> float | None:
    """`sharpness` of the face box itself (None when the box lies outside the image)."""
    region = _face_region(rgb, box)
    return sharpness(region) if region.size else None


def assess_quality(rgb: np.ndarray, faces: list[Face] | None, jpeg_quality: int | None) -> dict[str, Any]:
    """Resolution, face sizes, blur and JPEG quality of one image, with plain-language warnings.

    `faces` None means detection was not run (blur is measured on the whole image); [] means no face was found.
    `blur` is the variance of the Laplacian (higher = sharper): of the blurriest face, or of the whole image.
    """
    height, width = rgb.shape[:2]
    warnings: list[str] = []
    sides = [visible_side(f.box, width, height) for f in faces or []]
    face_regions = [r for f in faces or [] if (r := _face_region(rgb, f.box)).size]
    face_blur = [sharpness(r) for r in face_regions]
    blur = min(face_blur) if face_blur else sharpness(rgb)
    brightness = min(float(_gray(r).mean()) for r in face_regions or [rgb])

    if max(height, width) < SMALL_IMAGE_PX:
        warnings.append(f"The picture is very small ({width}x{height} pixels): there is little detail to examine, "
                        "so any verdict is less reliable. Look for a larger original.")
    if sides and min(sides) < SMALL_FACE_PX:
        warnings.append(f"The smallest face is only {min(sides):.0f} pixels across (under {SMALL_FACE_PX}): "
                        "detectors see too little detail there, so treat its result with caution.")
    if blur < BLURRY:
        where = "A face" if face_blur and len(face_blur) > 1 else ("The face" if face_blur else "The picture")
        how = "very blurry" if blur < VERY_BLURRY else "blurry"
        warnings.append(f"{where} is {how} (sharpness {blur:.0f}; sharp faces score above 50): blur hides the "
                        "traces detectors look for, and can itself mask manipulation. Treat the result with caution.")
    if brightness < VERY_DARK:
        what = "A face is" if face_blur else "The picture is"
        warnings.append(f"{what} very dark: shadows and sensor noise hide detail, so detectors are less reliable.")
    if jpeg_quality is not None and jpeg_quality < HEAVY_JPEG:
        warnings.append(f"The picture is heavily compressed (JPEG quality about {jpeg_quality}): compression "
                        "destroys fine detail, so detectors are less reliable. Look for a less compressed original.")

    return {
        "width": int(width),
        "height": int(height),
        "megapixels": round(width * height / 1e6, 3),
        "face_count": None if faces is None else len(faces),
        "smallest_face_px": round(min(sides), 1) if sides else None,
        "largest_face_px": round(max(sides), 1) if sides else None,
        "blur": round(blur, 2),
        "blur_source": "faces" if face_blur else "image",
        "face_blur": [round(v, 2) for v in face_blur],
        "brightness": round(brightness, 1),
        "jpeg_quality": jpeg_quality,
        "warnings": warnings,
    }


def assess_video_quality(width: int, height: int, fps: float | None, bitrate_kbps: float | None,
                         face_sizes: Sequence[float] | None) -> dict[str, Any]:
    """The video counterpart: resolution, frame rate, bits per pixel and face sizes (longest box sides, px)."""
    warnings: list[str] = []
    sizes = [float(s) for s in face_sizes or [] if s and np.isfinite(s)]
    bits_per_pixel = None
    if bitrate_kbps and fps and width and height:
        bits_per_pixel = bitrate_kbps * 1000.0 / (width * height * fps)

    if min(width, height) < LOW_VIDEO_SIDE:
        warnings.append(f"The video is low resolution ({width}x{height}): faces cover few pixels, so detectors "
                        "see little detail. Look for a higher-quality copy.")
    if fps is not None and 0 < fps < LOW_FPS:
        warnings.append(f"The video has a low frame rate ({fps:.0f} frames per second): movement between frames "
                        "is harder to judge.")
    if bits_per_pixel is not None and bits_per_pixel < LOW_BITS_PER_PIXEL:
        warnings.append(f"The video is heavily compressed ({bitrate_kbps:.0f} kbit/s for its size): compression "
                        "smears fine detail, so detectors are less reliable. Look for the original upload.")
    if sizes and float(np.median(sizes)) < SMALL_FACE_PX:
        warnings.append(f"Faces are small in this video (typically {np.median(sizes):.0f} pixels across, under "
                        f"{SMALL_FACE_PX}): treat the result with caution.")

    return {
        "width": int(width),
        "height": int(height),
        "fps": None if fps is None else round(float(fps), 3),
        "bitrate_kbps": None if bitrate_kbps is None else round(float(bitrate_kbps), 1),
        "bits_per_pixel": None if bits_per_pixel is None else round(bits_per_pixel, 4),
        "smallest_face_px": round(min(sizes), 1) if sizes else None,
        "median_face_px": round(float(np.median(sizes)), 1) if sizes else None,
        "largest_face_px": round(max(sizes), 1) if sizes else None,
        "warnings": warnings,
    }
