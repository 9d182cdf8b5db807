"""Provenance beside the pixels: what a file says of itself (C2PA content credentials, XMP / IPTC, generator
parameters in text chunks, EXIF, JPEG quantisation, video container tags), as one-line findings with a strength.

It never changes a verdict; a report's headline notes when the file declares itself generated.
"""
from .model import (CAMERA_ORIGIN, LIMITS, NEUTRAL, NO_METADATA, PRESENT, SAYS_EDITED, SAYS_GENERATED, STRENGTHS,
                    Finding, Limits, Provenance)
from .reader import read_provenance

__all__ = ["CAMERA_ORIGIN", "LIMITS", "NEUTRAL", "NO_METADATA", "PRESENT", "SAYS_EDITED", "SAYS_GENERATED",
           "STRENGTHS", "Finding", "Limits", "Provenance", "read_provenance"]
