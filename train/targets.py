"""Network inputs and targets from pairs rows: normalized left view, right-view target, 3D target.

The right view is expressed through its *disparity* in normalized units, left - right = (b/z, 0)
per joint (docs/conventions.md, "The right view"), which scales linearly with the baseline:
- when a source has `joints_2d_right`, disparity = (b_model / b_file) · (left - right), exact for
  any file baseline;
- otherwise it comes from `joints_3d` and the model's baseline: b / z.
Augmentations (train time only): a random mirror (x -> -x in the camera frame with left/right
joints swapped, an exact new scene in normalized coordinates, whatever K is), optional
detector-like errors (train/detector_noise.py) and Gaussian pixel noise on the inputs, with a
per-sample std drawn from [0, noise_px].
"""

from __future__ import annotations

import numpy as np

from generator.skeleton import FLIP_PERMUTATION, flip_left_right

from .detector_noise import DetectorNoiseConfig, detector_noise
from .metrics import root_align
from .normalization import pixels_to_normalized


def disparity(rows: dict[str, np.ndarray | None], left: np.ndarray, baseline_mm: float) -> np.ndarray:
    """left - right (N, 17, 2) in normalized units for the model's baseline."""
    if rows.get("joints_2d_right") is not None and rows.get("baseline_mm") is not None:
        right = pixels_to_normalized(rows["joints_2d_right"].astype(np.float64), rows["K"].astype(np.float64))
        scale = baseline_mm / rows["baseline_mm"].astype(np.float64)
        return scale[:, None, None] * (left - right)
    z = rows["joints_3d"][..., 2].astype(np.float64)
    out = np.zeros(left.shape)
    out[..., 0] = baseline_mm / z
    return out


def _pixel_noise(rng: np.random.Generator, K: np.ndarray, shape: tuple[int, ...], noise_px: float) -> np.ndarray:
    """Gaussian noise (N, 17, 2) in normalized units: per-sample std ~ U(0, noise_px) pixels, / fx, fy."""
    sigma = rng.uniform(0.0, noise_px, size=shape[0])
    focal = np.stack([K[:, 0, 0], K[:, 1, 1]], axis=-1)  # (N, 2)
    return rng.standard_normal(shape) * (sigma[:, None] / focal)[:, None, :]


def training_features(
    rows: dict[str, np.ndarray | None],
    rng: np.random.Generator,
    baseline_mm: float,
    noise_px: float = 0.0,
    mirror: bool = True,
    detector: DetectorNoiseConfig | None = None,
) -> dict[str, np.ndarray]:
    """float32 arrays: `left` (network input), `right_target`, `right_input` (the right view with the
    left view's noise, for the separately trained 3D net), all in normalized image coordinates
    (N, 17, 2), and `pose` (N, 17, 3) root-relative mm."""
    K = rows["K"].astype(np.float64)
    left = pixels_to_normalized(rows["joints_2d"].astype(np.float64), K)
    disp = disparity(rows, left, baseline_mm)
    pose = root_align(rows["joints_3d"].astype(np.float64))
    if mirror:
        flip = rng.random(len(left)) < 0.5
        left[flip] = flip_left_right(left[flip], axis=0)
        pose[flip] = flip_left_right(pose[flip], axis=0)
        disp[flip] = disp[flip][:, FLIP_PERMUTATION]  # disparity b/z is unchanged by mirroring
    right = left - disp
    left_in, right_in = left, right
    if detector is not None:
        # Normalized coordinates share one scale in x and y (fx = fy), so the detector's errors,
        # relative to the 2D torso, are drawn here directly; the right input carries the same shift.
        left_in = detector_noise(left, rng, detector, strength=rng.random(len(left)))
        right_in = right + (left_in - left)
    if noise_px > 0:
        # The same noise on both views: a right view synthesized from a noisy left view carries
        # the left view's noise (right = left - disparity), so this is what the 3D net will see.
        noise = _pixel_noise(rng, K, left.shape, noise_px)
        left_in, right_in = left_in + noise, right_in + noise
    return {
        "left": left_in.astype(np.float32),
        "right_target": right.astype(np.float32),
        "right_input": right_in.astype(np.float32),
        "pose": pose.astype(np.float32),
    }


def left_input(pixels: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Inference input (N, 17, 2) float32 from pixels (N, 17, 2) and K ((N,) 3, 3)."""
    return pixels_to_normalized(np.asarray(pixels, np.float64), np.asarray(K, np.float64)).astype(np.float32)
