"""Augmentations on RGB uint8 face crops (numpy/cv2), self-blended pseudo-fakes, and fault injection.

Every transform is a small callable `t(img, rng) -> img` that keeps the shape and dtype (H x W x 3 uint8) and
draws its randomness from the numpy Generator it is given, so a seed reproduces a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


# ---------------------------------------------------------------------------------------------- photometric
@dataclass
class HorizontalFlip:
    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.ascontiguousarray(img[:, ::-1])


@dataclass
class ColorJitter:
    """Brightness, contrast and saturation factors in [1-x, 1+x]; hue shifted by up to `hue` of a turn."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = img.astype(np.float32)
        x *= 1 + _uniform(rng, (-self.brightness, self.brightness))
        mean = x.mean()
        x = mean + (x - mean) * (1 + _uniform(rng, (-self.contrast, self.contrast)))
        gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = gray[..., None] + (x - gray[..., None]) * (1 + _uniform(rng, (-self.saturation, self.saturation)))
        out = _u8(x)
        if self.hue > 0:
            hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
            shift = int(round(_uniform(rng, (-self.hue, self.hue)) * 180))
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + shift) % 180).astype(np.uint8)
            out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        return out


@dataclass
class JpegCompression:
    """Re-encode as JPEG at a random quality: what social-media uploads do to every face."""

    quality: tuple[int, int] = (30, 95)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        q = int(rng.integers(self.quality[0], self.quality[1] + 1))
        return jpeg(img, q)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@dataclass
class DownUpScale:
    """Shrink by a random factor, then back to the original size: the blur of low-resolution sources."""

    scale: tuple[float, float] = (0.35, 0.9)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        s = _uniform(rng, self.scale)
        small = cv2.resize(img, (max(2, int(round(w * s))), max(2, int(round(h * s)))), interpolation=cv2.INTER_AREA)
        method = [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST][int(rng.integers(3))]
        return cv2.resize(small, (w, h), interpolation=method)


@dataclass
class GaussianBlur:
    sigma: tuple[float, float] = (0.4, 1.8)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return cv2.GaussianBlur(img, (0, 0), sigmaX=_uniform(rng, self.sigma))


@dataclass
class GaussianNoise:
    """Additive noise, standard deviation in pixel levels (0..255)."""

    std: tuple[float, float] = (2.0, 10.0)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma = _uniform(rng, self.std)
        return _u8(img.astype(np.float32) + rng.normal(0, sigma, img.shape).astype(np.float32))


@dataclass
class Cutout:
    """One rectangle (side a random fraction of the image) filled with the image's mean colour."""

    size: tuple[float, float] = (0.1, 0.35)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        ch, cw = max(1, int(h * _uniform(rng, self.size))), max(1, int(w * _uniform(rng, self.size)))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        out = img.copy()
        out[y:y + ch, x:x + cw] = img.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
        return out


# ---------------------------------------------------------------------------------------------- composition
@dataclass
class RandomApply:
    transform: Transform
    p: float

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.transform(img, rng) if rng.random() < self.p else img


def content_box(img: np.ndarray, black: int = 0) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), bottom and right exclusive, of the rows and columns brighter than `black`:
    the picture inside the face finder's zero padding. None for an all-black image."""
    rows = np.flatnonzero(img.max(axis=(1, 2)) > black)
    cols = np.flatnonzero(img.max(axis=(0, 2)) > black)
    if rows.size == 0 or cols.size == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


@dataclass
class ContextFill:
    """A padded crop at the same scale, its black frame replaced by image context.

    Through the app's face finder a published tight crop (DFDC's) sits in a black frame; a face in a video frame has
    hair, neck and background around it at the same scale. Detectors trained on the black frame alone lose their
    DFDC cues as soon as anything else surrounds the face (measured: Xception's test AUC 0.805 -> 0.600 with the frame
    reflected, 0.636 blurred, 0.603 with a photo pasted behind it). The fill is the picture reflected outwards or its blurred
    enlargement (`mode` "either" draws one at random); `trim` px of the picture's padded edges (resampled with the
    black) go too. A crop without a frame comes back unchanged."""

    MODES = ("either", "reflect", "blur")
    mode: str = "either"
    black: int = 0
    trim: int = 2
    blur_sigma: tuple[float, float] = (4.0, 12.0)

    def __post_init__(self) -> None:
        if self.mode not in self.MODES:
            raise ValueError(f"ContextFill mode is one of {', '.join(self.MODES)}, not {self.mode!r}")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        box = content_box(img, self.black)
        if box is None or box == (0, h, 0, w):
            return img
        y0, y1, x0, x1 = box
        y0, x0 = y0 + (self.trim if y0 > 0 else 0), x0 + (self.trim if x0 > 0 else 0)
        y1, x1 = y1 - (self.trim if y1 < h else 0), x1 - (self.trim if x1 < w else 0)
        if y1 - y0 < 2 or x1 - x0 < 2:
            return img
        picture = img[y0:y1, x0:x1]
        if self.mode == "reflect" or (self.mode == "either" and rng.random() < 0.5):
            return cv2.copyMakeBorder(picture, y0, h - y1, x0, w - x1, cv2.BORDER_REFLECT_101)
        out = cv2.GaussianBlur(cv2.resize(picture, (w, h), interpolation=cv2.INTER_LINEAR), (0, 0),
                               _uniform(rng, self.blur_sigma))
        out[y0:y1, x0:x1] = picture
        return out


