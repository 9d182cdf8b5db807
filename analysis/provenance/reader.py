"""read_provenance: every provenance reader on one file, each one guarded so that no metadata can stop the
pixel analysis."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..media import ijg_quality
from .c2pa_check import read_c2pa
from .containers import RawMetadata, read_containers
from .exif import ExifError, exif_findings, parse_exif
from .generators import text_findings
from .model import CAMERA_ORIGIN, LIMITS, NEUTRAL, NO_METADATA, SAYS_GENERATED, Finding, Provenance, one_line
from .video_meta import ContainerError, container_findings, read_container_tags
from .xmp import XmpError, parse_xmp, xmp_findings

log = logging.getLogger(__name__)

NO_METADATA_TEXT = "no metadata: nothing in the file says where it comes from (most platforms strip it)"
JPEG_TABLES = "JPEG"      # the source of the quantisation finding
LOW_JPEG_QUALITY = 75     # cameras and phones save at 85-95; lower is typical of re-compression by a platform


def read_provenance(source: str | Path | bytes, kind: str) -> Provenance:
    """Provenance of an image (`kind` "image": path or bytes) or a video ("video": path). Never raises for what
    the file contains: an unreadable part gives a one-line finding."""
    prov = Provenance()
    if not isinstance(source, (bytes, bytearray)):
        source = Path(source)
    _guarded(prov, "C2PA", lambda: _c2pa(prov, source))
    if kind == "video" and isinstance(source, Path):
        _guarded(prov, "container", lambda: _video(prov, source))
    elif kind == "image":
        _guarded(prov, "file", lambda: _image(prov, source))
    # a JPEG's quantisation tables are in every JPEG: alone, they are no metadata about where the file comes from
    if all(f.source == JPEG_TABLES for f in prov.findings):
        prov.findings.insert(0, Finding("file", NO_METADATA_TEXT, NO_METADATA))
    if prov.declares_generated is None:
        first = next((f for f in prov.findings if f.strength == SAYS_GENERATED), None)
        if first is not None:
            prov.declares_generated = f"File declares: AI-generated ({first.source}, not signed)"
    return prov


def _guarded(prov: Provenance, where: str, step: Callable[[], None]) -> None:
    # Broad on purpose: hostile metadata may break a parser in ways nobody listed, and the contract is
    # that it gives a one-line finding and the pixel analysis goes on.
    try:
        step()
    except Exception as exc:  # noqa: BLE001
        log.warning("provenance (%s) failed", where, exc_info=True)
        prov.findings.append(Finding(where, f"could not be read ({type(exc).__name__}: {one_line(exc, 160)})",
                                     NEUTRAL))


def _c2pa(prov: Provenance, source: Path | bytes) -> None:
    result = read_c2pa(source)
    prov.findings.extend(result.findings)
    if result.fields:
        prov.fields["C2PA"] = result.fields
    prov.declares_generated = result.declares_generated


def _image(prov: Provenance, source: Path | bytes) -> None:
    if isinstance(source, Path):
        with source.open("rb") as fh:
            data = fh.read(LIMITS.max_scan_bytes)
    else:
        data = bytes(source[: LIMITS.max_scan_bytes])
    raw = read_containers(data)
    prov.findings.extend(Finding(raw.format or "file", problem, NEUTRAL) for problem in raw.problems)
    if raw.has_jumbf and "C2PA" not in prov.fields and not any(f.source == "C2PA" for f in prov.findings):
        prov.findings.append(Finding("C2PA", "a C2PA box is present but holds no readable manifest", NEUTRAL))
    for packet in raw.xmp:
        try:
            findings, shown, private = xmp_findings(parse_xmp(packet))
        except XmpError as exc:
            prov.findings.append(Finding("XMP", f"unreadable: {exc}", NEUTRAL))
            continue
        prov.findings.extend(findings)
        prov.fields.setdefault("XMP", {}).update(shown)
        prov.private.update(private)
    camera = False
    if raw.exif:
        try:
            findings, shown, private = exif_findings(parse_exif(raw.exif))
        except ExifError as exc:
            prov.findings.append(Finding("EXIF", f"unreadable: {exc}", NEUTRAL))
        else:
            prov.findings.extend(findings)
            prov.fields["EXIF"] = shown
            prov.private.update(private)
            camera = any(f.strength == CAMERA_ORIGIN for f in findings)
    if raw.texts:
        where = "JPEG comment" if raw.format == "JPEG" else f"{raw.format} text"
        findings, shown = text_findings(raw.texts, where)
        prov.findings.extend(findings)
        prov.fields[where] = shown
    if 0 in raw.quantization:
        prov.findings.append(_jpeg_quality(raw, camera))


def _jpeg_quality(raw: RawMetadata, camera: bool) -> Finding:
    quality, standard = ijg_quality(raw.quantization[0])
    tables = "libjpeg's standard tables (written by software)" if standard else "the encoder's own tables"
    text = f"quality ≈ {quality}, {tables}"
    if camera and standard:
        text += "; a camera is claimed, but cameras use tables of their own: re-saved after capture"
    elif quality < LOW_JPEG_QUALITY:
        text += "; this low a quality is typical of re-compression (cameras save at 85 or more)"
    return Finding(JPEG_TABLES, text, NEUTRAL)


def _video(prov: Provenance, path: Path) -> None:
    try:
        tags = read_container_tags(path)
    except ContainerError as exc:
        prov.findings.append(Finding("container", f"unreadable: {exc}", NEUTRAL))
        return
    findings, shown, private = container_findings(tags)
    prov.findings.extend(findings)
    prov.fields["container"] = shown
    prov.private.update(private)
