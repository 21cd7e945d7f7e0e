"""Random draws shared by the samplers (cameras, augmentation), vectorized and dtype-aware.

numpy's `Generator.standard_normal` draws one value at a time (about 10 ns each here); the pair
generator needs several Gaussians per sample at millions of samples per second, so this module
makes them with the Box-Muller transform over uniform draws, which numpy's SIMD log, sqrt, sin
and cos evaluate a whole block at a time (about 3 ns each). Same generator state, same values.
"""

from __future__ import annotations

import numpy as np


def standard_normal(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """Standard Gaussian draws of `shape` (Box-Muller on `rng.random`).

    In float32 the tails end at about 5.8 sigma (the smallest uniform is 2**-24); in float64,
    at about 8.6 sigma.
    """
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    size = int(np.prod(shape))
    half = (size + 1) // 2
    u = rng.random((2, half), dtype=dtype)
    radius = np.log1p(-u[0])  # log of a uniform in (0, 1]
    radius *= -2.0
    np.sqrt(radius, out=radius)
    angle = u[1]
    angle *= 2.0 * np.pi
    out = np.empty(2 * half, dtype=dtype)
    np.cos(angle, out=out[:half])
    np.sin(angle, out=out[half:])
    out[:half] *= radius
    out[half:] *= radius
    return out[:size].reshape(shape)


def clipped_normal(rng: np.random.Generator, shape, mean: float, std: float, low: float, high: float, dtype=np.float64) -> np.ndarray:
    """Gaussian draws mean + std * N(0, 1), clipped to [low, high]."""
    x = standard_normal(rng, shape, dtype)
    x *= std
    x += mean
    return np.clip(x, low, high, out=x)
