"""Media input: what a file is (from its bytes, never its name) and decoding images safely to RGB uint8.

`load_image` refuses, with one-line `MediaError` messages, anything it cannot analyse: missing or unreadable
paths, empty files, text, videos, truncated or corrupt images (a full decode is forced; Pillow's
`ImageFile.LOAD_TRUNCATED_IMAGES` is left False) and decompression bombs (the size in the header is checked
before any pixel is decoded).
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:  # HEIC/HEIF only when the optional plugin is installed; Pillow has no decoder of its own
    from pillow_heif import register_heif_opener  # type: ignore[import-not-found]

    register_heif_opener()
    HEIF_SUPPORTED = True
except Exception:  # noqa: BLE001 - any failure just means "no HEIF"
    HEIF_SUPPORTED = False

from .errors import MediaError

Source = Union[str, Path, bytes, bytearray, memoryview]

# File names the folder walks (`pipeline.dispatch.expand_inputs`, the scanner, training data) take as media; the
# content decides what a file really is (sniff_kind).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".heic",
                            ".heif"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv",
                            ".3gp"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif",
                            ".caf", ".amr", ".mka", ".wma"})
MEDIA_SUFFIXES = IMAGE_SUFFIXES | VIDEO_SUFFIXES | AUDIO_SUFFIXES

SNIFF_BYTES = 1024  # enough for every signature below (MPEG-TS needs three 188-byte packets)

# ISO base media (ftyp) brands that are still images rather than movies.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1",
                 b"avif", b"avis", b"avio", b"jxl ", b"crx "}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}
_MOV_ATOMS = {b"moov", b"mdat", b"wide", b"pnot", b"skip", b"free"}


# --------------------------------------------------------------------------------------------------- sniffing
def _ftyp_kind(head: bytes) -> str | None:
    """MP4/MOV/3GP/HEIF/AVIF share the ISO `ftyp` box: the brands tell a photo from a movie or a song."""
    size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    end = min(len(head), size if 16 <= size <= 4096 else 64)
    compatible = {head[i:i + 4] for i in range(16, end - 3, 4)}
    if major in _AUDIO_BRANDS:
        return "audio"
    if major in _IMAGE_BRANDS:
        return "image"
    if major in {b"qt  ", b"isom", b"iso2", b"mp41", b"mp42"} and compatible & _IMAGE_BRANDS and not (
            compatible & {b"avc1", b"mp41", b"mp42", b"iso2", b"iso4", b"iso5", b"iso6", b"dash", b"M4V "}):
        return "image"
    return "video"


def _is_mpeg_ts(head: bytes, packet: int, offset: int) -> bool:
    positions = [offset + packet * i for i in range(3)]
    return len(head) > positions[-1] and all(head[p] == 0x47 for p in positions)


def _is_mpeg_audio(head: bytes) -> bool:
    """An MPEG audio frame (MP1/2/3) or an ADTS AAC frame at the start, checked against the next frame's sync
    where the header gives a length (a lone 0xFF byte pair is too weak a signal)."""
    if len(head) < 4 or head[0] != 0xFF:
        return False
    if head[1] & 0xF6 == 0xF0:                                   # ADTS: sync, layer 00
        length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5) if len(head) > 5 else 0
        return 7 <= length and (len(head) < length + 2 or head[length] == 0xFF and head[length + 1] & 0xF6 == 0xF0)
    if head[1] & 0xE0 != 0xE0 or (head[1] >> 1) & 3 == 0 or (head[1] >> 3) & 3 == 1:
        return False
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 3
    return 0 < bitrate < 15 and rate != 3


def _is_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sniffed bytes is still text.
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t\f" for ch in text)
    return printable >= 0.95 * max(1, len(text))


# (test, kind): the first test that matches wins; order matters only where signatures overlap.
_SIGNATURES: list[tuple[Callable[[bytes], bool], str | None]] = [
    (lambda h: h[:3] == b"\xff\xd8\xff", "image"),                                        # JPEG
    (lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", "image"),                                   # PNG / APNG
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), "image"),                                 # GIF
    (lambda h: h[:2] == b"BM" and len(h) >= 18
     and int.from_bytes(h[14:18], "little") in _BMP_HEADER_SIZES, "image"),             # BMP
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), "image"),       # TIFF / BigTIFF
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", "image"),                         # WebP
    (lambda h: h[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or h[:4] == b"\xff\x4f\xff\x51", "image"),  # JPEG 2000
    (lambda h: h[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n" or h[:2] == b"\xff\x0a", "image"),  # JPEG XL
    (lambda h: h[:4] == b"qoif", "image"),                                                # QOI
    (lambda h: h[:4] in (b"8BPS",), "image"),                                             # Photoshop
    (lambda h: h[:4] == b"DDS ", "image"),                                                # DirectDraw surface
    (lambda h: h[:4] == b"icns", "image"),                                                # Apple icon
    (lambda h: h[:4] == b"\x00\x00\x01\x00" and len(h) > 9 and h[4] + h[5] > 0 and h[9] == 0, "image"),  # ICO
    (lambda h: len(h) > 2 and h[0:1] == b"P" and h[1:2] in b"1234567" and h[2:3] in b" \t\r\n#", "image"),  # PNM
    (lambda h: h[4:8] == b"ftyp", "ftyp"),                                                # ISO base media
    (lambda h: h[:4] == b"RIFF" and h[8:12] in (b"AVI ", b"AVIX"), "video"),              # AVI
    (lambda h: h[:4] == b"\x1a\x45\xdf\xa3", "video"),                                    # Matroska / WebM
    (lambda h: h[:3] == b"FLV" and h[3:4] == b"\x01", "video"),                           # Flash video
    (lambda h: h[:8] == b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "video"),                    # ASF / WMV
    (lambda h: h[:4] == b".RMF", "video"),                                                # RealMedia
    (lambda h: h[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"), "video"),             # MPEG-PS / MPEG-1/2 video
    (lambda h: h[:4] == b"OggS" and (b"\x80theora" in h or b"\x80daala" in h), "video"),  # Ogg Theora
    (lambda h: h[:4] == b"OggS", "audio"),                                                # Ogg Vorbis / Opus / FLAC
    (lambda h: h[:4] == b"RIFF" and h[8:12] in (b"WAVE", b"RF64"), "audio"),              # WAV
    (lambda h: h[:4] in (b"RF64", b"BW64") and h[8:12] == b"WAVE", "audio"),              # RF64 / BW64 WAV
    (lambda h: h[:4] == b"fLaC", "audio"),                                                # FLAC
    (lambda h: h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"), "audio"),              # AIFF
    (lambda h: h[:4] == b"caff", "audio"),                                                # Core Audio
    (lambda h: h[:3] == b"ID3", "audio"),                                                 # MP3 (ID3 tag first)
    (lambda h: h[:2] == b"#!" and h[2:8] in (b"AMR\n", b"AMR-WB"), "audio"),              # AMR
    (lambda h: _is_mpeg_audio(h), "audio"),                                               # MP3 / ADTS AAC frames
    (lambda h: _is_mpeg_ts(h, 188, 0) or _is_mpeg_ts(h, 192, 4) or _is_mpeg_ts(h, 204, 0), "video"),  # MPEG-TS
    (lambda h: h[4:8] in _MOV_ATOMS and 8 <= int.from_bytes(h[0:4], "big"), "video"),     # old QuickTime
    # Raw H.264 / H.265 Annex-B streams starting with an SPS or a VPS.
    (lambda h: h[:4] == b"\x00\x00\x00\x01" and len(h) > 5 and ((h[4] & 0x1F) == 7 or (h[4] >> 1) & 0x3F == 32),
     "video"),
]


def _read_head(source: Source, n: int = SNIFF_BYTES) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:n])
    path = _checked_path(source)
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except PermissionError as exc:
        raise MediaError(f"cannot read {path}: permission denied") from exc
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def sniff_kind(source: Source) -> str | None:
    """"image", "video", "audio" or None (unknown, text, empty) from the content's magic bytes, not its name.
    (Matroska / WebM say "video" even when they hold only sound: pipeline.dispatch looks at the streams.)

    A path that does not exist or cannot be read raises `MediaError`. HEIC/AVIF count as images even where
    no decoder is installed (load_image then says so).
    """
    head = _read_head(source)
    for test, kind in _SIGNATURES:
        if test(head):
            return _ftyp_kind(head) if kind == "ftyp" else kind
    return None


# --------------------------------------------------------------------------------------------------- loading
@dataclass
class LoadedImage:
    rgb: np.ndarray            # H x W x 3 uint8, upright (EXIF orientation applied)
    width: int
    height: int
    format: str                # Pillow's format name: "JPEG", "PNG", ...
    sha256: str                # of the file bytes
    exif_rotated: bool = False
    notes: list[str] = field(default_factory=list)
    jpeg_quality: int | None = None  # estimated from the quantisation tables, JPEG only


def _checked_path(source: str | Path) -> Path:
    path = Path(source)
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"{path} is a directory, not a file")
    if not path.is_file():
        raise MediaError(f"{path} is not a regular file")
    return path


def _read_all(source: Source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "The file"
    path = _checked_path(source)
    try:
        return path.read_bytes(), path.name
    except PermissionError as exc:
        raise MediaError(f"cannot read {path}: permission denied") from exc
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _not_an_image(head: bytes, name: str) -> MediaError:
    kind = sniff_kind(head)
    if kind == "video":
        return MediaError(f"{name} is a video, not an image: analyse it as a video")
    if kind == "audio":
        return MediaError(f"{name} is an audio file, not an image: analyse it as audio")
    if _is_text(head):
        stripped = head.lstrip().lower()
        if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in stripped):
            return MediaError(f"{name} is an SVG drawing, not a photo: export it to PNG or JPEG first")
        return MediaError(f"{name} is a text file, not an image")
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return MediaError(f"{name} is a HEIC/HEIF photo, which this installation cannot decode: "
                          "convert it to JPEG or PNG first")
    if kind == "image":
        return MediaError(f"{name} is an image format this installation cannot decode: convert it to JPEG or PNG")
    return MediaError(f"{name} is not an image (unknown or unsupported format)")


# ---- mode conversion: every Pillow mode to RGB uint8 ------------------------------------------------------
def _over_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _gray_to_rgb(gray: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(gray, dtype=np.uint8), "L").convert("RGB")


def _stretch(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, np.uint8)
    lo, hi = float(values[finite].min()), float(values[finite].max())
    scaled = (np.where(finite, values, lo) - lo) * (255.0 / (hi - lo) if hi > lo else 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _from_16bit(im: Image.Image, notes: list[str]) -> Image.Image:
    values = np.asarray(im).astype(np.float64)
    if im.mode == "I" and values.size and values.min() >= 0 and values.max() <= 255:
        # 32-bit integer storage of 8-bit data (e.g. Pillow's L -> I): a 16-bit scale would make it black.
        return _gray_to_rgb(values)
    if im.mode.startswith("I;16") or (values.size and values.min() >= 0 and values.max() <= 65535):
        notes.append("16-bit image scaled to 8 bits")
        # 65535 / 257 = 255 exactly: a full-range scale, not a clip of the low byte.
        return _gray_to_rgb(np.clip(np.rint(values / 257.0), 0, 255))
    notes.append("32-bit integer image stretched to 8 bits")
    return _gray_to_rgb(_stretch(values))


def _from_float(im: Image.Image, notes: list[str]) -> Image.Image:
    values = np.asarray(im).astype(np.float64)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        notes.append("floating-point image (0..1) scaled to 8 bits")
        return _gray_to_rgb(np.clip(np.rint(np.nan_to_num(values) * 255.0), 0, 255))
    notes.append("floating-point image stretched to 8 bits")
    return _gray_to_rgb(_stretch(values))


def _from_cmyk(im: Image.Image, notes: list[str]) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source_profile, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile falls back to the naive conversion
            notes.append("CMYK colour profile unusable: converted without it")
    return im.convert("RGB")


def _from_palette(im: Image.Image, notes: list[str]) -> Image.Image:
    if "transparency" in im.info or im.mode == "PA":
        return _over_white(im)
    return im.convert("RGB")


_CONVERTERS: dict[str, Callable[[Image.Image, list[str]], Image.Image]] = {
    "RGB": lambda im, notes: im,
    "RGBX": lambda im, notes: im.convert("RGB"),
    "RGBA": lambda im, notes: _over_white(im),
    "RGBa": lambda im, notes: _over_white(im.convert("RGBA")),
    "LA": lambda im, notes: _over_white(im),
    "La": lambda im, notes: _over_white(im.convert("LA")),
    "PA": _from_palette,
    "P": _from_palette,
    "L": lambda im, notes: im.convert("RGB"),
    "1": lambda im, notes: im.convert("L").convert("RGB"),
    "I;16": _from_16bit,
    "I;16L": _from_16bit,
    "I;16B": _from_16bit,
    "I;16N": _from_16bit,
    "I": _from_16bit,
    "F": _from_float,
    "CMYK": _from_cmyk,
    "YCbCr": lambda im, notes: im.convert("RGB"),
    "HSV": lambda im, notes: im.convert("RGB"),
    "LAB": lambda im, notes: im.convert("RGB"),
}


def to_rgb(im: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is composited over white."""
    notes = notes if notes is not None else []
    converter = _CONVERTERS.get(im.mode)
    if converter is None:
        try:
            return im.convert("RGB")
        except (ValueError, OSError) as exc:
            raise MediaError(f"unsupported colour mode {im.mode}") from exc
    if im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (im.mode == "P" and "transparency" in im.info):
        notes.append("transparent areas composited over white")
    try:
        return converter(im, notes)
    except ValueError as exc:
        raise MediaError(f"unsupported colour mode {im.mode}") from exc


