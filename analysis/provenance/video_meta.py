"""Container metadata of a video (encoder, creation time, handler names, device tags), read with PyAV like
video.decode: headers only, no frame is decoded."""
from __future__ import annotations

import re
from pathlib import Path

import av

from .model import CAMERA_ORIGIN, LIMITS, NEUTRAL, PRESENT, Finding, one_line
from .vocabulary import software_strength

PRIVATE = re.compile(r"location|gps|serial|owner|author|artist|copyright", re.IGNORECASE)
MAKE_KEYS = ("com.apple.quicktime.make", "make", "com.android.manufacturer")
MODEL_KEYS = ("com.apple.quicktime.model", "model", "com.android.model")
SOFTWARE_KEYS = ("encoder", "com.apple.quicktime.software", "software", "encoded_by", "comment", "description",
                 "title", "com.apple.quicktime.description")


class ContainerError(ValueError):
    """Container metadata that could not be read, with the one-line reason."""


def read_container_tags(path: Path) -> dict[str, str]:
    """"format:key" and "stream<i>:key" -> value, at most LIMITS.max_video_tags of them."""
    tags: dict[str, str] = {}
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            tags["format:container"] = one_line(container.format.name)
            for key, value in (container.metadata or {}).items():
                tags[f"format:{one_line(key, 80)}"] = one_line(value)
            for i, stream in enumerate(container.streams):
                for key, value in (stream.metadata or {}).items():
                    tags[f"stream{i}:{one_line(key, 80)}"] = one_line(value)
                if len(tags) >= LIMITS.max_video_tags:
                    break
    except (av.error.FFmpegError, OSError, UnicodeError) as exc:
        raise ContainerError(one_line(exc, 160)) from None
    return dict(list(tags.items())[: LIMITS.max_video_tags])


def container_findings(tags: dict[str, str]) -> tuple[list[Finding], dict[str, str], dict[str, str]]:
    findings: list[Finding] = []
    shown: dict[str, str] = {}
    private: dict[str, str] = {}
    for key, value in tags.items():
        if PRIVATE.search(key.split(":", 1)[1]):
            shown[key], private[f"container {key}"] = PRESENT, value
        else:
            shown[key] = value
    by_name: dict[str, list[str]] = {}
    for key, value in tags.items():
        by_name.setdefault(key.split(":", 1)[1].lower(), []).append(value)
    make = next((by_name[k][0] for k in MAKE_KEYS if k in by_name), "")
    model = next((by_name[k][0] for k in MODEL_KEYS if k in by_name), "")
    if make or model:
        findings.append(Finding("container", f"device: {make} {model}".strip() + " (container tags, not signed)",
                                CAMERA_ORIGIN))
    for key in SOFTWARE_KEYS:
        for value in dict.fromkeys(by_name.get(key, [])):
            strength = software_strength(value)
            if key == "encoder" or strength != NEUTRAL:
                ffmpeg = " (FFmpeg: written or re-encoded by software)" if value.startswith("Lav") else ""
                findings.append(Finding("container", f"{key}: {value}{ffmpeg}", strength))
    created = by_name.get("creation_time") or by_name.get("com.apple.quicktime.creationdate")
    if created:
        findings.append(Finding("container", f"creation time: {created[0]}", NEUTRAL))
    handlers = list(dict.fromkeys(by_name.get("handler_name", [])))
    if handlers:
        findings.append(Finding("container", f"handler names: {', '.join(handlers[:4])}", NEUTRAL))
    if any("location" in k.lower() or "gps" in k.lower() for k in tags):
        findings.append(Finding("container", f"GPS position: {PRESENT}", NEUTRAL))
    return findings, shown, private
