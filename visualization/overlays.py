"""Boxes, labels and heatmaps drawn on images (PIL / OpenCV), coloured by verdict."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAKE, REAL, UNCERTAIN = "FAKE", "REAL", "UNCERTAIN"

# One palette for badges, boxes and charts: red = FAKE, green = REAL, amber = UNCERTAIN, grey = not scored.
VERDICT_COLORS: dict[str | None, str] = {FAKE: "#c62828", REAL: "#2e7d32", UNCERTAIN: "#ef8f00", None: "#607d8b"}


def verdict_color(verdict: str | None) -> str:
    return VERDICT_COLORS.get(verdict, VERDICT_COLORS[None])


def _rgb_tuple(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def field_of(obj: Any, key: str, default: Any = None) -> Any:
    """Read a field from a dataclass or a dict (reports travel as both)."""
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def face_label(face: Any, index: int) -> str:
    verdict = field_of(face, "verdict")
    p = field_of(face, "probability")
    track = field_of(face, "track_id", field_of(face, "track"))
    name = f"Person {int(track) + 1}" if isinstance(track, (int, np.integer)) and track >= 0 else f"Face {index + 1}"
    if verdict is None or p is None:
        return f"{name}: not scored"
    return f"{name}: {verdict} {float(p):.0%}"


def _inside(box: Sequence[float], width: int, height: int, line: int) -> tuple[float, float, float, float]:
    """The box clipped to the image, its outline kept inside it: face boxes of tight crops reach past the border
    (MTCNN regresses them there), and an outline drawn outside the picture is invisible."""
    x1, y1, x2, y2 = (float(v) for v in box)
    right, bottom = max(0.0, width - line), max(0.0, height - line)
    x1, x2 = min(max(x1, 0.0), right), min(max(x2, 0.0), float(width - 1))
    y1, y2 = min(max(y1, 0.0), bottom), min(max(y2, 0.0), float(height - 1))
    return x1, y1, max(x1, x2), max(y1, y2)


def draw_faces(rgb: np.ndarray, faces: Sequence[Any], labels: Sequence[str] | None = None,
               show_landmarks: bool = False) -> np.ndarray:
    """A copy of `rgb` (HxWx3 uint8) with each face's box and label, coloured by the face's verdict.

    `faces` are FaceResult objects or their dicts (fields `box` [x1, y1, x2, y2], `verdict`, `probability`)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"draw_faces expects an HxWx3 RGB image, got shape {rgb.shape}")
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    h, w = rgb.shape[:2]
    line = max(2, round(max(h, w) / 250))
    font = _font(max(13, round(max(h, w) / 34)))
    for i, face in enumerate(faces):
        box = field_of(face, "box")
        if box is None or len(box) != 4:
            continue
        x1, y1, x2, y2 = _inside(box, w, h, line)
        color = _rgb_tuple(verdict_color(field_of(face, "verdict")))
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line)
        text = labels[i] if labels is not None and i < len(labels) else face_label(face, i)
        if text:
            tx1, ty1, tx2, ty2 = draw.textbbox((0, 0), text, font=font)
            tw, th = tx2 - tx1, ty2 - ty1
            pad = max(2, line)
            top = y1 - th - 2 * pad if y1 - th - 2 * pad >= 0 else min(y2, h - th - 2 * pad)
            left = min(max(0.0, x1), max(0.0, w - tw - 2 * pad))
            draw.rectangle([left, top, left + tw + 2 * pad, top + th + 2 * pad], fill=color)
            draw.text((left + pad - tx1, top + pad - ty1), text, fill=(255, 255, 255), font=font)
        landmarks = field_of(face, "landmarks")
        if show_landmarks and landmarks:
            r = max(2, line)
            for x, y in landmarks:
                draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    return np.asarray(image)


def crop_faces(rgb: np.ndarray, faces: Sequence[Any], margin: float = 0.3, size: int | None = 160) -> list[np.ndarray]:
    """The square crops the detectors saw (same geometry as analysis.faces.square_crop), resized to `size`."""
    from analysis.faces import square_crop

    crops = []
    for face in faces:
        crop = square_crop(rgb, field_of(face, "box"), margin)
        if size:
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size
                              else cv2.INTER_LINEAR)
        crops.append(crop)
    return crops


def fit_within(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longest side is at most `max_side`: (image, scale applied)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def scale_faces(faces: Sequence[Any], scale: float) -> list[dict]:
    """Face dicts with boxes and landmarks multiplied by `scale` (to draw on a downscaled picture)."""
    out = []
    for face in faces:
        d = dict(face) if isinstance(face, Mapping) else dict(vars(face))
        if d.get("box") is not None:
            d["box"] = [float(v) * scale for v in d["box"]]
        if d.get("landmarks"):
            d["landmarks"] = [[float(x) * scale, float(y) * scale] for x, y in d["landmarks"]]
        out.append(d)
    return out


def cam_overlay(rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.45, colormap: int = cv2.COLORMAP_JET) -> np.ndarray:
    """`cam` (h x w, values in [0, 1]) resized to the image and blended over it; RGB uint8 out."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    h, w = rgb.shape[:2]
    mask = cv2.resize(np.clip(np.asarray(cam, dtype=np.float32), 0, 1), (w, h), interpolation=cv2.INTER_LINEAR)
    heat = cv2.cvtColor(cv2.applyColorMap(np.uint8(np.round(255 * mask)), colormap), cv2.COLOR_BGR2RGB)
    blended = (1 - alpha) * rgb.astype(np.float32) + alpha * heat.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def colorize(values: np.ndarray, colormap: int = cv2.COLORMAP_VIRIDIS) -> np.ndarray:
    """A 2-D array in [0, 1] as an RGB uint8 picture."""
    v = np.uint8(np.round(255 * np.clip(np.nan_to_num(values.astype(np.float32)), 0, 1)))
    return cv2.cvtColor(cv2.applyColorMap(v, colormap), cv2.COLOR_BGR2RGB)
