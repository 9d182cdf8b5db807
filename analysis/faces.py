"""Face detection (facenet-pytorch MTCNN) and square face crops, in original-image pixels.

Large images are downscaled so their longest side is at most `detect_max_side` for detection only; boxes and
landmarks are mapped back and the crops are cut from the full-resolution original, so detectors see every
pixel of the face. The MTCNN networks are created once per `FaceFinder`; MTCNN keeps per-call state
(`min_face_size`) and is not thread-safe, so every call holds the finder's lock.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .settings import AnalysisSettings

MTCNN_CELL = 12                 # PNet's window: nothing smaller than this can be found at scale 1
BATCH_PIXELS = 16_000_000       # detection-size pixels per MTCNN batch (bounds the float32 pyramid memory)


@dataclass
class Face:
    box: tuple[float, float, float, float]          # x1, y1, x2, y2 in original-image pixels
    score: float                                    # MTCNN face probability
    landmarks: list[list[float]] | None             # 5 x [x, y]: eyes, nose, mouth corners; original pixels
    crop: np.ndarray                                # square RGB uint8, side = longest box side * (1 + margin)
    image_size: tuple[int, int] | None = None       # (width, height) of the image the face was found in

    @property
    def size(self) -> float:
        """The longest side of the box in original pixels (what min_face_size is compared with)."""
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])

    @property
    def visible_size(self) -> float:
        """The longest side of the part of the box inside the image (`size` when the image size is unknown): what
        reports and the quality panel call the face's size."""
        if self.image_size is None:
            return self.size
        return visible_side(self.box, *self.image_size)


def visible_side(box: Sequence[float], width: int, height: int) -> float:
    """The longest side of `box` clipped to a width x height image. MTCNN regresses boxes past the border when a
    face fills the picture (a tight 224 px crop gets a 350 px box), and such a face is no larger than the picture."""
    x1, y1 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x2, y2 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    return max(0.0, x2 - x1, y2 - y1) if x2 > x1 and y2 > y1 else 0.0