@dataclass
class Reframe:
    """The same face framed differently: a square re-cut around the picture's content, resized back.

    A face crop's margin depends on where the face came from. Run through the app's face finder, a published tight
    crop (DFDC's) comes out small inside a black frame, because the finder's square runs past the picture; a face
    in a video frame fills its crop and has real background around it. Detectors trained on the first kind alone
    learn the frame. The re-cut square's side is drawn between the content's bounding box (black frame gone, face
    filling the crop) shrunk to at most `min_margin_ratio` of the crop, and the whole crop (unchanged)."""

    min_margin_ratio: float = 1.0 / 1.3    # for a crop without padding: down to no margin (app margin 0.3)
    black: int = 0                          # the finder pads with zeros

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        box = content_box(img, self.black)
        if box is None:
            return img
        y0, y1, x0, x1 = box
        side_max = min(h, w)
        content = max(y1 - y0, x1 - x0)
        side_min = max(2, min(content, int(round(side_max * self.min_margin_ratio))))
        side = int(round(rng.uniform(side_min, side_max)))
        cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
        top = int(np.clip(round(cy - side / 2.0), 0, h - side))
        left = int(np.clip(round(cx - side / 2.0), 0, w - side))
        cut = img[top:top + side, left:left + side]
        return cv2.resize(cut, (w, h), interpolation=cv2.INTER_AREA if side > w else cv2.INTER_LINEAR)


@dataclass
class Compose:
    transforms: list[Transform] = field(default_factory=list)

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for t in self.transforms:
            img = t(img, rng)
        return img


def _policy(scale: float) -> Compose:
    """Probabilities scaled by `scale`; JPEG last, as the final re-upload would be."""
    def p(x: float) -> float:
        return min(1.0, x * scale)
    return Compose([
        RandomApply(HorizontalFlip(), 0.5),
        RandomApply(ColorJitter(), p(0.5)),
        RandomApply(DownUpScale(), p(0.2)),
        RandomApply(GaussianBlur(), p(0.15)),
        RandomApply(GaussianNoise(), p(0.15)),
        RandomApply(Cutout(), p(0.15)),
        RandomApply(JpegCompression(), p(0.4)),
    ])


AUGMENT_LEVELS: dict[str, Callable[[], Compose]] = {
    "none": lambda: Compose([]),
    "flip": lambda: Compose([RandomApply(HorizontalFlip(), 0.5)]),
    "light": lambda: _policy(0.5),
    "default": lambda: _policy(1.0),
    "strong": lambda: _policy(1.6),
}


def build_augmenter(level: str = "default") -> Compose:
    try:
        return AUGMENT_LEVELS[level]()
    except KeyError:
        raise ValueError(f"unknown augmentation level {level!r}; choose one of {', '.join(AUGMENT_LEVELS)}") from None