# ---- the loader -------------------------------------------------------------------------------------------
def load_image(source: Source, max_pixels: int = 100_000_000) -> LoadedImage:
    """Decode an image path or bytes to an upright RGB uint8 array; raise `MediaError` for anything unusable.

    Animated images (GIF, APNG, WebP, multi-page TIFF) use their first frame. Images larger than
    `max_pixels` are refused from their header, before decoding. Pillow's own bomb guard
    (2 x Image.MAX_IMAGE_PIXELS) still applies above that and is reported the same way.
    """
    if not isinstance(source, (bytes, bytearray, memoryview)):
        head = _read_head(source)  # a video path is refused before the whole file is read
        if sniff_kind(head) == "video":
            raise _not_an_image(head, Path(source).name)
    data, name = _read_all(source)
    if not data:
        raise MediaError(f"{name} is empty (0 bytes)")
    digest = hashlib.sha256(data).hexdigest()
    head = data[:SNIFF_BYTES]
    if sniff_kind(head) == "video":
        raise _not_an_image(head, name)

    notes: list[str] = []
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _bomb(name, exc) from exc
    except UnidentifiedImageError as exc:
        raise _not_an_image(head, name) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"{name} is a corrupt or truncated image ({_reason(exc)})") from exc

    with im:
        fmt = im.format or "unknown"
        width, height = im.size
        if width <= 0 or height <= 0:
            raise MediaError(f"{name} has an invalid size {width}x{height}")
        if width * height > max_pixels:
            raise MediaError(f"{name} is too large: {width}x{height} pixels, more than the limit of "
                             f"{max_pixels:,} (possible decompression bomb)")
        try:
            frames = int(getattr(im, "n_frames", 1))
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise MediaError(f"{name} is a corrupt or truncated image ({_reason(exc)})") from exc
        if frames > 1:
            notes.append(f"animated or multi-frame image ({frames} frames): the first frame is analysed")
            im.seek(0)
        jpeg_quality = estimate_jpeg_quality(im) if fmt in ("JPEG", "MPO") else None
        try:
            im.load()  # the full decode: truncated or corrupt data fails here, not later
        except Image.DecompressionBombError as exc:
            raise _bomb(name, exc) from exc
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
            raise MediaError(f"{name} is a corrupt or truncated image ({_reason(exc)})") from exc

        exif_rotated = False
        try:
            orientation = im.getexif().get(0x0112, 1)
            upright = ImageOps.exif_transpose(im)
            exif_rotated = orientation in (2, 3, 4, 5, 6, 7, 8)
        except Exception:  # noqa: BLE001 - malformed EXIF must not make a good picture unreadable
            upright = im
            notes.append("EXIF orientation unreadable: image used as stored")
        if exif_rotated:
            notes.append(f"rotated upright from EXIF orientation {orientation}")
        rgb_image = to_rgb(upright, notes)
        rgb = np.array(rgb_image, dtype=np.uint8)

    if rgb.ndim != 3 or rgb.shape[2] != 3:  # defensive: every converter above returns RGB
        raise MediaError(f"{name} could not be converted to RGB")
    return LoadedImage(rgb=rgb, width=int(rgb.shape[1]), height=int(rgb.shape[0]), format=fmt,
                       sha256=digest, exif_rotated=exif_rotated, notes=notes, jpeg_quality=jpeg_quality)