def square_crop(rgb: np.ndarray, box: Sequence[float], margin: float) -> np.ndarray:
    """The square of side max(w, h) * (1 + margin) centred on `box`, at the image's own resolution.

    Parts of the square outside the image are filled with zeros (black), so the face keeps its aspect ratio and
    stays centred even at the image border; the crop is never stretched.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, int(round(max(x2 - x1, y2 - y1) * (1.0 + margin))))
    left = int(round((x1 + x2) / 2.0 - side / 2.0))
    top = int(round((y1 + y2) / 2.0 - side / 2.0))
    height, width = rgb.shape[:2]
    channels = rgb.shape[2] if rgb.ndim == 3 else None
    out = np.zeros((side, side) if channels is None else (side, side, channels), dtype=rgb.dtype)
    src_x1, src_y1 = max(0, left), max(0, top)
    src_x2, src_y2 = min(width, left + side), min(height, top + side)
    if src_x2 > src_x1 and src_y2 > src_y1:
        out[src_y1 - top:src_y2 - top, src_x1 - left:src_x2 - left] = rgb[src_y1:src_y2, src_x1:src_x2]
    return out


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("FaceFinder expects a numpy uint8 RGB image")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"FaceFinder expects an H x W x 3 image, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _float_array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """MTCNN.detect returns object arrays (None for no face, ragged across a batch): make them plain floats."""
    if value is None:
        return np.zeros((0, *shape[1:]), dtype=np.float64)
    array = np.asarray(value, dtype=object)
    if array.size == 0 or any(v is None for v in array.ravel()):
        return np.zeros((0, *shape[1:]), dtype=np.float64)
    return array.astype(np.float64).reshape(shape)


class FaceFinder:
    """MTCNN faces, most confident first, with boxes, landmarks and crops in original-image pixels."""

    def __init__(self, margin: float = 0.3, min_face_size: int = 40, face_threshold: float = 0.9,
                 max_faces: int = 32, detect_max_side: int = 1600, device: str = "cpu") -> None:
        if min_face_size < 1 or detect_max_side < MTCNN_CELL or max_faces < 1 or margin < 0:
            raise ValueError("FaceFinder: min_face_size >= 1, detect_max_side >= 12, max_faces >= 1, margin >= 0")
        import torch
        from facenet_pytorch import MTCNN  # weights ship inside the wheel: nothing is downloaded

        self.margin = float(margin)
        self.min_face_size = int(min_face_size)
        self.face_threshold = float(face_threshold)
        self.max_faces = int(max_faces)
        self.detect_max_side = int(detect_max_side)
        self.device = str(device)
        self._mtcnn = MTCNN(keep_all=True, post_process=False, select_largest=False,
                            min_face_size=self.min_face_size, device=torch.device(self.device))
        self._mtcnn.eval()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: "AnalysisSettings", device: str = "cpu") -> "FaceFinder":
        return cls(margin=settings.margin, min_face_size=settings.min_face_size,
                   face_threshold=settings.face_threshold, max_faces=settings.max_faces,
                   detect_max_side=settings.detect_max_side, device=device)

    # ---- geometry of one detection pass --------------------------------------------------------------
    def _plan(self, height: int, width: int) -> tuple[float, float] | None:
        """(scale, MTCNN min size at that scale) or None when no face of min_face_size can fit."""
        scale = min(1.0, self.detect_max_side / max(height, width))
        # Below 12 px MTCNN would upscale the whole image: only honour that for explicitly tiny min sizes.
        minsize = max(self.min_face_size * scale, min(float(MTCNN_CELL), float(self.min_face_size)))
        if min(height, width) < MTCNN_CELL or max(height, width) < self.min_face_size:
            return None
        if min(height, width) * scale < minsize:  # MTCNN's pyramid would be empty (it then crashes)
            return None
        return scale, minsize

    @staticmethod
    def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
        if scale >= 1.0:
            return rgb
        height, width = rgb.shape[:2]
        size = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
        return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))

    def _run(self, batch: np.ndarray, minsize: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """One MTCNN call on an N x h x w x 3 batch: per image (boxes N x 4, probs N, points N x 5 x 2)."""
        with self._lock:
            self._mtcnn.min_face_size = minsize
            boxes, probs, points = self._mtcnn.detect(batch, landmarks=True)
        out = []
        for i in range(len(batch)):
            b = _float_array(boxes[i], (-1, 4))
            n = len(b)
            p = _float_array(probs[i], (n,)) if n else np.zeros(0)
            pts = _float_array(points[i], (n, 5, 2)) if n else np.zeros((0, 5, 2))
            out.append((b, p, pts))
        return out

    def _faces(self, rgb: np.ndarray, boxes: np.ndarray, probs: np.ndarray, points: np.ndarray,
               sx: float, sy: float) -> list[Face]:
        faces = []
        for box, prob, pts in zip(boxes, probs, points):
            if not np.isfinite(prob) or prob < self.face_threshold:
                continue
            x1, y1, x2, y2 = float(box[0] * sx), float(box[1] * sy), float(box[2] * sx), float(box[3] * sy)
            if max(x2 - x1, y2 - y1) < self.min_face_size:
                continue
            landmarks = [[float(x * sx), float(y * sy)] for x, y in pts] if np.isfinite(pts).all() else None
            faces.append(Face(box=(x1, y1, x2, y2), score=float(prob), landmarks=landmarks,
                              crop=square_crop(rgb, (x1, y1, x2, y2), self.margin),
                              image_size=(rgb.shape[1], rgb.shape[0])))
        faces.sort(key=lambda f: f.score, reverse=True)
        return faces[:self.max_faces]

    # ---- public API -----------------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> list[Face]:
        """Faces in one H x W x 3 uint8 RGB image, most confident first (empty for tiny or faceless images)."""
        return self.detect_many([rgb])[0]

    def detect_many(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces per frame. Frames of equal size go through MTCNN together as one batch (in chunks of at most
        BATCH_PIXELS detection pixels); frames of other sizes are batched with their own size group."""
        images = [_as_rgb(frame) for frame in frames]
        results: list[list[Face]] = [[] for _ in images]
        groups: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            groups.setdefault(image.shape[:2], []).append(index)
        for (height, width), indices in groups.items():
            plan = self._plan(height, width)
            if plan is None:
                continue
            scale, minsize = plan
            small = [self._resized(images[i], scale) for i in indices]
            det_h, det_w = small[0].shape[:2]
            sx, sy = width / det_w, height / det_h
            per_call = max(1, BATCH_PIXELS // (det_h * det_w))
            for start in range(0, len(indices), per_call):
                chunk = indices[start:start + per_call]
                detections = self._run(np.stack(small[start:start + per_call]), minsize)
                for index, (boxes, probs, points) in zip(chunk, detections):
                    results[index] = self._faces(images[index], boxes, probs, points, sx, sy)
        return results
