"""Audio in the core: decoding files and video sound tracks to 16 kHz mono (PyAV), windows, voice activity,
the audio detectors' scores, audio reports and the fusion of a video's faces and voice. No UI import."""
