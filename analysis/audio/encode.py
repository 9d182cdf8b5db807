"""Encode float samples with PyAV (codec round trips for training augmentation, audio files for tests)."""
from __future__ import annotations

import io

import av
import numpy as np

# codec -> container format PyAV writes it in
CONTAINERS = {"pcm_s16le": "wav", "flac": "flac", "libmp3lame": "mp3", "aac": "adts", "libopus": "ogg",
              "libvorbis": "ogg"}
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


def encode_audio(samples: np.ndarray, rate: int, codec: str = "pcm_s16le", bitrate: int | None = None,
                 container: str | None = None, frame_size: int = 1024) -> bytes:
    """`samples` (N,) mono or (C, N) channels-first floats in [-1, 1] -> the bytes of an audio file."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    channels = x.shape[0]
    if channels not in LAYOUTS:
        raise ValueError(f"cannot encode {channels} channels (choose {sorted(LAYOUTS)})")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container or CONTAINERS.get(codec, "matroska")) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = LAYOUTS[channels]
        if bitrate:
            stream.bit_rate = int(bitrate)
        for i in range(0, x.shape[1], frame_size):
            packed = np.ascontiguousarray(x[:, i:i + frame_size].T.reshape(1, -1))   # interleaved "flt"
            frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=LAYOUTS[channels])
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()