def _bomb(name: str, exc: Image.DecompressionBombError) -> MediaError:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f" ({int(found.group(1)):,} pixels)" if found else ""
    return MediaError(f"{name} is too large to decode safely{size}: possible decompression bomb")


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


# --------------------------------------------------------------------------------------------------- JPEG quality
# The IJG (libjpeg) standard luminance quantisation table, natural (row-major) order, as Pillow stores it.
_IJG_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.int64)


def _ijg_table(quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_IJG_LUMINANCE * scale + 50) // 100, 1, 255)


_IJG_TABLES = np.stack([_ijg_table(q) for q in range(1, 101)])  # row q-1: the table libjpeg writes at quality q


def estimate_jpeg_quality(image: Image.Image | bytes | str | Path) -> int | None:
    """The IJG quality (1-100) whose scaled standard luminance table is closest to the file's; None if not JPEG.

    Exact for files written by libjpeg-based encoders (Pillow, most software); an approximation for cameras
    and phones that use tables of their own.
    """
    if isinstance(image, Image.Image):
        tables = getattr(image, "quantization", None)
    else:
        try:
            raw = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else Path(image).read_bytes()
            with Image.open(io.BytesIO(raw)) as im:  # headers only: tables are read without decoding pixels
                tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            return None
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    return ijg_quality(tables[0])[0]


def ijg_quality(luminance: Sequence[int]) -> tuple[int, bool]:
    """(the IJG quality whose standard luminance table is closest to these 64 values in natural order, whether it
    is exactly libjpeg's table at that quality: software wrote the file, not a camera's own encoder)."""
    table = np.asarray(luminance, dtype=np.int64)
    # Relative error, so the many small low-frequency entries weigh as much as the large high-frequency ones.
    errors = (np.abs(_IJG_TABLES - table) / _IJG_TABLES).sum(axis=1)
    best = int(np.argmin(errors))
    return best + 1, bool(np.array_equal(_IJG_TABLES[best], table))
