"""analysis.faces: MTCNN on real photographs, box mapping after downscaled detection, batches, square crops."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from analysis.faces import Face, FaceFinder, square_crop
from analysis.media import load_image

# Where MTCNN puts the astronaut's face in skimage's 512 x 512 picture (checked by eye: forehead to chin).
ASTRONAUT_FACE = (180.0, 61.0, 268.0, 172.0)


@pytest.fixture(scope="module")
def finder() -> FaceFinder:
    return FaceFinder()


def _two_faces(astronaut_rgb: np.ndarray) -> np.ndarray:
    head = astronaut_rgb[:300, 100:350]
    return np.ascontiguousarray(np.concatenate([head, head[:, ::-1]], axis=1))


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def test_one_face_on_astronaut(finder, astronaut_rgb):
    faces = finder.detect(astronaut_rgb)
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, Face) and face.score > 0.99
    assert np.allclose(face.box, ASTRONAUT_FACE, atol=8)
    assert 90 < face.size < 130
    assert face.landmarks is not None and len(face.landmarks) == 5
    x1, y1, x2, y2 = face.box
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in face.landmarks)
    left_eye, right_eye = face.landmarks[0], face.landmarks[1]
    assert left_eye[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 10  # upright face, eyes level
    side = round(face.size * 1.3)
    assert face.crop.shape == (side, side, 3) and face.crop.dtype == np.uint8


def test_boxes_map_back_after_downscaled_detection(finder, astronaut_rgb):
    big = np.asarray(Image.fromarray(astronaut_rgb).resize((4000, 4000), Image.Resampling.BICUBIC))
    faces = finder.detect(big)  # detected at 1600 px, reported at 4000 px
    assert len(faces) == 1
    scaled_back = np.array(faces[0].box) * 512 / 4000
    assert np.allclose(scaled_back, ASTRONAUT_FACE, atol=8)
    landmarks_back = np.array(faces[0].landmarks) * 512 / 4000
    assert np.allclose(landmarks_back, finder.detect(astronaut_rgb)[0].landmarks, atol=4)
    # The crop comes from the 4000 px original, at its full resolution.
    assert faces[0].crop.shape[0] == round(faces[0].size * 1.3) > 1000


def test_exif_rotated_photo_is_found_upright(finder, astronaut_rgb, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    Image.fromarray(astronaut_rgb).transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif.tobytes())
    loaded = load_image(path)
    faces = finder.detect(loaded.rgb)
    assert len(faces) == 1
    assert np.allclose(faces[0].box, ASTRONAUT_FACE, atol=8)
    # Without the EXIF rotation the face is on its side: its box is elsewhere.
    sideways = finder.detect(np.asarray(Image.open(path)))
    assert all(not np.allclose(f.box, ASTRONAUT_FACE, atol=30) for f in sideways)


def test_no_face_in_noise_or_gradient(finder):
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    gradient = np.repeat(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], 480, 0).repeat(3, 2)
    assert finder.detect(noise) == []
    assert finder.detect(np.ascontiguousarray(gradient)) == []


def test_two_faces_side_by_side(finder, astronaut_rgb):
    faces = finder.detect(_two_faces(astronaut_rgb))
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    centres = sorted(_centre(f.box)[0] for f in faces)
    assert centres[0] < 250 < centres[1]
    limited = FaceFinder(max_faces=1).detect(_two_faces(astronaut_rgb))
    assert len(limited) == 1 and limited[0].score == pytest.approx(faces[0].score)


def test_size_and_score_filters(astronaut_rgb):
    assert FaceFinder(min_face_size=200).detect(astronaut_rgb) == []    # the face is ~110 px
    assert len(FaceFinder(min_face_size=100).detect(astronaut_rgb)) == 1
    assert FaceFinder(face_threshold=1.01).detect(astronaut_rgb) == []


@pytest.mark.parametrize("shape", [(8, 8, 3), (11, 500, 3), (30, 30, 3), (1, 1, 3)])
def test_tiny_images_give_no_faces(finder, shape):
    assert finder.detect(np.full(shape, 128, np.uint8)) == []


def test_grayscale_and_rgba_arrays_accepted(finder, astronaut_rgb):
    gray = np.asarray(Image.fromarray(astronaut_rgb).convert("L"))
    assert len(finder.detect(gray)) == 1
    rgba = np.dstack([astronaut_rgb, np.full(astronaut_rgb.shape[:2], 255, np.uint8)])
    assert len(finder.detect(rgba)) == 1
    with pytest.raises(ValueError):
        finder.detect(astronaut_rgb.astype(np.float32))


def test_detect_many_batches_equal_sizes(finder, astronaut_rgb, monkeypatch):
    mirrored = np.ascontiguousarray(astronaut_rgb[:, ::-1])
    noise = np.random.default_rng(1).integers(0, 256, astronaut_rgb.shape, dtype=np.uint8)
    calls: list[int] = []
    original = finder._mtcnn.detect

    def counting(batch, landmarks=False):
        calls.append(len(batch))
        return original(batch, landmarks=landmarks)

    monkeypatch.setattr(finder._mtcnn, "detect", counting)
    batched = finder.detect_many([astronaut_rgb, noise, mirrored])
    assert calls == [3]                                  # one MTCNN call for three equal-size frames
    assert [len(faces) for faces in batched] == [1, 0, 1]
    assert np.allclose(batched[0][0].box, finder.detect(astronaut_rgb)[0].box, atol=0.5)
    x1, _, x2, _ = batched[0][0].box
    mx1, _, mx2, _ = batched[2][0].box
    assert abs((512 - x2) - mx1) < 6 and abs((512 - x1) - mx2) < 6   # the mirrored face is mirrored

    calls.clear()
    mixed = finder.detect_many([astronaut_rgb, _two_faces(astronaut_rgb), np.zeros((5, 5, 3), np.uint8), noise])
    assert [len(faces) for faces in mixed] == [1, 2, 0, 0]
    assert sorted(calls) == [1, 2]                       # 512 px pair batched, 300x500 alone, tiny skipped
    assert finder.detect_many([]) == []


def test_detect_is_thread_safe(finder, astronaut_rgb):
    expected = finder.detect(astronaut_rgb)[0].box
    results: list = []
    errors: list = []

    def work():
        try:
            results.append(finder.detect(astronaut_rgb)[0].box)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(np.allclose(box, expected) for box in results)


# ---- square_crop -------------------------------------------------------------------------------------
def test_square_crop_inside_image():
    rgb = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    crop = square_crop(rgb, (40, 30, 60, 70), margin=0.0)   # 20 wide, 40 tall
    assert crop.shape == (40, 40, 3)
    assert np.array_equal(crop, rgb[30:70, 30:70])           # centred, widened to a square, never stretched
    assert square_crop(rgb, (40, 30, 60, 70), margin=0.5).shape == (60, 60, 3)


def test_square_crop_pads_with_zeros_at_the_border():
    rgb = np.full((50, 50, 3), 200, np.uint8)
    crop = square_crop(rgb, (0, 0, 20, 20), margin=1.0)      # 40 px square centred on (10, 10)
    assert crop.shape == (40, 40, 3)
    assert (crop[:10, :] == 0).all() and (crop[:, :10] == 0).all()
    assert (crop[10:, 10:] == 200).all()
    outside = square_crop(rgb, (100, 100, 120, 120), margin=0.0)
    assert outside.shape == (20, 20, 3) and not outside.any()


def test_shared_ffhq_photos_have_one_face(finder, shared_data):
    paths = sorted((shared_data / "faces" / "ffhq_stylegan2" / "real").glob("*.jpg"))[:6]
    assert paths
    for path in paths:
        rgb = load_image(path).rgb
        faces = finder.detect(rgb)
        assert len(faces) == 1, path.name
        cx, cy = _centre(faces[0].box)
        assert 100 < cx < 284 and 80 < cy < 300, path.name   # FFHQ faces are centred
        assert faces[0].size > 150
