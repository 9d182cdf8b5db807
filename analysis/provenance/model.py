"""What provenance reading returns: one-line findings with a strength, the fields they came from, and the limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# How strongly a finding speaks about the file's origin. Missing metadata is NO_METADATA and never evidence
# either way: most platforms strip it.
SAYS_GENERATED = "says generated"
SAYS_EDITED = "says edited"
CAMERA_ORIGIN = "camera origin claimed"
NEUTRAL = "neutral"
NO_METADATA = "no metadata"
STRENGTHS = (SAYS_GENERATED, SAYS_EDITED, CAMERA_ORIGIN, NEUTRAL, NO_METADATA)

# Shown instead of a private value (GPS position, serial numbers, owner names) unless the user asks for it.
PRESENT = "present (hidden)"


@dataclass(frozen=True)
class Limits:
    """Hard limits of provenance reading: metadata over them is reported in one line and not read."""
    max_c2pa_file_bytes: int = 2 * 1024**3      # the C2PA library hashes the whole file to check the binding
    c2pa_timeout_s: float = 15.0                # after this the C2PA check is abandoned (its thread is left)
    max_scan_bytes: int = 64 * 1024**2          # image containers are walked within this many bytes
    max_segment_bytes: int = 4 * 1024**2        # one metadata block (EXIF, XMP, text chunk after inflating)
    max_xmp_bytes: int = 1024**2
    max_text_chunks: int = 64
    max_depth: int = 32                         # XML / JSON nesting
    max_fields: int = 400                       # raw fields kept per source
    max_value_chars: int = 300                  # one raw field's value, clipped
    max_video_tags: int = 200


LIMITS = Limits()


@dataclass
class Finding:
    source: str       # "C2PA", "XMP", "PNG text", "EXIF", "JPEG", "container", "file"
    text: str         # one line, for a person
    strength: str     # one of STRENGTHS

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ValueError(f"unknown provenance strength {self.strength!r}")
        self.text = one_line(self.text, 400)


@dataclass
class Provenance:
    findings: list[Finding] = field(default_factory=list)
    declares_generated: str | None = None        # the headline note: "File declares: AI-generated (C2PA, ...)"
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)   # source -> raw fields (private: PRESENT)
    # The hidden values themselves; left out of to_dict / JSON / HTML, shown only when the user asks.
    private: dict[str, str] = field(default_factory=dict, metadata={"json": False})

    def strongest(self) -> str:
        """The first strength, in STRENGTHS order, that any finding has (NO_METADATA when there is none)."""
        present = {f.strength for f in self.findings}
        return next((s for s in STRENGTHS if s in present), NO_METADATA)


def one_line(value: Any, limit: int = LIMITS.max_value_chars) -> str:
    """`value` as printable text on one line, clipped to `limit` characters."""
    text = value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
