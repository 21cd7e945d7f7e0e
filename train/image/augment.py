"""Person crops and training augmentation, seeded per sample.

Geometry: a square crop around the person box (side = the box's longer side x `pad`), jittered in
scale and position, rotated about its centre, mirrored, resampled to `size` x `size` in one affine
warp (Pillow's C code). The same affine moves the 2D keypoints; the 3D (camera frame, root-
relative) turns with the image: a rotation of the crop is a roll of the camera about its optical
axis, so x, y of the 3D rotate by the same angle, and a mirror negates x; a mirror also swaps
every left joint with its right twin (`generator.skeleton.FLIP_PERMUTATION`).

Photometric: colour jitter (brightness, contrast, saturation, per-channel gain) on every image;
Gaussian blur and pixel noise on synthetic images only (domain randomization). Blur runs in the
worker; the colour jitter and noise are drawn there and applied to the whole batch in one
vectorized step (`apply_colour`).

Every draw comes from the generator passed in, which the data path seeds per (seed, epoch,
position in the epoch), so a sample is the same whatever worker makes it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from generator.skeleton import FLIP_PERMUTATION


class AugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pad: float = Field(1.3, gt=0)  # crop side = the person box's longer side x pad
    scale_jitter: float = Field(0.25, ge=0, lt=1)  # side x U(1 - j, 1 + j)
    shift_jitter: float = Field(0.08, ge=0)  # centre moved by U(-j, j) x side, per axis
    rotation_deg: float = Field(30.0, ge=0, le=180)  # U(-r, r) ...
    rotation_prob: float = Field(0.5, ge=0, le=1)  # ... with this probability
    flip_prob: float = Field(0.5, ge=0, le=1)
    colour: float = Field(0.3, ge=0, lt=1)  # brightness, contrast, saturation x U(1 - c, 1 + c)
    channel_gain: float = Field(0.08, ge=0, lt=1)  # per-channel x U(1 - g, 1 + g)
    blur_prob: float = Field(0.4, ge=0, le=1)  # synthetic only
    blur_sigma_px: float = Field(1.2, ge=0)  # sigma U(0.3, max), in crop pixels
    noise_prob: float = Field(0.4, ge=0, le=1)  # synthetic only
    noise_std: float = Field(8.0, ge=0)  # std U(0, max) in 0-255 levels
    fill: int = Field(0, ge=0, le=255)  # grey level outside the image


@dataclasses.dataclass(frozen=True)
class CropParams:
    centre: np.ndarray  # (2,) image pixels
    side: float  # image pixels
    angle: float  # radians, counter-clockwise as seen on screen is negative (image y points down)
    flip: bool


def eval_crop(box: np.ndarray, pad: float) -> CropParams:
    """The deterministic crop of a box [x0, y0, x1, y1]: centred, side = longer side x pad."""
    box = np.asarray(box, dtype=np.float64)
    return CropParams((box[:2] + box[2:]) / 2, float((box[2:] - box[:2]).max() * pad), 0.0, False)


def random_crop(box: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> CropParams:
    base = eval_crop(box, cfg.pad)
    u = rng.random(6)
    side = base.side * (1.0 + cfg.scale_jitter * (2 * u[0] - 1))
    centre = base.centre + cfg.shift_jitter * base.side * (2 * u[1:3] - 1)
    angle = np.deg2rad(cfg.rotation_deg * (2 * u[3] - 1)) if u[4] < cfg.rotation_prob else 0.0
    return CropParams(centre, float(side), float(angle), bool(u[5] < cfg.flip_prob))


def crop_matrix(p: CropParams, size: int) -> np.ndarray:
    """The 2x3 affine taking image pixels to crop pixels (docs/conventions.md pixel convention)."""
    k = size / p.side
    c, s = np.cos(p.angle), np.sin(p.angle)
    m = k * np.array([[c, -s], [s, c]])
    if p.flip:
        m[0] = -m[0]
    return np.concatenate([m, (size / 2 - m @ p.centre)[:, None]], axis=1)


def crop_matrices(boxes: np.ndarray, pad: float, size: int) -> np.ndarray:
    """(N, 2, 3) eval-crop affines of N boxes at once (no rotation, no flip)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    k = size / ((boxes[:, 2:] - boxes[:, :2]).max(axis=1) * pad)
    out = np.zeros((len(boxes), 2, 3))
    out[:, 0, 0] = out[:, 1, 1] = k
    out[:, :, 2] = size / 2 - k[:, None] * centre
    return out


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of 2x3 affines (..., 2, 3)."""
    a = m[..., :2]
    inv = np.linalg.inv(a)
    return np.concatenate([inv, -(inv @ m[..., 2:])], axis=-1)


def apply_affine(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., J, 2) through affines (..., 2, 3)."""
    return np.einsum("...ij,...kj->...ki", m[..., :2], points) + m[..., None, :, 2]