# ---------------------------------------------------------------------------------------------- self-blended images
@dataclass
class SelfBlend:
    """Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): a pseudo-fake made by blending a face with a slightly
    transformed copy of itself (colour, sharpness, scale, shift) through a soft mask. The seams and statistical
    mismatches it creates are generic traces of face swapping, learnt without any real fake.

    The mask is the convex hull of the landmarks pushed out from their centroid when landmarks are given, else an
    ellipse around the crop's centre; it is elastically deformed, eroded or dilated, blurred and scaled by a
    random blend ratio. `__call__` returns (blended image, mask in [0, 1]); outside the mask the image is unchanged.
    """

    scale: tuple[float, float] = (0.94, 1.06)
    shift: float = 0.03                        # of the crop size
    blend_ratios: Sequence[float] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
    ellipse_axes: tuple[float, float] = (0.26, 0.40)  # half-axes as fractions of the size
    hull_expand: tuple[float, float] = (1.3, 1.8)
    elastic: float = 0.04                      # displacement amplitude, fraction of the size
    blur: tuple[float, float] = (0.02, 0.06)   # Gaussian sigma of the mask edge, fraction of the size

    def __call__(self, img: np.ndarray, rng: np.random.Generator,
                 landmarks: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        h, w = img.shape[:2]
        target = self.transformed_copy(img, rng)
        mask = self.mask(h, w, rng, landmarks)
        inside = mask > 0
        out = img.copy()
        m = mask[inside][:, None]
        out[inside] = _u8(img[inside].astype(np.float32) * (1 - m) + target[inside].astype(np.float32) * m)
        return out, mask

    def transformed_copy(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = img.shape[:2]
        x = img.astype(np.float32)
        x = x * rng.uniform(0.9, 1.1, size=3).astype(np.float32) + rng.uniform(-12, 12, size=3).astype(np.float32)
        x = _u8(x)
        choice = rng.integers(3)
        if choice == 0:
            x = cv2.GaussianBlur(x, (0, 0), sigmaX=float(rng.uniform(0.5, 1.5)))
        elif choice == 1:
            blurred = cv2.GaussianBlur(x, (0, 0), sigmaX=1.0)
            x = _u8(x.astype(np.float32) * 1.6 - blurred.astype(np.float32) * 0.6)
        s = _uniform(rng, self.scale)
        dx, dy = rng.uniform(-self.shift, self.shift, size=2) * np.array([w, h])
        matrix = np.array([[s, 0, (1 - s) * w / 2 + dx], [0, s, (1 - s) * h / 2 + dy]], np.float32)
        return cv2.warpAffine(x, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def mask(self, h: int, w: int, rng: np.random.Generator, landmarks: np.ndarray | None = None) -> np.ndarray:
        size = min(h, w)
        hard = np.zeros((h, w), np.uint8)
        if landmarks is not None and len(landmarks) >= 3:
            pts = np.asarray(landmarks, np.float32)
            centre = pts.mean(axis=0)
            pts = centre + (pts - centre) * _uniform(rng, self.hull_expand)
            cv2.fillConvexPoly(hard, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
        if hard.sum() < 0.02 * h * w:  # no landmarks, or a degenerate hull: an ellipse around the centre
            hard[:] = 0
            centre = (int(round(w / 2 + rng.uniform(-0.04, 0.04) * w)), int(round(h / 2 + rng.uniform(-0.02, 0.06) * h)))
            axes = (max(2, int(_uniform(rng, self.ellipse_axes) * w)), max(2, int(_uniform(rng, self.ellipse_axes) * h * 1.15)))
            cv2.ellipse(hard, centre, axes, float(rng.uniform(-15, 15)), 0, 360, 1, -1)
        soft = hard.astype(np.float32)
        if self.elastic > 0:
            soft = _elastic(soft, rng, self.elastic * size, sigma=0.08 * size)
        k = int(rng.integers(0, max(1, size // 24)) * 2 + 1)
        if k > 1:
            kernel = np.ones((k, k), np.uint8)
            soft = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(soft, kernel)
        soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=max(0.5, _uniform(rng, self.blur) * size))
        soft = soft / max(float(soft.max()), 1e-6) * float(rng.choice(np.asarray(self.blend_ratios, np.float32)))
        soft[soft < 1e-3] = 0.0  # a clean outside: no pixel there changes
        return soft.astype(np.float32)


def _elastic(mask: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    h, w = mask.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    scale = alpha / max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, xs + dx * scale, ys + dy * scale, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


# ---------------------------------------------------------------------------------------------- fault injection
def flip_labels(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly round(fraction * n) labels flipped (0 <-> 1); returns (new labels, indices flipped)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"label noise fraction must be in [0, 1], got {fraction}")
    labels = np.asarray(labels).copy()
    k = int(round(fraction * len(labels)))
    idx = np.sort(rng.choice(len(labels), size=k, replace=False)) if k else np.zeros(0, np.int64)
    labels[idx] = 1 - labels[idx]
    return labels, idx


def shuffle_labels(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Labels permuted across samples: the label counts stay, any link to the image is gone (AUC -> 0.5)."""
    return rng.permutation(np.asarray(labels))


@dataclass
class InputNoise:
    """Gaussian noise of a fixed std (pixel levels) on every input: a fault, not an augmentation."""

    std: float

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.std <= 0:
            return img
        return _u8(img.astype(np.float32) + rng.normal(0, self.std, img.shape).astype(np.float32))
