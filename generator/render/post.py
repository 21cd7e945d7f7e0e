"""Camera-like post-processing of a rendered image: defocus and motion blur, colour jitter, sensor
noise, and the JPEG quality the player encodes with. The parameters are part of the scene
(`scene.PostEffects`, drawn by `sample_scene`), so an image depends on (config, seed, frame_id)
alone; this module only applies them. Plain numpy on float32; the Gaussian blur is Pillow's.
The person mask is not touched: it marks the person's pixels before the camera blurs them.
"""

from __future__ import annotations

import numpy as np


def gaussian_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (Pillow's, an extended box filter) of an (H, W, 3) uint8 image: ~10x a numpy convolution."""
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


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


_NOISE_MARGIN = 64
_NOISE_SEED = 0x5E5
_noise_banks: dict[tuple[int, ...], np.ndarray] = {}


def _noise_bank(shape: tuple[int, ...]) -> np.ndarray:
    """Unit Gaussian noise a little larger than `shape`, made once per process from a fixed seed;
    a frame's noise is a window of it at the frame's own offset (drawing fresh normals for every
    pixel costs ~1 ms a frame)."""
    bank = _noise_banks.get(shape)
    if bank is None:
        big = (shape[0] + _NOISE_MARGIN, shape[1] + _NOISE_MARGIN, *shape[2:])
        bank = _noise_banks[shape] = np.random.default_rng(_NOISE_SEED).standard_normal(big, dtype=np.float32)
    return bank


def _colour_lut(rgb: np.ndarray, gain: np.ndarray, offset: float) -> np.ndarray:
    """Per-channel gain and offset on uint8 through a 256-entry table per channel."""
    levels = np.arange(256, dtype=np.float32)
    lut = np.clip(np.rint(levels[None] * gain[:, None].astype(np.float32) + np.float32(offset)), 0, 255).astype(np.uint8)
    out = np.empty_like(rgb)
    for c in range(rgb.shape[2]):  # three table lookups
        np.take(lut[c], rgb[..., c], out=out[..., c], mode="clip")
    return out


def apply_post_effects(rgb: np.ndarray, effects) -> np.ndarray:
    """The (H, W, 3) uint8 image after `effects` (a scene.PostEffects); the input when there are none."""
    if not effects.active:
        return rgb
    if effects.blur_sigma_px <= 0 and effects.motion_length_px <= 0 and effects.noise_sigma <= 0:
        return _colour_lut(rgb, effects.gain, effects.offset)
    img = (gaussian_blur(rgb, effects.blur_sigma_px) if effects.blur_sigma_px > 0 else rgb).astype(np.float32)
    if effects.motion_length_px > 0:
        img = motion_blur(img, effects.motion_length_px, effects.motion_angle)
    img *= effects.gain.astype(np.float32)
    img += np.float32(effects.offset)
    if effects.noise_sigma > 0:
        h, w = img.shape[:2]
        dy, dx = np.random.default_rng(effects.noise_seed).integers(0, _NOISE_MARGIN + 1, 2)
        img += _noise_bank(img.shape)[dy : dy + h, dx : dx + w] * np.float32(effects.noise_sigma)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
