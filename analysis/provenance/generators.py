"""Generation parameters that image generators write into text chunks (PNG tEXt/iTXt, JPEG comments, EXIF
UserComment): each known format is a parser in PARSERS, keyed by the chunk's keyword."""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from .containers import TextChunk
from .model import LIMITS, NEUTRAL, SAYS_GENERATED, Finding, one_line
from .vocabulary import software_strength

_A1111_LINE = re.compile(r"(?:^|, )([A-Za-z][\w ./-]*): (\"(?:[^\"\\]|\\.)*\"|[^,]*)")


class ChunkError(ValueError):
    """A text chunk that could not be read, with the one-line reason."""


def json_depth_ok(text: str) -> None:
    """Raises ChunkError when JSON text nests deeper than LIMITS.max_depth (checked before json.loads recurses)."""
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > LIMITS.max_depth:
                raise ChunkError(f"JSON nested deeper than {LIMITS.max_depth} levels; not read")
        elif ch in "]}":
            depth -= 1


def load_json(text: str) -> Any:
    json_depth_ok(text)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ChunkError(f"malformed JSON ({exc})") from None


def a1111_parameters(text: str) -> dict[str, str]:
    """Stable Diffusion WebUI (A1111, Forge, SD.Next) "parameters": prompt lines, "Negative prompt: ...", then one
    line "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model hash: ..., Model: ...".
    Empty when the text is not in that format."""
    lines = text.strip().splitlines()
    if not lines or "Steps: " not in lines[-1]:
        return {}
    fields = {m.group(1).strip(): m.group(2).strip().strip('"') for m in _A1111_LINE.finditer(lines[-1])}
    prompt, negative = [], []
    for line in lines[:-1]:
        (negative if negative or line.startswith("Negative prompt:") else prompt).append(line)
    fields["prompt"] = "\n".join(prompt)
    if negative:
        fields["negative prompt"] = "\n".join(negative).removeprefix("Negative prompt:").strip()
    return fields


def _a1111(text: str) -> tuple[str, dict[str, str]] | None:
    fields = a1111_parameters(text)
    if not fields:
        return None
    model = fields.get("Model") or fields.get("Model hash") or "unknown model"
    bits = [f"model {model}"] + [f"{k.lower()} {fields[k]}" for k in ("Sampler", "Steps", "Seed") if k in fields]
    return "Stable Diffusion WebUI generation parameters: " + ", ".join(bits), fields


def _comfy_prompt(text: str) -> tuple[str, dict[str, str]] | None:
    graph = load_json(text)
    if not isinstance(graph, dict):
        raise ChunkError("ComfyUI prompt is not a JSON object")
    nodes = [n for n in graph.values() if isinstance(n, dict) and "class_type" in n]
    if not nodes:
        return None
    fields: dict[str, str] = {"nodes": str(len(nodes))}
    for node in nodes:
        inputs = node.get("inputs") if isinstance(node.get("inputs"), dict) else {}
        for key in ("ckpt_name", "unet_name", "lora_name", "sampler_name", "seed", "steps"):
            value = inputs.get(key)
            if isinstance(value, (str, int, float)) and key not in fields:
                fields[key] = one_line(value)
    bits = [f"{k} {fields[k]}" for k in ("ckpt_name", "unet_name", "sampler_name", "seed") if k in fields]
    return f"ComfyUI workflow ({len(nodes)} nodes)" + (": " + ", ".join(bits) if bits else ""), fields


def _comfy_workflow(text: str) -> tuple[str, dict[str, str]] | None:
    graph = load_json(text)
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(nodes, list):
        return None
    return f"ComfyUI workflow graph ({len(nodes)} nodes)", {"nodes": str(len(nodes))}


def _json_generator(name: str) -> Callable[[str], tuple[str, dict[str, str]] | None]:
    def parse(text: str) -> tuple[str, dict[str, str]] | None:
        data = load_json(text)
        if not isinstance(data, dict):
            return None
        fields = {k: one_line(v) for k, v in list(data.items())[:40] if isinstance(v, (str, int, float))}
        model = fields.get("model") or fields.get("model_name") or fields.get("base_model") or fields.get("Model")
        return f"{name} generation parameters" + (f": model {model}" if model else ""), fields
    return parse


# keyword -> parser returning (one-line finding, fields) for a generator's parameters, None if not that format
PARSERS: dict[str, Callable[[str], tuple[str, dict[str, str]] | None]] = {
    "parameters": _a1111,
    "prompt": _comfy_prompt,
    "workflow": _comfy_workflow,
    "invokeai_metadata": _json_generator("InvokeAI"),
    "sd-metadata": _json_generator("InvokeAI"),
    "Dream": lambda text: ("InvokeAI (legacy) generation parameters", {"Dream": one_line(text)}),
    "fooocus_scheme": lambda text: ("Fooocus generation parameters", {"scheme": one_line(text)}),
    "generation_data": _json_generator("generation service"),
}
# keywords whose text is a software name (NovelAI writes "Software: NovelAI" and a JSON "Comment")
SOFTWARE_KEYS = ("Software", "Source", "Title", "Description")


def text_findings(chunks: list[TextChunk], where: str) -> tuple[list[Finding], dict[str, str]]:
    """Findings of text chunks (`where`: "PNG text", "JPEG comment", ...) and their fields for the report."""
    findings: list[Finding] = []
    fields: dict[str, str] = {}
    for chunk in chunks:
        if chunk.lossy:
            findings.append(Finding(where, f"{chunk.key!r} is not valid text in its declared encoding; "
                                           "read with replacement characters", NEUTRAL))
        parser = PARSERS.get(chunk.key)
        try:
            parsed = parser(chunk.text) if parser else None
        except ChunkError as exc:
            findings.append(Finding(where, f"{chunk.key!r}: {exc}", NEUTRAL))
            fields[chunk.key] = one_line(chunk.text)
            continue
        if parsed is not None:
            text, parsed_fields = parsed
            findings.append(Finding(where, text, SAYS_GENERATED))
            fields.update({f"{chunk.key}.{k}": one_line(v) for k, v in parsed_fields.items()})
            continue
        fields[chunk.key] = one_line(chunk.text)
        if chunk.key in SOFTWARE_KEYS and software_strength(chunk.text) != NEUTRAL:
            findings.append(Finding(where, f"{chunk.key}: {one_line(chunk.text, 120)}",
                                    software_strength(chunk.text)))
    return findings, fields
