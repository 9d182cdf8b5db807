"""Files with provenance made in the tests: generator text chunks, XMP / EXIF, C2PA manifests signed with a
throwaway certificate chain (made with `cryptography` at test time), and malformed metadata."""
from __future__ import annotations

import datetime
import io
import json
import struct
import zlib
from pathlib import Path

import c2pa
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
A1111 = ("a portrait of an astronaut, studio light\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, "
         "CFG scale: 7, Seed: 1234, Size: 256x256, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Version: v1.6.0")
COMFY_PROMPT = {"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20, "sampler_name": "euler"}},
                "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux1-dev.safetensors"}}}
COMFY_WORKFLOW = {"nodes": [{"id": 3, "type": "KSampler"}, {"id": 4, "type": "CheckpointLoaderSimple"}]}
SIGNER = "Throwaway Generator Signer"


def noise(side: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (side, side, 3), dtype=np.uint8)


def encode(rgb: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt, **kwargs)
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------------- PNG
def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with(rgb: np.ndarray, *chunks: bytes) -> bytes:
    """A PNG of `rgb` with `chunks` (made by png_chunk) right after IHDR."""
    png = encode(rgb, "PNG")
    cut = 8 + 25     # signature + IHDR chunk
    return png[:cut] + b"".join(chunks) + png[cut:]


def text(key: str, value: str) -> bytes:
    return png_chunk(b"tEXt", key.encode("latin-1") + b"\x00" + value.encode("latin-1", "replace"))


def itxt(key: str, value: bytes) -> bytes:
    return png_chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value)


def a1111_png(rgb: np.ndarray) -> bytes:
    return png_with(rgb, text("parameters", A1111))


def comfy_png(rgb: np.ndarray) -> bytes:
    return png_with(rgb, text("prompt", json.dumps(COMFY_PROMPT)), text("workflow", json.dumps(COMFY_WORKFLOW)))


# ------------------------------------------------------------------------------------------------------ JPEG
def xmp_packet(inner: str) -> bytes:
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'{inner}</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode("utf-8")


def digital_source_xmp(source_type: str = TRAINED) -> bytes:
    return xmp_packet('<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
                      'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Test Studio 2.0">'
                      f'<Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>'
                      '</rdf:Description>')


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """`jpeg` with one more APP1 segment right after SOI."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def exif_bytes(make: str = "Canon", model: str = "Canon EOS 5D Mark IV", software: str | None = None,
               gps: bool = False, serial: str | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = make, model
    if software:
        exif[0x0131] = software
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x9003] = "2024:05:01 10:00:00"
    if serial:
        exif_ifd[0xA431] = serial
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return exif.tobytes()


def camera_jpeg(rgb: np.ndarray, **exif) -> bytes:
    return encode(rgb, "JPEG", quality=92, exif=exif_bytes(**exif))


def xmp_exif_jpeg(rgb: np.ndarray) -> bytes:
    jpeg = encode(rgb, "JPEG", quality=90, exif=exif_bytes(software="Adobe Photoshop 25.0"))
    return with_app1(jpeg, b"http://ns.adobe.com/xap/1.0/\x00" + digital_source_xmp())


# ------------------------------------------------------------------------------------------------------ C2PA
def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Throwaway Test Org")])
    usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(**usage), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if not ca:
        builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def signed_c2pa(asset: bytes, mime: str = "image/jpeg", source_type: str = TRAINED) -> bytes:
    """`asset` with a C2PA manifest ("c2pa.created" by a generator, `source_type`) signed ES256 by a throwaway
    leaf certificate under a throwaway root: valid, and trusted by nobody."""
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert("Throwaway Root CA", root_key, None, root_key, ca=True)
    leaf = _cert(SIGNER, leaf_key, root.subject, root_key, ca=False)
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, root)).decode()
    manifest = {"claim_generator_info": [{"name": "Throwaway Image Generator", "version": "1.0"}],
                "title": "generated", "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type}]}}]}
    settings = c2pa.Settings.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
                                        "builder": {"thumbnail": {"enabled": False}}})
    dest = io.BytesIO()
    with c2pa.Signer.from_callback(lambda data: leaf_key.sign(data, ec.ECDSA(hashes.SHA256())),
                                   c2pa.C2paSigningAlg.ES256, chain, None) as signer:
        with c2pa.Builder(manifest, context=c2pa.Context(settings)) as builder:
            builder.sign(signer, mime, io.BytesIO(asset), dest)
    return dest.getvalue()


def tampered(signed_jpeg: bytes) -> bytes:
    """The signed JPEG with pixels changed after signing: bytes flipped inside the entropy-coded scan."""
    out = bytearray(signed_jpeg)
    scan = out.rindex(b"\xff\xda")
    for i in range(scan + 40, scan + 60):
        if out[i] not in (0x00, 0xFF) and out[i - 1] != 0xFF:
            out[i] ^= 0x10
    return bytes(out)


def broken_c2pa_store(jpeg: bytes) -> bytes:
    """A JPEG with an APP11 JUMBF segment that claims to be a C2PA store and holds garbage."""
    jumbf = b"JP\x00\x01\x00\x00\x00\x01" + struct.pack(">I", 64) + b"jumb" + struct.pack(">I", 40) + b"jumd" + \
        b"c2pa" + b"\x00\x11\x00\x10\x80\x00\xaa\x00\x38\x9b\x71" + b"c2pa\x00" + b"\xde\xad" * 8
    return jpeg[:2] + b"\xff\xeb" + struct.pack(">H", len(jumbf) + 2) + jumbf + jpeg[2:]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tagged_clip(path: Path, tags: dict[str, str], frames: int = 6, side: int = 64) -> Path:
    """A short MPEG-4 clip written with PyAV whose container carries `tags`."""
    import av

    with av.open(str(path), "w") as container:
        container.metadata.update(tags)
        stream = container.add_stream("mpeg4", rate=6)
        stream.width = stream.height = side
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(noise(side, seed=i), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path
