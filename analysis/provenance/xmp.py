"""XMP packets: IPTC digital source type, creator tool, edit history; private fields kept apart.

Parsed with the standard library only after refusing what makes XML hostile: DTDs and entity declarations
(entity expansion), packets over LIMITS.max_xmp_bytes, nesting deeper than LIMITS.max_depth.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .model import LIMITS, NEUTRAL, PRESENT, SAYS_EDITED, STRENGTHS, Finding, one_line
from .vocabulary import digital_source_type, software_strength

RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
PREFIXES = {
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://cipa.jp/exif/1.0/": "exifEX",
}
# Shown as PRESENT unless the user asks: positions, serial numbers, people's names and contacts.
PRIVATE = re.compile(r"GPS|Serial|Owner|^dc:creator$|^dc:rights$|CreatorContactInfo|photoshop:AuthorsPosition|"
                     r"Iptc4xmpExt:(PersonInImage|LocationShown|LocationCreated)|photoshop:(City|State|Country)|"
                     r"^photoshop:Credit$|Iptc4xmpCore:Location", re.IGNORECASE)
_HOSTILE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


class XmpError(ValueError):
    """An XMP packet that is not read, with the one-line reason."""


def _name(tag: str) -> str:
    if tag.startswith("{"):
        uri, local = tag[1:].split("}", 1)
        return f"{PREFIXES.get(uri, uri.rstrip('/#').rsplit('/', 1)[-1])}:{local}"
    return tag


def parse_xmp(packet: bytes) -> dict[str, list[str]]:
    """Property name ("prefix:name") -> its values, flattened; raises XmpError with a one-line reason."""
    if len(packet) > LIMITS.max_xmp_bytes:
        raise XmpError(f"{len(packet):,} bytes, over the {LIMITS.max_xmp_bytes:,}-byte limit; not read")
    if _HOSTILE.search(packet):
        raise XmpError("declares a DTD or entities (refused: entity expansion); not read")
    start = packet.find(b"<x:xmpmeta")
    if start < 0:
        start = packet.find(b"<rdf:RDF")
    end = packet.rfind(b"</x:xmpmeta>")
    body = packet[max(start, 0): end + len(b"</x:xmpmeta>") if end >= 0 else len(packet)]
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise XmpError(f"malformed XML ({exc})") from None
    out: dict[str, list[str]] = {}
    # iterative walk: (element, depth, the property it belongs to)
    stack: list[tuple[ET.Element, int, str | None]] = [(root, 0, None)]
    while stack:
        elem, depth, prop = stack.pop()
        if depth > LIMITS.max_depth:
            raise XmpError(f"nested deeper than {LIMITS.max_depth} levels; not read")
        name = _name(elem.tag)
        structural = elem.tag.startswith(RDF) or name in ("x:xmpmeta",) or elem.tag == "{adobe:ns:meta/}xmpmeta"
        own = prop if structural else name
        for attr, value in elem.attrib.items():
            if attr == f"{RDF}resource" and own:
                _add(out, own, value)
            elif not attr.startswith(RDF) and not attr.startswith("{http://www.w3.org/XML/1998/namespace}"):
                _add(out, _name(attr), value)
        if own and elem.text and elem.text.strip() and not len(elem):
            _add(out, own, elem.text)
        stack.extend((child, depth + 1, own) for child in reversed(elem))
    return out


def _add(out: dict[str, list[str]], key: str, value: str) -> None:
    if len(out) >= LIMITS.max_fields and key not in out:
        return
    values = out.setdefault(key, [])
    value = one_line(value)
    if value and value not in values and len(values) < 50:
        values.append(value)


def xmp_findings(props: dict[str, list[str]]) -> tuple[list[Finding], dict[str, str], dict[str, str]]:
    """Findings of parsed XMP, its fields for the report (private ones as PRESENT) and the private values."""
    findings: list[Finding] = []
    for value in props.get("Iptc4xmpExt:DigitalSourceType", []):
        code, strength, words = digital_source_type(value)
        findings.append(Finding("XMP", f"IPTC digital source type: {words} ({code}); not signed", strength))
    for tool in props.get("xmp:CreatorTool", [])[:1]:
        findings.append(Finding("XMP", f"creator tool: {tool}", software_strength(tool)))
    agents = [a for a in props.get("stEvt:softwareAgent", []) if a not in props.get("xmp:CreatorTool", [])]
    actions = props.get("stEvt:action", [])
    if actions or agents:
        text = "edit history: " + ", ".join(actions[:6]) + (f" with {', '.join(agents[:3])}" if agents else "")
        strength = max((software_strength(a) for a in agents), key=_rank, default=NEUTRAL)
        if strength == NEUTRAL and any(a not in ("created", "converted") for a in actions):
            strength = SAYS_EDITED
        findings.append(Finding("XMP", text, strength))
    shown: dict[str, str] = {}
    private: dict[str, str] = {}
    for key, values in props.items():
        joined = "; ".join(values)
        if PRIVATE.search(key):
            shown[key], private[f"XMP {key}"] = PRESENT, joined
        else:
            shown[key] = one_line(joined)
    if any(PRIVATE.search(k) and "GPS" in k for k in props):
        findings.append(Finding("XMP", f"GPS position: {PRESENT}", NEUTRAL))
    return findings, shown, private


def _rank(strength: str) -> int:
    """Higher for a stronger strength (earlier in STRENGTHS)."""
    return -STRENGTHS.index(strength)
