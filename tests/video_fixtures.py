"""Generated clips for the video engine's tests: small, deterministic, written by OpenCV or PyAV.

`numbered_frames` paint each frame's index as a row of black/white blocks that survive compression, so a test
can check that the engine decoded exactly the frame it says it did.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

BITS = 10          # frame numbers up to 1023
BLOCK = 16         # pixels per bit block


def numbered_frame(index: int, width: int = 320, height: int = 240) -> np.ndarray:
    """RGB frame whose top band holds `index` in binary (white = 1), on a smooth background."""
    y = np.linspace(60, 180, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 40, width, dtype=np.float32)[None, :]
    base = (y + x).astype(np.uint8)
    rgb = np.stack([base, base, base], axis=-1)
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        rgb[0:BLOCK, bit * BLOCK:(bit + 1) * BLOCK] = value
    return rgb


def read_number(rgb: np.ndarray) -> int:
    value = 0
    for bit in range(BITS):
        block = rgb[2:BLOCK - 2, bit * BLOCK + 2:(bit + 1) * BLOCK - 2]
        if block.mean() > 127:
            value |= 1 << bit
    return value


def numbered_frames(count: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    return [numbered_frame(i, width, height) for i in range(count)]


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    """Writes RGB frames with cv2.VideoWriter (mp4v in .mp4, MJPG in .avi)."""
    frames = list(frames)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"cv2.VideoWriter cannot write {fourcc} to {path}")
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_pyav_clip(path: Path, frames: Sequence[np.ndarray], times: Sequence[float] | None = None,
                    fps: int = 25, codec: str = "mpeg4", faststart: bool = False,
                    container_format: str | None = None) -> Path:
    """Writes with PyAV; `times` (seconds) give each frame's own timestamp: variable frame rate.
    container_format="m4v" writes a raw MPEG-4 stream (no container: OpenCV's metadata is then nonsense)."""
    import av
    from fractions import Fraction

    height, width = frames[0].shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", format=container_format, options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": "10"}           # a keyframe every 10 frames, so that seeking has somewhere to go
        if times is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if times is not None:
                frame.pts = int(round(times[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def astronaut_face() -> np.ndarray:
    """The face of skimage's astronaut with some hair and chin around it (RGB, ~190 x 160)."""
    from skimage import data
    return np.ascontiguousarray(data.astronaut()[20:210, 150:310])


def second_face() -> np.ndarray:
    """Another-looking face for a second person: the astronaut mirrored, with colours rotated."""
    face = astronaut_face()[:, ::-1]
    return np.ascontiguousarray(face[..., [1, 2, 0]])


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> None:
    h, w = patch.shape[:2]
    frame[y:y + h, x:x + w] = patch


def two_faces_frames(count: int, width: int = 480, height: int = 360, face_side: int = 120,
                     people: int = 2) -> tuple[list[np.ndarray], list[list[tuple[int, int, int, int]]]]:
    """Two faces crossing the frame in opposite directions in separate bands (or only the first one with
    people=1); returns frames and pasted boxes."""
    a = cv2.resize(astronaut_face(), (face_side * 160 // 190, face_side), interpolation=cv2.INTER_AREA)
    b = cv2.resize(second_face(), (face_side * 160 // 190, face_side), interpolation=cv2.INTER_AREA)
    fw = a.shape[1]
    frames, boxes = [], []
    for i in range(count):
        t = i / max(count - 1, 1)
        frame = np.full((height, width, 3), 200, dtype=np.uint8)
        frame[:, :, 1] = 190
        xa = int(10 + t * (width / 2 - fw - 20))
        xb = int(width - fw - 10 - t * (width / 2 - fw - 20))
        ya, yb = 20, height - face_side - 20
        paste(frame, a, xa, ya)
        boxes.append([(xa, ya, xa + fw, ya + face_side)])
        if people > 1:
            paste(frame, b, xb, yb)
            boxes[-1].append((xb, yb, xb + fw, yb + face_side))
        frames.append(frame)
    return frames, boxes


def blank_frames(count: int, width: int = 320, height: int = 240) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    base = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    return [np.roll(base, i * 3, axis=1) for i in range(count)]


def truncate(path: Path, out: Path, share: float = 0.5) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * share)])
    return out


def zero_avi_rate(path: Path) -> Path:
    """Patches an AVI's headers to claim 0 fps: avih.dwMicroSecPerFrame = 0 and strh.dwRate = 0."""
    data = bytearray(path.read_bytes())
    avih = data.find(b"avih")
    struct.pack_into("<I", data, avih + 8, 0)
    strh = data.find(b"strh")
    # strh payload: fccType, fccHandler, dwFlags, wPriority+wLanguage, dwInitialFrames, dwScale, dwRate
    struct.pack_into("<I", data, strh + 8 + 24, 0)
    path.write_bytes(bytes(data))
    return path
