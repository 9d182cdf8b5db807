"""Augmentations, self-blended images and fault injection (train/augment.py)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from train import augment as aug
from train.synthetic import texture


@pytest.fixture
def img() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = texture(rng, 96).astype(np.float32)
    # some fine detail so blur / downscaling / JPEG have something to remove
    detail = cv2.resize(rng.normal(0, 20, (48, 48, 3)).astype(np.float32), (96, 96), interpolation=cv2.INTER_NEAREST)
    return np.clip(base + detail, 0, 255).astype(np.uint8)


def _hf_energy(x: np.ndarray) -> float:
    return float(np.abs(cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)).mean())


ALL = [aug.HorizontalFlip(), aug.ColorJitter(), aug.JpegCompression(), aug.DownUpScale(), aug.GaussianBlur(),
       aug.GaussianNoise(), aug.Cutout(), aug.InputNoise(5.0), aug.build_augmenter("strong")]


@pytest.mark.parametrize("transform", ALL, ids=lambda t: type(t).__name__)
def test_shape_dtype_kept_and_image_changed(transform, img):
    out = transform(img.copy(), np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)


def test_flip_mirrors(img):
    out = aug.HorizontalFlip()(img, np.random.default_rng(0))
    assert np.array_equal(out[:, ::-1], img)


def test_color_jitter_moves_colour_statistics(img):
    t = aug.ColorJitter(brightness=0.4, contrast=0, saturation=0, hue=0)
    means = [t(img, np.random.default_rng(s)).mean() for s in range(6)]
    assert max(means) - min(means) > 10  # brightness factors differ between draws
    gray = aug.ColorJitter(brightness=0, contrast=0, saturation=0.999, hue=0)
    # saturation factor near 0 or 2: the channel spread changes
    spreads = [gray(img, np.random.default_rng(s)).std(axis=2).mean() for s in range(6)]
    assert max(spreads) > 1.3 * img.std(axis=2).mean() or min(spreads) < 0.7 * img.std(axis=2).mean()


def test_jpeg_quality_controls_the_error(img):
    err = {q: np.abs(aug.jpeg(img, q).astype(int) - img).mean() for q in (20, 95)}
    assert err[20] > err[95] > 0
    assert np.abs(aug.JpegCompression((30, 30))(img, np.random.default_rng(0)).astype(int) - aug.jpeg(img, 30)).max() == 0


def test_blur_and_downscale_remove_high_frequencies(img):
    rng = np.random.default_rng(0)
    base = _hf_energy(img)
    assert _hf_energy(aug.GaussianBlur((1.5, 1.5))(img, rng)) < 0.6 * base
    assert _hf_energy(aug.DownUpScale((0.4, 0.4))(img, rng)) < 0.8 * base


def test_noise_has_the_asked_std():
    flat = np.full((128, 128, 3), 128, np.uint8)
    out = aug.GaussianNoise((8.0, 8.0))(flat, np.random.default_rng(0)).astype(np.float64) - 128
    assert out.std() == pytest.approx(8.0, rel=0.05) and abs(out.mean()) < 0.2


def test_cutout_fills_one_rectangle_with_the_mean(img):
    out = aug.Cutout((0.3, 0.3))(img, np.random.default_rng(0))
    changed = np.any(out != img, axis=2)
    ys, xs = np.nonzero(changed)
    box = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    assert (box == img.reshape(-1, 3).mean(axis=0).round()).all()
    assert changed.sum() <= box.shape[0] * box.shape[1] and box.shape[0] == int(96 * 0.3)


def test_augmenter_levels_and_reproducibility(img):
    a, b = aug.build_augmenter("default"), aug.build_augmenter("default")
    assert np.array_equal(a(img, np.random.default_rng(5)), b(img, np.random.default_rng(5)))
    assert np.array_equal(aug.build_augmenter("none")(img, np.random.default_rng(0)), img)
    with pytest.raises(ValueError, match="unknown augmentation level"):
        aug.build_augmenter("extreme")


@pytest.mark.parametrize("seed", range(5))
def test_self_blend_changes_pixels_only_inside_the_mask(img, seed):
    out, mask = aug.SelfBlend()(img, np.random.default_rng(seed))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert mask.shape == img.shape[:2] and mask.min() >= 0 and mask.max() <= 1
    changed = np.any(out != img, axis=2)
    assert changed.any()
    assert not (changed & (mask == 0)).any()  # nothing outside the mask moves
    inside = mask > 0.5 * mask.max()  # the blend ratio scales the whole mask
    assert 0.05 < inside.mean() < 0.8       # a face-sized region around the centre
    assert mask[48, 48] > 0 and mask[0, 0] == 0 and mask[95, 95] == 0


def test_self_blend_uses_landmarks_when_given(img):
    pts = np.array([[30, 35], [66, 35], [48, 55], [34, 72], [62, 72]], np.float32)
    mask = aug.SelfBlend(elastic=0, hull_expand=(1.0, 1.0), blur=(0.01, 0.01)).mask(96, 96, np.random.default_rng(0), pts)
    assert mask[55, 48] > 0 and mask[10, 48] == 0 and mask[55, 10] == 0
    ys, xs = np.nonzero(mask > 0)
    assert 25 <= xs.min() and xs.max() <= 71 and 30 <= ys.min() and ys.max() <= 77


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 1.0])
def test_flip_labels_flips_the_stated_fraction(fraction):
    labels = np.array([0, 1] * 100)
    new, idx = aug.flip_labels(labels, fraction, np.random.default_rng(0))
    assert len(idx) == round(fraction * 200) == int((new != labels).sum())
    assert np.array_equal(new[idx], 1 - labels[idx])
    with pytest.raises(ValueError):
        aug.flip_labels(labels, 1.5, np.random.default_rng(0))


def test_shuffle_labels_keeps_counts_breaks_the_link():
    labels = np.array([0] * 500 + [1] * 500)
    out = aug.shuffle_labels(labels, np.random.default_rng(0))
    assert out.sum() == 500
    assert 0.4 < (out == labels).mean() < 0.6


def test_input_noise_zero_is_identity(img):
    assert aug.InputNoise(0)(img, np.random.default_rng(0)) is img


def test_reframe_can_take_away_the_black_frame_of_a_padded_crop():
    from train.augment import Reframe
    rng = np.random.default_rng(0)
    crop = np.zeros((100, 100, 3), np.uint8)
    crop[30:70, 20:60] = rng.integers(1, 255, (40, 40, 3), dtype=np.uint8)   # a 40 px picture, off centre
    seen_full = False
    for seed in range(40):
        out = Reframe()(crop, np.random.default_rng(seed))
        assert out.shape == crop.shape and out.dtype == np.uint8
        black_rows = int((out.max(axis=(1, 2)) == 0).sum())
        seen_full |= black_rows == 0                # the picture fills the crop
    assert seen_full
    # a crop without a frame loses at most the margin: the side stays >= 1/1.3 of the crop, around the picture
    photo = np.zeros((130, 130, 3), np.uint8)
    photo[...] = (200, 30, 30)                     # the margin
    photo[15:115, 15:115] = (30, 200, 30)          # the face box, 100 px
    fractions = []
    for seed in range(40):
        out = Reframe()(photo, np.random.default_rng(seed))
        green = (out[..., 1] > 150) & (out[..., 0] < 80)
        assert green[65, 65]
        fractions.append(green.mean())
    assert min(fractions) > (100 / 130) ** 2 - 0.03      # never zoomed into the face itself
    assert max(fractions) > 0.9 and min(fractions) < 0.7  # but the margin does vary


def test_reframe_leaves_an_all_black_crop_alone():
    from train.augment import Reframe
    black = np.zeros((32, 32, 3), np.uint8)
    assert np.array_equal(Reframe()(black, np.random.default_rng(0)), black)


def _padded_crop(rng: np.random.Generator) -> np.ndarray:
    crop = np.zeros((100, 100, 3), np.uint8)
    crop[30:70, 20:60] = rng.integers(1, 255, (40, 40, 3), dtype=np.uint8)   # a 40 px picture in a black frame
    return crop


def test_context_fill_replaces_the_black_frame_at_the_same_scale():
    from train.augment import ContextFill
    crop = _padded_crop(np.random.default_rng(0))
    reflected = blurred = 0
    for seed in range(30):
        out = ContextFill()(crop, np.random.default_rng(seed))
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert np.array_equal(out[32:68, 22:58], crop[32:68, 22:58])    # the picture stays where it was, unscaled
        frame = np.ones((100, 100), bool)
        frame[32:68, 22:58] = False
        assert (out.max(axis=2)[frame] > 0).mean() > 0.99              # no black frame left
        # reflected outwards: the row above the picture mirrors the row below its (trimmed) top edge
        if np.array_equal(out[31, 22:58], crop[33, 22:58]):
            reflected += 1
        else:
            blurred += 1
    assert reflected and blurred


def test_context_fill_leaves_unframed_and_black_crops_alone():
    from train.augment import ContextFill
    photo = np.random.default_rng(1).integers(1, 255, (64, 64, 3), dtype=np.uint8)
    assert ContextFill()(photo, np.random.default_rng(0)) is photo
    black = np.zeros((32, 32, 3), np.uint8)
    assert ContextFill()(black, np.random.default_rng(0)) is black
