"""Camera-like post-processing: what each effect does to an image, determinism, and the scene's draws."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from generator.render.post import apply_post_effects, gaussian_blur, motion_blur
from generator.scene import PostConfig, PostEffects, SceneConfig, sample_post_effects


def _checker(size: int = 64) -> np.ndarray:
    y, x = np.mgrid[:size, :size]
    img = np.where((x // 4 + y // 4) % 2 == 0, 230, 20).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def _high_frequency(img: np.ndarray) -> float:
    f = img.astype(np.float64)
    return float(np.abs(np.diff(f, axis=0)).mean() + np.abs(np.diff(f, axis=1)).mean())


def test_no_effects_leave_the_image_alone():
    img = _checker()
    assert apply_post_effects(img, PostEffects.none()) is img


def test_blurs_remove_detail_and_keep_the_mean():
    img = _checker()
    blurred = gaussian_blur(img, 1.5)
    assert blurred.shape == img.shape and blurred.dtype == np.uint8
    assert _high_frequency(blurred) < 0.5 * _high_frequency(img)
    assert abs(blurred.astype(float).mean() - img.astype(float).mean()) < 1.0
    # Motion blur along x smooths columns' edges, not rows' (stripes along x stay sharp).
    stripes = np.repeat(np.where((np.arange(64) // 4) % 2 == 0, 230.0, 20.0)[None, :, None], 64, axis=0).repeat(3, axis=2)
    along_x = motion_blur(stripes, 8.0, 0.0)
    along_y = motion_blur(stripes, 8.0, np.pi / 2)
    assert _high_frequency(along_x) < 0.5 * _high_frequency(stripes)
    np.testing.assert_allclose(along_y, stripes, atol=1e-4)


def test_noise_and_jitter_are_seeded():
    img = np.full((32, 32, 3), 128, np.uint8)
    fx = dataclasses.replace(PostEffects.none(), noise_sigma=5.0, noise_seed=7, gain=np.array([1.1, 1.0, 0.9]), offset=2.0)
    a, b = apply_post_effects(img, fx), apply_post_effects(img, fx)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, apply_post_effects(img, dataclasses.replace(fx, noise_seed=8)))
    assert 3.0 < (a.astype(float) - a.astype(float).mean(axis=(0, 1))).std() < 7.0
    np.testing.assert_allclose(a.mean(axis=(0, 1)), [128 * 1.1 + 2, 130, 128 * 0.9 + 2], atol=1.0)


def test_the_scene_draws_each_effect_at_its_rate():
    config = PostConfig()
    rng = np.random.default_rng(0)
    draws = [sample_post_effects(rng, config) for _ in range(4000)]
    assert abs(np.mean([d.blur_sigma_px > 0 for d in draws]) - config.blur_probability) < 0.03
    assert abs(np.mean([d.motion_length_px > 0 for d in draws]) - config.motion_probability) < 0.03
    assert abs(np.mean([d.noise_sigma > 0 for d in draws]) - config.noise_probability) < 0.03
    qualities = [d.jpeg_quality for d in draws]
    assert min(qualities) == config.jpeg_quality[0] and max(qualities) == config.jpeg_quality[1]
    off = PostConfig(blur_probability=0, motion_probability=0, noise_probability=0, color_jitter=0, jpeg_quality=None)
    assert not sample_post_effects(rng, off).active
    with pytest.raises(ValueError, match="jpeg_quality"):
        SceneConfig(post={"jpeg_quality": (90, 20)})
