"""C2PA content credentials through the official c2pa-python bindings, offline.

Remote manifests and OCSP are never fetched (nothing leaves the machine). The native check runs in a daemon
thread and is abandoned after LIMITS.c2pa_timeout_s. No trust list is configured, so a signature that is valid
reads "signature valid but signer not trusted"; a manifest whose hashes do not match reads "content does not match
the manifest".
"""
from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import c2pa

from .model import LIMITS, NEUTRAL, SAYS_EDITED, SAYS_GENERATED, Finding, one_line
from .vocabulary import digital_source_type, software_strength

_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
UNTRUSTED = "signingCredential.untrusted"
# failure codes meaning the bytes changed after signing (the hard binding no longer holds)
_MISMATCH = ("dataHash.mismatch", "bmffHash.mismatch", "boxesHash.mismatch", "collectionHash.mismatch",
             "hashedURI.mismatch", "assertion.missing")
_EDIT_ACTIONS = {"c2pa.edited", "c2pa.cropped", "c2pa.resized", "c2pa.filtered", "c2pa.color_adjustments",
                 "c2pa.drawing", "c2pa.orientation", "c2pa.placed", "c2pa.removed", "c2pa.transcoded",
                 "c2pa.converted", "c2pa.repackaged", "c2pa.watermarked"}
_MIME = (
    (lambda h: h[:2] == b"\xff\xd8", "image/jpeg"),
    (lambda h: h[:8] == b"\x89PNG\r\n\x1a\n", "image/png"),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP", "image/webp"),
    (lambda h: h[4:8] == b"ftyp" and h[8:10] == b"qt", "video/quicktime"),
    (lambda h: h[4:8] == b"ftyp" and h[8:12] in (b"heic", b"heix", b"mif1"), "image/heic"),
    (lambda h: h[4:8] == b"ftyp" and h[8:11] == b"avi", "image/avif"),
    (lambda h: h[4:8] == b"ftyp", "video/mp4"),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*"), "image/tiff"),
    (lambda h: h[:4] == b"GIF8", "image/gif"),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI ", "video/avi"),
)


@dataclass
class C2paResult:
    findings: list[Finding] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    declares_generated: str | None = None


def _mime(head: bytes) -> str | None:
    return next((mime for test, mime in _MIME if test(head)), None)


def read_c2pa(source: Path | bytes) -> C2paResult:
    """The C2PA finding(s) of a file: none when it carries no manifest (the caller reports "no metadata")."""
    size = len(source) if isinstance(source, (bytes, bytearray)) else source.stat().st_size
    if size > LIMITS.max_c2pa_file_bytes:
        return C2paResult([Finding("C2PA", f"not checked: the file is over the {LIMITS.max_c2pa_file_bytes:,}-byte "
                                           "limit", NEUTRAL)])
    box: dict[str, Any] = {}
    worker = threading.Thread(target=_read_into, args=(source, box), daemon=True, name="c2pa-read")
    worker.start()
    worker.join(LIMITS.c2pa_timeout_s)
    if worker.is_alive():
        return C2paResult([Finding("C2PA", f"not checked: reading the manifest took over {LIMITS.c2pa_timeout_s:g} s",
                                   NEUTRAL)])
    if "crash" in box:
        raise box["crash"]
    if "error" in box:
        return C2paResult([Finding("C2PA", f"a manifest store is present but cannot be read ({box['error']})",
                                   NEUTRAL)])
    store = box.get("store")
    return interpret(store) if store else C2paResult()


def _read_into(source: Path | bytes, box: dict[str, Any]) -> None:
    try:
        stream: BinaryIO = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
        with stream:
            mime = _mime(stream.read(16))
            if mime is None:        # a format that cannot carry an embedded manifest
                return
            stream.seek(0)
            context = c2pa.Context(c2pa.Settings.from_dict(_SETTINGS))
            reader = c2pa.Reader.try_create(mime, stream, None, context)
            if reader is None:
                return
            with reader:
                box["store"] = json.loads(reader.json())
    except c2pa.C2paError.NotSupported:
        return
    except c2pa.C2paError as exc:
        box["error"] = one_line(exc, 200) or type(exc).__name__
    except (OSError, ValueError) as exc:
        box["error"] = one_line(exc, 200)
    except Exception as exc:  # noqa: BLE001 - handed to the calling thread, which reports it (never lost here)
        box["crash"] = exc


