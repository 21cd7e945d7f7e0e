"""How 2D and 3D keypoints are turned into network inputs and targets (docs/conventions.md,
"Training normalization").

1. Pixels become *normalized image coordinates* with the camera's K: x = (u - cx - skew·y)/fx,
   y = (v - cy)/fy, the point's direction x/z, y/z in the camera frame. A network trained this way
   does not depend on the focal length, principal point or image size of its training cameras, so
   it applies to any calibrated (or approximately calibrated) photo. In these units the paper's
   right view is exact: the right camera sees (x - b)/z, so the disparity is b/z, whatever K is.
2. 2D poses are *root-centred and scale-normalized* (`pose_code`): every joint but the root
   becomes its offset from the root divided by the pose's 2D size s (the RMS offset), and the
   root's slot keeps the root's own normalized position, so the network still knows where the
   person is relative to the optical axis (the perspective cue that plain centring would drop).
   The size s ~ body size / distance carries no shape information, only the distance that no 2D
   pose can tell apart from body size; dividing it out lets one model serve people near and far.
3. The right view is coded through its disparity (`disparity_code`): the root's disparity b/z0
   divided by s (~ b / body size) and every other joint's disparity relative to the root divided
   by s^2 (~ b·dz_j / body size^2): scale-free targets for the view-synthesis net.
4. Every network input and output is *z-scored* per coordinate with statistics fitted on the
   training data and stored in the checkpoint (`ZScore`, a module of buffers).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from generator.camera import backproject, project_points
from generator.skeleton import ROOT

# A coordinate whose training spread is below this fraction of the largest spread is treated as
# constant (the root of a root-relative 3D pose is 0 by definition) and gets a unit scale.
_MIN_RELATIVE_STD = 1e-6


def pixels_to_normalized(pixels: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels (..., J, 2) to normalized image coordinates (..., J, 2): the ray direction x/z, y/z."""
    return backproject(pixels, np.ones(pixels.shape[:-1], dtype=pixels.dtype), K)[..., :2]


def normalized_to_pixels(normalized: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Normalized image coordinates (..., J, 2) back to pixels (..., J, 2)."""
    rays = np.concatenate([normalized, np.ones(normalized.shape[:-1] + (1,), dtype=normalized.dtype)], axis=-1)
    return project_points(rays, K)


def pose_code(rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized 2D poses (N, 17, 2) -> their code (N, 17, 2) and 2D size s (N,).

    Code: the root's slot holds the root's normalized position; joint j holds (x_j - x_root) / s,
    with s the root-mean-square offset of the other joints from the root.
    """
    offsets = rays - rays[:, ROOT : ROOT + 1]
    size = offsets.square().sum(-1).sum(-1).div(rays.shape[1] - 1).sqrt().clamp_min(1e-6)
    code = offsets / size[:, None, None]
    return torch.cat([rays[:, ROOT : ROOT + 1], code[:, ROOT + 1 :]], dim=1), size


def disparity_code(disparity: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Disparity (left - right, (N, 17, 2)) -> root slot d_root / s, joint j (d_j - d_root) / s^2."""
    root = disparity[:, ROOT : ROOT + 1]
    rel = (disparity - root) / size.square()[:, None, None]
    return torch.cat([root / size[:, None, None], rel[:, ROOT + 1 :]], dim=1)


def disparity_from_code(code: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """The inverse of `disparity_code`."""
    root = code[:, ROOT : ROOT + 1] * size[:, None, None]
    return torch.cat([root, root + code[:, ROOT + 1 :] * size.square()[:, None, None]], dim=1)


class ZScore(nn.Module):
    """Per-coordinate standardization whose mean and std are buffers, so checkpoints carry them."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, samples: np.ndarray | torch.Tensor) -> "ZScore":
        """Set the statistics from samples (N, dim); near-constant coordinates get std 1."""
        x = torch.as_tensor(np.asarray(samples), dtype=torch.float64).reshape(-1, self.mean.numel())
        mean = x.mean(0)
        std = x.std(0, unbiased=False)
        std = torch.where(std > _MIN_RELATIVE_STD * std.max().clamp_min(1e-12), std, torch.ones_like(std))
        self.mean.copy_(mean.to(self.mean.dtype))
        self.std.copy_(std.to(self.std.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std + self.mean
