"""Metadata blocks of JPEG, PNG and WebP files, found by walking the container's own structure (no pixel decoding).

Every block is bounded by LIMITS; what is over a limit or broken becomes a one-line `problems` entry.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from .model import LIMITS

XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXIF_HEADER = b"Exif\x00\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG stores quantisation tables in zigzag order; entry k is this position in natural (row-major) order
_ZIGZAG = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
           14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
           53, 60, 61, 54, 47, 55, 62, 63)


@dataclass
class TextChunk:
    key: str
    text: str
    lossy: bool = False      # not valid in its declared encoding; read with replacement characters


@dataclass
class RawMetadata:
    format: str | None = None                       # "JPEG", "PNG", "WebP" or None (other)
    exif: bytes | None = None
    xmp: list[bytes] = field(default_factory=list)
    texts: list[TextChunk] = field(default_factory=list)   # PNG tEXt/zTXt/iTXt, JPEG comments
    quantization: dict[int, list[int]] = field(default_factory=dict)   # JPEG DQT: id -> 64 values, natural order
    has_jumbf: bool = False                          # JPEG APP11 / PNG caBX / WebP C2PA: a C2PA store's box
    problems: list[str] = field(default_factory=list)


def read_containers(data: bytes) -> RawMetadata:
    """The metadata blocks of an image file's bytes (only the first LIMITS.max_scan_bytes are looked at)."""
    data = data[: LIMITS.max_scan_bytes]
    for fmt, test, walker in _WALKERS:
        if test(data):
            raw = RawMetadata(format=fmt)
            try:
                walker(data, raw)
            except (struct.error, IndexError, ValueError) as exc:
                raw.problems.append(f"{fmt} structure is broken ({exc}); metadata read up to that point")
            return raw
    return RawMetadata()


def _keep(raw: RawMetadata, what: str, block: bytes) -> bytes | None:
    if len(block) > LIMITS.max_segment_bytes:
        raw.problems.append(f"{what} is {len(block):,} bytes, over the {LIMITS.max_segment_bytes:,}-byte limit; "
                            "not read")
        return None
    return block


# ------------------------------------------------------------------------------------------------------ JPEG
def _walk_jpeg(data: bytes, raw: RawMetadata) -> None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:          # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan: no metadata after this
            return
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError(f"segment 0x{marker:02X} at byte {pos} runs past the end")
        body = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and body.startswith(EXIF_HEADER) and raw.exif is None:
            raw.exif = _keep(raw, "EXIF", body[len(EXIF_HEADER):])
        elif marker == 0xE1 and body.startswith(XMP_JPEG_HEADER):
            block = _keep(raw, "XMP", body[len(XMP_JPEG_HEADER):])
            if block is not None:
                raw.xmp.append(block)
        elif marker == 0xEB and b"jumb" in body[:32]:
            raw.has_jumbf = True
        elif marker == 0xDB:
            _read_dqt(body, raw)
        elif marker == 0xFE and len(raw.texts) < LIMITS.max_text_chunks:
            raw.texts.append(_decoded("comment", body, "utf-8"))
        pos += 2 + length


def _read_dqt(body: bytes, raw: RawMetadata) -> None:
    i = 0
    while i < len(body):
        precision, table_id = body[i] >> 4, body[i] & 0x0F
        size = 128 if precision else 64
        values = body[i + 1:i + 1 + size]
        if len(values) < size:
            raise ValueError("truncated quantisation table")
        zigzag = struct.unpack(">64H", values) if precision else tuple(values)
        natural = [0] * 64
        for k, value in enumerate(zigzag):
            natural[_ZIGZAG[k]] = value
        raw.quantization[table_id] = natural
        i += 1 + size


# ------------------------------------------------------------------------------------------------------- PNG
def _walk_png(data: bytes, raw: RawMetadata) -> None:
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"chunk {kind.decode('latin-1')!r} runs past the end")
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            if len(raw.texts) >= LIMITS.max_text_chunks:
                raw.problems.append(f"more than {LIMITS.max_text_chunks} text chunks; the rest not read")
            else:
                chunk = _png_text(kind, body, raw)
                if chunk is not None and chunk.key == "XML:com.adobe.xmp":
                    raw.xmp.append(chunk.text.encode("utf-8"))
                elif chunk is not None:
                    raw.texts.append(chunk)
        elif kind == b"eXIf" and raw.exif is None:
            raw.exif = _keep(raw, "EXIF", body)
        elif kind == b"caBX":
            raw.has_jumbf = True
        elif kind == b"IEND":
            return
        pos += 12 + length


def _png_text(kind: bytes, body: bytes, raw: RawMetadata) -> TextChunk | None:
    key, sep, rest = body.partition(b"\x00")
    if not sep:
        raw.problems.append(f"a PNG {kind.decode()} chunk has no keyword separator; not read")
        return None
    name = key.decode("latin-1")
    if kind == b"tEXt":
        return _decoded(name, rest, "latin-1")
    if kind == b"zTXt":
        return _decoded(name, _inflate(rest[1:], name, raw), "latin-1") if rest[:1] == b"\x00" else None
    # iTXt: compression flag, method, language tag\0, translated keyword\0, text (UTF-8)
    compressed = rest[:1] == b"\x01"
    _lang, _, rest2 = rest[2:].partition(b"\x00")
    _translated, _, text = rest2.partition(b"\x00")
    if compressed:
        text = _inflate(text, name, raw)
    return _decoded(name, text, "utf-8")


def _inflate(block: bytes, name: str, raw: RawMetadata) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(block, LIMITS.max_segment_bytes + 1)
    except zlib.error as exc:
        raw.problems.append(f"PNG text chunk {name!r} cannot be decompressed ({exc})")
        return b""
    if len(out) > LIMITS.max_segment_bytes:
        raw.problems.append(f"PNG text chunk {name!r} inflates past the {LIMITS.max_segment_bytes:,}-byte limit; "
                            "not read")
        return b""
    return out


def _decoded(key: str, block: bytes, encoding: str) -> TextChunk:
    block = block[: LIMITS.max_segment_bytes]
    try:
        return TextChunk(key, block.decode(encoding))
    except UnicodeDecodeError:
        return TextChunk(key, block.decode(encoding, "replace"), lossy=True)


# ------------------------------------------------------------------------------------------------------ WebP
def _walk_webp(data: bytes, raw: RawMetadata) -> None:
    pos = 12
    while pos + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) < length:
            raise ValueError(f"chunk {kind.decode('latin-1')!r} runs past the end")
        if kind == b"EXIF" and raw.exif is None:
            block = _keep(raw, "EXIF", body)
            raw.exif = block[len(EXIF_HEADER):] if block and block.startswith(EXIF_HEADER) else block
        elif kind == b"XMP ":
            block = _keep(raw, "XMP", body)
            if block is not None:
                raw.xmp.append(block)
        elif kind == b"C2PA":
            raw.has_jumbf = True
        pos += 8 + length + (length & 1)


_WALKERS = (
    ("JPEG", lambda d: d[:2] == b"\xff\xd8", _walk_jpeg),
    ("PNG", lambda d: d[:8] == PNG_SIGNATURE, _walk_png),
    ("WebP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _walk_webp),
)