def decode_reduction(side_px: float, size: int) -> int:
    """The largest JPEG reduction (1, 2, 4, 8) that keeps the crop at least `size` pixels across."""
    r = 1
    while r < 8 and side_px / (2 * r) >= size:
        r *= 2
    return r


def warp(image, to_image: np.ndarray, size: int, fill: int = 0) -> np.ndarray:
    """The `size` x `size` crop of a PIL image whose pixel centres come from the image through the
    affine `to_image` (crop -> image), bilinear, as uint8 (size, size, 3)."""
    from PIL import Image

    # Pillow samples output pixel (i, j) at to_image @ (i + 0.5, j + 0.5) with the input's pixel
    # centres at +0.5: the corner convention of docs/conventions.md, so the matrix is used as is.
    out = image.transform((size, size), Image.Transform.AFFINE, data=tuple(to_image.reshape(-1)),
                          resample=Image.Resampling.BILINEAR, fillcolor=(fill,) * 3)  # fmt: skip
    return np.asarray(out)


def flip_joints(values: np.ndarray) -> np.ndarray:
    """Swap left and right joints along axis -2 (h36m17)."""
    return values[..., FLIP_PERMUTATION, :]


def rotate_3d(joints: np.ndarray, p: CropParams) -> np.ndarray:
    """Root-relative camera-frame joints (17, 3) as the crop sees them: x, y turned by the crop's
    angle, x negated and left/right swapped by a mirror."""
    c, s = np.cos(p.angle), np.sin(p.angle)
    out = joints.copy()
    out[:, 0] = c * joints[:, 0] - s * joints[:, 1]
    out[:, 1] = s * joints[:, 0] + c * joints[:, 1]
    if p.flip:
        out[:, 0] = -out[:, 0]
        out = out[FLIP_PERMUTATION]
    return out


def blur(crop: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur with probability `blur_prob` (synthetic images; in the worker, Pillow's C code)."""
    from PIL import Image, ImageFilter

    u = rng.random(2)
    if u[0] >= cfg.blur_prob or cfg.blur_sigma_px <= 0:
        return crop
    sigma = float(0.3 + (cfg.blur_sigma_px - 0.3) * u[1]) if cfg.blur_sigma_px > 0.3 else cfg.blur_sigma_px
    return np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(sigma)))


IDENTITY_COLOUR = np.array([1, 1, 1, 1, 1], np.float32)  # gains r, g, b, saturation, contrast


def colour_params(cfg: AugmentConfig, rng: np.random.Generator, synthetic: bool) -> tuple[np.ndarray, float]:
    """One sample's colour jitter (gain r, g, b, saturation, contrast) and noise std (0-255 levels).

    Drawn in the worker; applied to the whole batch at once by `apply_colour`, a 3x3 matrix per
    sample that costs next to nothing beside the network (and runs on the training device)."""
    u = rng.random(8)
    c = cfg.colour
    gains = (1.0 + c * (2 * u[0] - 1)) * (1.0 + cfg.channel_gain * (2 * u[1:4] - 1))
    params = np.array([*gains, 1.0 + c * (2 * u[4] - 1), 1.0 + c * (2 * u[5] - 1)], np.float32)
    noise = float(cfg.noise_std * u[7]) if synthetic and u[6] < cfg.noise_prob else 0.0
    return params, noise


LUMA = (0.299, 0.587, 0.114)


def apply_colour(images: torch.Tensor, colour: torch.Tensor, noise: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 images (B, 3, H, W) -> float32 0-255 with per-sample gains, saturation about each
    pixel's luma, contrast about the image's mean luma, then Gaussian noise, clipped to 0-255.

    All three colour steps are linear in the pixel, so they are one 3x3 matrix M and an offset b
    per sample: x' = c s G x + c (1 - s) 1 w^T G x + (1 - c) w^T G mean(x), with G = diag(gains),
    w the luma weights (which sum to 1, so saturation keeps the luma)."""
    x = images.float()
    b = x.shape[0]
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device)
    gains, sat, con = colour[:, :3].to(x), colour[:, 3].to(x), colour[:, 4].to(x)
    wg = w * gains  # (B, 3): w^T G
    m = (con * sat)[:, None, None] * torch.diag_embed(gains) + (con * (1 - sat))[:, None, None] * wg[:, None, :].expand(b, 3, 3)
    mean_luma = (wg * x.mean(dim=(2, 3))).sum(dim=1)  # (B,)
    out = torch.einsum("bij,bjhw->bihw", m, x) + ((1 - con) * mean_luma)[:, None, None, None]
    if bool((noise > 0).any()):
        out = out + noise.to(x)[:, None, None, None] * torch.randn(out.shape, generator=generator, dtype=out.dtype, device="cpu").to(out.device)
    return out.clamp_(0.0, 255.0)