def _codes(results: list[dict[str, Any]] | None) -> list[tuple[str, str]]:
    return [(str(r.get("code", "")), one_line(r.get("explanation", ""), 160)) for r in results or []
            if isinstance(r, dict)]


def interpret(store: dict[str, Any]) -> C2paResult:
    """Findings of a manifest store as c2pa.Reader.json() gives it."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) or {}
    state = str(store.get("validation_state") or "")
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = _codes(results.get("failure")) or _codes(store.get("validation_status"))
    signer_info = active.get("signature_info") or {}
    signer = signer_info.get("common_name") or signer_info.get("issuer") or "an unnamed signer"
    if signer_info.get("issuer") and signer_info.get("issuer") != signer:
        signer = f"{signer} ({signer_info['issuer']})"
    generator = _claim_generator(active)
    actions = _actions(active)
    ingredients = [one_line(i.get("title") or i.get("format") or "untitled", 80)
                   for i in active.get("ingredients") or [] if isinstance(i, dict)]
    out = C2paResult(fields={"validation_state": state or None, "signer": signer, "claim_generator": generator,
                             "signed_at": signer_info.get("time"), "actions": [a for a, _ in actions],
                             "ingredients": ingredients[:20],
                             "validation_failures": [f"{c}: {e}" for c, e in failures][:20]})
    broken = [(c, e) for c, e in failures if c != UNTRUSTED]
    if broken:
        mismatch = [c for c, _ in broken if any(c.endswith(m) or m in c for m in _MISMATCH)]
        what = ("content does not match the manifest (changed after signing)" if mismatch
                else "manifest invalid")
        out.findings.append(Finding("C2PA", f"{what}: {'; '.join(c for c, _ in broken[:4])}; signed by {signer}",
                                    SAYS_EDITED))
        claims = _claims(actions)
        if claims:
            out.findings.append(Finding("C2PA", f"the broken manifest claims: {claims} (not verified)", NEUTRAL))
        return out
    trust = "signature valid, signer trusted" if state == "Trusted" else "signature valid but signer not trusted"
    head = f"signed by {signer}, claim generator {generator or 'unknown'}: {trust}"
    strength, what = NEUTRAL, "content credentials"
    for action, source_type in actions:
        if source_type:
            code, s, words = digital_source_type(source_type)
            if s == SAYS_GENERATED or (strength == NEUTRAL and s != NEUTRAL):
                strength, what = s, f"{words} ({action}, {code})"
            if s == SAYS_GENERATED:
                break
        elif action in _EDIT_ACTIONS and strength == NEUTRAL:
            strength, what = SAYS_EDITED, f"edited ({action})"
    if strength == NEUTRAL and generator and software_strength(generator) == SAYS_GENERATED:
        strength, what = SAYS_GENERATED, f"made by {generator}"
    out.findings.append(Finding("C2PA", f"{what}; {head}", strength))
    if ingredients:
        out.findings.append(Finding("C2PA", f"ingredients: {', '.join(ingredients[:5])}", NEUTRAL))
    if strength == SAYS_GENERATED:
        note = "signer not trusted" if "not trusted" in trust else "signer trusted"
        out.declares_generated = f"File declares: AI-generated (C2PA, signed by {signer}, {note})"
    return out


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info and isinstance(info[0], dict) and info[0].get("name"):
        version = info[0].get("version")
        return one_line(f"{info[0]['name']} {version}" if version else info[0]["name"], 120)
    return one_line(manifest["claim_generator"], 120) if manifest.get("claim_generator") else None


def _actions(manifest: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(action, digitalSourceType or None) of the manifest's c2pa.actions assertions."""
    out: list[tuple[str, str | None]] = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            if isinstance(action, dict) and action.get("action"):
                source = action.get("digitalSourceType")
                out.append((one_line(action["action"], 60), str(source) if source else None))
    return out[:50]


def _claims(actions: list[tuple[str, str | None]]) -> str:
    words = [digital_source_type(s)[2] if s else a for a, s in actions]
    return ", ".join(dict.fromkeys(words))
