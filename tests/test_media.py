"""analysis.media: content sniffing, safe decoding, every colour mode, EXIF orientation, bad input."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageFile, features

from analysis.errors import MediaError
from analysis.media import LoadedImage, estimate_jpeg_quality, load_image, sniff_kind, to_rgb


def _encode(image: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with one tiny IDAT: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def _video(fmt: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def _assert_one_line_error(source, *words: str, **kwargs) -> str:
    with pytest.raises(MediaError) as info:
        load_image(source, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message.lower(), message
    return message


# ------------------------------------------------------------------------------------------------- sniffing
@pytest.mark.parametrize("fmt,params", [("JPEG", {}), ("PNG", {}), ("GIF", {}), ("BMP", {}), ("TIFF", {}),
                                        ("WEBP", {}), ("ICO", {}), ("PPM", {}), ("JPEG2000", {}), ("QOI", {})])
def test_sniff_images_from_content(astronaut_rgb, fmt, params):
    if fmt in ("JPEG2000",) and not features.check("jpg_2000"):
        pytest.skip("no JPEG 2000 encoder in this Pillow")
    image = Image.fromarray(astronaut_rgb[:64, :64])
    if fmt == "QOI" and "QOI" not in Image.SAVE:
        pytest.skip("no QOI encoder in this Pillow")
    assert sniff_kind(_encode(image, fmt, **params)) == "image"


def test_sniff_avif_and_heic_brands(astronaut_rgb):
    if features.check("avif"):
        assert sniff_kind(_encode(Image.fromarray(astronaut_rgb[:64, :64]), "AVIF")) == "image"
    heic = struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0" + b"mif1heic"
    assert sniff_kind(heic + b"\0" * 64) == "image"
    mif1 = struct.pack(">I", 24) + b"ftypmif1" + b"\0\0\0\0" + b"mif1heic"
    assert sniff_kind(mif1 + b"\0" * 64) == "image"
    m4a = struct.pack(">I", 24) + b"ftypM4A " + b"\0\0\0\0" + b"M4A isom"
    assert sniff_kind(m4a + b"\0" * 64) == "audio"  # an M4A song is audio, not a video


@pytest.mark.parametrize("fmt,codec", [("mp4", "mpeg4"), ("mov", "mpeg4"), ("matroska", "mpeg4"),
                                       ("webm", "libvpx"), ("avi", "mpeg4"), ("mpegts", "mpeg2video"),
                                       ("flv", "flv"), ("asf", "wmv2")])
def test_sniff_videos_from_content(fmt, codec):
    assert sniff_kind(_video(fmt, codec)) == "video"


def test_sniff_ignores_the_file_name(tmp_path, astronaut_rgb):
    fake_video = tmp_path / "holiday.mp4"
    fake_video.write_bytes(_encode(Image.fromarray(astronaut_rgb), "JPEG"))
    fake_photo = tmp_path / "photo.jpg"
    fake_photo.write_bytes(_video("matroska", "mpeg4"))
    assert sniff_kind(fake_video) == "image"
    assert sniff_kind(str(fake_photo)) == "video"
    assert load_image(fake_video).format == "JPEG"
    with pytest.raises(MediaError, match="is a video"):
        load_image(fake_photo)


def test_sniff_unknown_text_and_empty(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("just some notes, not a picture\n" * 10)
    assert sniff_kind(text) is None
    assert sniff_kind(b"") is None
    assert sniff_kind(b"\x00" * 100) is None
    with pytest.raises(MediaError, match="not found"):
        sniff_kind(tmp_path / "missing.png")


def test_sniff_real_shared_videos(shared_data):
    videos = sorted((shared_data / "videos").glob("*.mp4"))
    assert videos
    assert all(sniff_kind(v) == "video" for v in videos)


# ------------------------------------------------------------------------------------------------- loading
def test_load_jpeg_path_metadata(tmp_path, astronaut_rgb):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut_rgb).save(path, quality=92)
    loaded = load_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.rgb.shape == (512, 512, 3) and loaded.rgb.dtype == np.uint8
    assert (loaded.width, loaded.height, loaded.format) == (512, 512, "JPEG")
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.jpeg_quality == 92
    assert not loaded.exif_rotated and loaded.notes == []
    assert np.abs(loaded.rgb.astype(int) - astronaut_rgb).mean() < 3  # decoded, not garbage
    assert load_image(path.read_bytes()).sha256 == loaded.sha256     # bytes and path agree


def test_exif_orientation_is_applied(tmp_path, astronaut_rgb):
    stored = Image.fromarray(astronaut_rgb).transpose(Image.Transpose.ROTATE_90)  # lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif.tobytes())
    raw = np.asarray(Image.open(path))
    assert np.abs(raw.astype(int) - astronaut_rgb).mean() > 30   # as stored it is not upright
    loaded = load_image(path)
    assert loaded.exif_rotated
    assert np.abs(loaded.rgb.astype(int) - astronaut_rgb).mean() < 3
    assert any("EXIF" in note for note in loaded.notes)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (40, 30), color) for color in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    loaded = load_image(data)
    assert loaded.rgb.shape == (30, 40, 3)
    assert tuple(loaded.rgb[15, 20]) == (255, 0, 0)
    assert any("3 frames" in note for note in loaded.notes)


# ---- colour modes ------------------------------------------------------------------------------------
def test_grayscale_and_bilevel(astronaut_rgb):
    gray = Image.fromarray(astronaut_rgb).convert("L")
    loaded = load_image(_encode(gray, "PNG"))
    assert loaded.rgb.shape == (512, 512, 3) and loaded.rgb.dtype == np.uint8
    assert np.array_equal(loaded.rgb[..., 0], np.asarray(gray)) and np.array_equal(loaded.rgb[..., 0], loaded.rgb[..., 2])
    bilevel = load_image(_encode(gray.convert("1"), "PNG")).rgb
    assert set(np.unique(bilevel)) == {0, 255}


def test_alpha_is_composited_over_white():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 255)        # opaque red
    rgba[:, 10:] = (0, 0, 0, 0)            # fully transparent
    rgba[0, 0] = (0, 0, 0, 128)            # half transparent black
    loaded = load_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(loaded.rgb[5, 5]) == (255, 0, 0)
    assert tuple(loaded.rgb[5, 15]) == (255, 255, 255)
    assert 120 <= loaded.rgb[0, 0, 0] <= 135
    assert any("white" in note for note in loaded.notes)

    la = Image.fromarray(rgba, "RGBA").convert("LA")
    assert tuple(load_image(_encode(la, "PNG")).rgb[5, 15]) == (255, 255, 255)


def test_palette_with_and_without_transparency(astronaut_rgb):
    palette = Image.fromarray(astronaut_rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    loaded = load_image(_encode(palette, "PNG"))
    assert loaded.rgb.shape == (512, 512, 3)
    assert np.abs(loaded.rgb.astype(int) - astronaut_rgb).mean() < 12

    small = Image.new("P", (4, 4), 0)
    small.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    small.putpixel((1, 1), 1)
    data = _encode(small, "PNG", transparency=0)
    rgb = load_image(data).rgb
    assert tuple(rgb[0, 0]) == (255, 255, 255) and tuple(rgb[1, 1]) == (0, 200, 0)


def test_16_bit_gradient_uses_full_8_bit_range():
    gradient = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (8, 1))
    image = Image.fromarray(gradient)
    data = _encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    rgb = load_image(data).rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 256, 3)
    row = rgb[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert np.all(np.diff(row) >= 0)
    assert len(np.unique(row)) >= 250                    # scaled, not clipped to a handful of values
    assert abs(row.mean() - 127.5) < 2


def test_32_bit_and_float_images_are_scaled():
    ints = Image.fromarray(np.arange(0, 100, dtype=np.int32).reshape(10, 10) * 1000, "I")
    rgb = load_image(_encode(ints, "TIFF")).rgb
    assert rgb.min() == 0 and rgb.max() == 255
    eight_bit_in_i = Image.fromarray(np.full((4, 4), 200, np.uint8)).convert("I")
    assert load_image(_encode(eight_bit_in_i, "TIFF")).rgb[0, 0, 0] == 200
    floats = Image.fromarray(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10), "F")
    rgb = load_image(_encode(floats, "TIFF")).rgb
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255


def test_cmyk_and_ycbcr(astronaut_rgb):
    cmyk = Image.fromarray(astronaut_rgb).convert("CMYK")
    for fmt in ("JPEG", "TIFF"):
        loaded = load_image(_encode(cmyk, fmt))
        assert loaded.rgb.shape == (512, 512, 3) and loaded.rgb.dtype == np.uint8
        assert np.abs(loaded.rgb.astype(int) - astronaut_rgb).mean() < 6, fmt
    broken_profile = load_image(_encode(cmyk, "JPEG", icc_profile=b"not a real profile"))
    assert np.abs(broken_profile.rgb.astype(int) - astronaut_rgb).mean() < 6
    assert any("profile" in note for note in broken_profile.notes)
    ycbcr = to_rgb(Image.fromarray(astronaut_rgb).convert("YCbCr"))
    assert ycbcr.mode == "RGB" and np.abs(np.asarray(ycbcr).astype(int) - astronaut_rgb).mean() < 3


# ---- bad input ---------------------------------------------------------------------------------------
def test_missing_path(tmp_path):
    _assert_one_line_error(tmp_path / "nope.jpg", "not found")


def test_directory(tmp_path):
    _assert_one_line_error(tmp_path, "directory")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path, astronaut_rgb):
    path = tmp_path / "locked.jpg"
    Image.fromarray(astronaut_rgb).save(path)
    path.chmod(0)
    try:
        _assert_one_line_error(path, "permission")
    finally:
        path.chmod(0o644)


def test_permission_denied_message(tmp_path, monkeypatch, astronaut_rgb):
    # Runs as root too: the OS refusal is simulated where the loader opens the file.
    path = tmp_path / "locked.jpg"
    Image.fromarray(astronaut_rgb).save(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("analysis.media.open", refuse, raising=False)
    _assert_one_line_error(path, "permission denied")


def test_zero_bytes(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    _assert_one_line_error(empty, "empty")
    _assert_one_line_error(b"", "empty")


def test_text_file(tmp_path):
    text = tmp_path / "readme.png"
    text.write_text("This is not a photograph.\nIt is a text file with an image extension.\n")
    _assert_one_line_error(text, "text")
    _assert_one_line_error(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "svg")


def test_random_bytes_are_not_an_image():
    _assert_one_line_error(np.random.default_rng(0).integers(1, 255, 4096, dtype=np.uint8).tobytes(), "not an image")


def test_video_given_to_image_loader():
    _assert_one_line_error(_video("mp4", "mpeg4"), "video")


def test_truncated_jpeg(astronaut_rgb):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    data = _encode(Image.fromarray(astronaut_rgb), "JPEG", quality=90)
    _assert_one_line_error(data[: len(data) // 2], "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_corrupt_png(astronaut_rgb):
    data = bytearray(_encode(Image.fromarray(astronaut_rgb), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 100:start + 400] = bytes(300)  # damage the compressed pixels; the CRC no longer matches
    _assert_one_line_error(bytes(data), "corrupt")


def test_decompression_bomb_header():
    message = _assert_one_line_error(_png_header_only(50000, 50000), "too large", "decompression bomb")
    assert "2,500,000,000" in message


def test_max_pixels_checked_before_decoding(astronaut_rgb):
    # The header says 512x512: refused from the header, although the pixels would decode fine.
    message = _assert_one_line_error(_encode(Image.fromarray(astronaut_rgb), "PNG"), "too large", max_pixels=100_000)
    assert "512x512" in message
    # A bomb header under Pillow's own limit but over ours is refused before Pillow decodes (no "truncated").
    message = _assert_one_line_error(_png_header_only(9000, 9000), "too large", max_pixels=50_000_000)
    assert "9000x9000" in message


def test_loaded_shared_photos(shared_data):
    paths = sorted((shared_data / "faces" / "ffhq_stylegan2" / "real").glob("*.jpg"))[:3]
    assert paths
    for path in paths:
        loaded = load_image(path)
        assert loaded.rgb.shape == (384, 384, 3) and loaded.format == "JPEG"
        assert loaded.jpeg_quality == 90  # the README: saved at quality 90
        assert estimate_jpeg_quality(Path(path)) == 90
