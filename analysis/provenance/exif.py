"""EXIF: camera, software, dates, and private fields (GPS, serial numbers, owner) shown only as present."""
from __future__ import annotations

import warnings

from PIL import ExifTags, Image

from .containers import EXIF_HEADER
from .generators import a1111_parameters
from .model import CAMERA_ORIGIN, LIMITS, NEUTRAL, PRESENT, SAYS_GENERATED, Finding, one_line
from .vocabulary import software_strength

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
USER_COMMENT = 0x9286
# tag ids whose values are private: owner names and serial numbers (the GPS IFD is private as a whole)
PRIVATE_TAGS = {0x013B: "Artist", 0xA430: "CameraOwnerName", 0xA431: "BodySerialNumber",
                0xA435: "LensSerialNumber", 0xC62F: "CameraSerialNumber"}
DATE_TAGS = {0x9003: "DateTimeOriginal", 0x0132: "DateTime", 0x9004: "DateTimeDigitized"}


class ExifError(ValueError):
    """EXIF that could not be read, with the one-line reason."""


def parse_exif(block: bytes) -> dict[str, object]:
    """Tag name -> value of IFD0, the Exif IFD and the GPS IFD (GPS tags prefixed "GPS")."""
    exif = Image.Exif()
    tags: dict[str, object] = {}
    try:
        # Pillow only warns on corrupt EXIF and goes on with what it could read; here that is a finding. Recording
        # (never "error") keeps other threads' warnings from turning into exceptions meanwhile.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exif.load(block if block.startswith(EXIF_HEADER) else EXIF_HEADER + block)
            for tag, value in list(exif.items())[: LIMITS.max_fields]:
                if tag not in (EXIF_IFD, GPS_IFD):
                    tags[_tag_name(tag)] = value
            for tag, value in list(exif.get_ifd(EXIF_IFD).items())[: LIMITS.max_fields]:
                tags[_tag_name(tag)] = value
            for tag, value in list(exif.get_ifd(GPS_IFD).items())[:64]:
                tags["GPS" + ExifTags.GPSTAGS.get(tag, f"Tag{tag}").removeprefix("GPS")] = value
    except (OSError, SyntaxError, ValueError, KeyError, IndexError, TypeError, ZeroDivisionError) as exc:
        raise ExifError(f"malformed ({type(exc).__name__}: {one_line(exc, 120)})") from None
    corrupt = [w for w in caught if "EXIF" in str(w.message)]
    if corrupt:
        raise ExifError(f"malformed ({one_line(corrupt[0].message, 120)})")
    return tags


def _tag_name(tag: int) -> str:
    return PRIVATE_TAGS.get(tag) or ExifTags.TAGS.get(tag) or f"Tag0x{tag:04X}"


def _text(value: object) -> str:
    if isinstance(value, bytes):
        # UserComment: an 8-byte character-code prefix, then the text
        for prefix, codec in ((b"ASCII\x00\x00\x00", "ascii"), (b"UNICODE\x00", "utf-16-be"), (b"\x00" * 8, "utf-8")):
            if value.startswith(prefix):
                return value[8:].decode(codec, "replace").rstrip("\x00")
        return value.decode("utf-8", "replace").rstrip("\x00")
    return str(value).rstrip("\x00").strip()


def exif_findings(tags: dict[str, object]) -> tuple[list[Finding], dict[str, str], dict[str, str]]:
    """Findings of parsed EXIF, its fields for the report (private ones as PRESENT) and the private values."""
    findings: list[Finding] = []
    shown: dict[str, str] = {}
    private: dict[str, str] = {}
    for key, value in tags.items():
        if key.startswith("GPS") or key in PRIVATE_TAGS.values():
            shown[key], private[f"EXIF {key}"] = PRESENT, one_line(_text(value))
        elif key != "MakerNote":
            shown[key] = one_line(_text(value))
    make, model = _text(tags.get("Make", "")), _text(tags.get("Model", ""))
    if make or model:
        camera = " ".join(model.split()) if make and model.lower().startswith(make.lower()) else f"{make} {model}"
        findings.append(Finding("EXIF", f"camera: {camera.strip()} (EXIF Make/Model, not signed)", CAMERA_ORIGIN))
    software = _text(tags.get("Software", ""))
    if software:
        findings.append(Finding("EXIF", f"software: {software}", software_strength(software)))
    comment = _text(tags["UserComment"]) if "UserComment" in tags else ""
    params = a1111_parameters(comment) if comment else {}
    if params:
        findings.append(Finding("EXIF", "Stable Diffusion WebUI generation parameters in UserComment: model "
                                        f"{params.get('Model') or params.get('Model hash') or 'unknown'}",
                                SAYS_GENERATED))
    dates = [f"{name} {_text(tags[name])}" for name in DATE_TAGS.values() if name in tags]
    if dates:
        findings.append(Finding("EXIF", "dates: " + ", ".join(dates), NEUTRAL))
    if any(k.startswith("GPS") for k in tags):
        findings.append(Finding("EXIF", f"GPS position: {PRESENT}", NEUTRAL))
    serials = [k for k in tags if k in PRIVATE_TAGS.values()]
    if serials:
        findings.append(Finding("EXIF", f"{', '.join(serials)}: {PRESENT}", NEUTRAL))
    return findings, shown, private

