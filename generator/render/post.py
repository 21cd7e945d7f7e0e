"""Camera-like post-processing of a rendered image: defocus and motion blur, colour jitter, sensor
noise, and the JPEG quality the player encodes with. The parameters are part of the scene
(`scene.PostEffects`, drawn by `sample_scene`), so an image depends on (config, seed, frame_id)
alone; this module only applies them. Plain numpy on float32, separable where it can be.
The person mask is not touched: it marks the person's pixels before the camera blurs them.
"""

from __future__ import annotations

import numpy as np


def _shift_sum(img: np.ndarray, offsets: np.ndarray, weights: np.ndarray, axis: int) -> np.ndarray:
    """sum_k w_k img shifted by offsets[k] pixels along axis, edges repeated."""
    pad = int(np.abs(offsets).max())
    widths = [(0, 0)] * img.ndim
    widths[axis] = (pad, pad)
    padded = np.pad(img, widths, mode="edge")
    n = img.shape[axis]
    out = np.zeros_like(img)
    for o, w in zip(offsets, weights):
        out += w * np.take(padded, np.arange(pad + o, pad + o + n), axis=axis)
    return out


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an (H, W, C) float image."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    return _shift_sum(_shift_sum(img, offsets, weights, 0), offsets, weights, 1)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Average of the image along a line of `length` px at `angle` (radians, x right, y down)."""
    steps = max(2, int(np.ceil(length)) + 1)
    t = np.linspace(-0.5, 0.5, steps) * length
    dx, dy = np.rint(t * np.cos(angle)).astype(int), np.rint(t * np.sin(angle)).astype(int)
    pad = int(max(np.abs(dx).max(), np.abs(dy).max()))
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for x, y in zip(dx, dy):
        out += padded[pad + y : pad + y + h, pad + x : pad + x + w]
    return out / steps


def apply_post_effects(rgb: np.ndarray, effects) -> np.ndarray:
    """The (H, W, 3) uint8 image after `effects` (a scene.PostEffects); the input when there are none."""
    if not effects.active:
        return rgb
    img = rgb.astype(np.float32)
    if effects.blur_sigma_px > 0:
        img = gaussian_blur(img, effects.blur_sigma_px)
    if effects.motion_length_px > 0:
        img = motion_blur(img, effects.motion_length_px, effects.motion_angle)
    img = img * effects.gain.astype(np.float32) + np.float32(effects.offset)
    if effects.noise_sigma > 0:
        rng = np.random.default_rng(effects.noise_seed)
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(effects.noise_sigma)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
