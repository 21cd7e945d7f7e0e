"""Geometric search: place a root-relative 3D pose in the camera so it reprojects onto the input 2D.

Each joint j is put on the ray through its input pixel, at depth z_j + d, where z_j is the
network's root-relative depth and d the unknown root depth:  X_j(d) = (x_j, y_j, 1)·(z_j + d),
with (x_j, y_j) the normalized image coordinates of the pixel. Whatever d is, X_j projects exactly
onto the pixel, so the reprojection error is zero by construction and only depth comes from the
network. d is chosen so that the placed pose, taken relative to its root, agrees with the network's
root-relative x, y:  r_j(d) = (X_j(d) - X_root(d))_xy - (p_j - p_root)_xy,  linear in d.

- `grid`: the paper's search; evaluate the loss sum_j |r_j(d)| (or sum_j |r_j(d)|^2) at every
  depth of a grid (2800-7199 mm in 1 mm steps by default) and keep the best.
- `fast`: the least-squares optimum of sum_j |r_j(d)|^2 in closed form, d = -sum a.b / sum b.b.
- `none`: no search; the network pose is kept rigid and translated by the least-squares (algebraic)
  translation that best aligns it with the rays, the usual way to place a root-relative pose.

The authors' code puts the root on the optical axis and ignores the principal point; here every
ray comes from K, so placement is exact for any camera. Everything is float64 numpy, batched over
poses, with no loop over joints.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from generator.skeleton import ROOT

from .metrics import root_align
from .normalization import pixels_to_normalized

SEARCH_METHODS = ("none", "fast", "grid")
# Placed joints must lie at least this far in front of the camera (mm).
MIN_JOINT_DEPTH_MM = 100.0


class GridConfig(BaseModel):
    """The paper's grid over root depth."""

    model_config = ConfigDict(extra="forbid")

    depth_min_mm: float = Field(2800.0, gt=0)
    depth_max_mm: float = Field(7199.0, gt=0)
    step_mm: float = Field(1.0, gt=0)
    loss: Literal["l2", "squared"] = "l2"  # the paper sums Euclidean distances; "squared" matches `fast`
    chunk: int = Field(8, ge=1)  # poses per vectorized block (small blocks stay in cache)

    @model_validator(mode="after")
    def _range(self) -> "GridConfig":
        if self.depth_max_mm < self.depth_min_mm:
            raise ValueError(f"depth_max_mm {self.depth_max_mm} < depth_min_mm {self.depth_min_mm}")
        return self

    def depths(self) -> np.ndarray:
        n = int(np.floor((self.depth_max_mm - self.depth_min_mm) / self.step_mm + 1e-9)) + 1
        return self.depth_min_mm + self.step_mm * np.arange(n, dtype=np.float64)


@dataclasses.dataclass
class Placement:
    """Absolute camera-frame joints (N, 17, 3) mm and the root depth (N,) they were placed at."""

    joints: np.ndarray
    root_depth: np.ndarray


def _residual_terms(rays: np.ndarray, pose_rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """a, b (N, 17, 2) with r_j(d) = a_j + d·b_j (see the module docstring)."""
    a = root_align(rays * pose_rel[..., 2:3]) - root_align(pose_rel[..., :2])  # r_j(0): the pose placed at d = 0
    b = root_align(rays)
    return a, b


def _depth_floor(pose_rel: np.ndarray) -> np.ndarray:
    """The smallest root depth (N,) that keeps every joint MIN_JOINT_DEPTH_MM in front of the camera."""
    return MIN_JOINT_DEPTH_MM - pose_rel[..., 2].min(axis=1)


def fast_root_depth(rays: np.ndarray, pose_rel: np.ndarray) -> np.ndarray:
    """Closed-form least-squares root depth (N,) for rays (N, 17, 2) and root-relative poses (N, 17, 3)."""
    a, b = _residual_terms(rays, pose_rel)
    bb = np.einsum("njc,njc->n", b, b)
    ab = np.einsum("njc,njc->n", a, b)
    depth = -ab / np.maximum(bb, 1e-300)
    return np.maximum(depth, _depth_floor(pose_rel))


def grid_root_depth(rays: np.ndarray, pose_rel: np.ndarray, grid: GridConfig | None = None) -> np.ndarray:
    """The paper's search: the grid depth (N,) with the smallest loss, evaluated at every grid point."""
    grid = grid or GridConfig()
    depths = grid.depths()
    a, b = _residual_terms(rays, pose_rel)
    out = np.empty(len(rays))
    for start in range(0, len(rays), grid.chunk):
        sl = slice(start, start + grid.chunk)
        # (n, 17, G): residual components of every joint at every depth of the grid, in place.
        rx = np.multiply.outer(b[sl, :, 0], depths)
        rx += a[sl, :, 0, None]
        ry = np.multiply.outer(b[sl, :, 1], depths)
        ry += a[sl, :, 1, None]
        rx *= rx
        ry *= ry
        rx += ry
        if grid.loss == "l2":
            np.sqrt(rx, out=rx)
        out[sl] = depths[np.argmin(rx.sum(axis=1), axis=1)]
    return np.maximum(out, _depth_floor(pose_rel))


def place_on_rays(rays: np.ndarray, pose_rel: np.ndarray, root_depth: np.ndarray) -> np.ndarray:
    """Joints (N, 17, 3) on their rays at depth z_j + d: they reproject exactly onto the input 2D."""
    depth = pose_rel[..., 2] + root_depth[:, None]
    return np.concatenate([rays * depth[..., None], depth[..., None]], axis=-1)


def rigid_translation(rays: np.ndarray, pose_rel: np.ndarray) -> np.ndarray:
    """The translation T (N, 3) minimizing the algebraic ray error of the rigid pose p + T.

    For each joint, (p + T)_x - x_j (p + T)_z = 0 and the same for y: 34 linear equations in T,
    solved by batched normal equations.
    """
    n, j = rays.shape[:2]
    rows = np.zeros((n, j, 2, 3))
    rows[..., 0, 0] = 1.0
    rows[..., 1, 1] = 1.0
    rows[..., :, 2] = -rays
    rhs = rays * pose_rel[..., 2:3] - pose_rel[..., :2]
    A = rows.reshape(n, 2 * j, 3)
    y = rhs.reshape(n, 2 * j)
    return np.linalg.solve(np.einsum("nki,nkj->nij", A, A), np.einsum("nki,nk->ni", A, y)[..., None])[..., 0]


def geometric_search(
    pose_rel: np.ndarray,
    pixels: np.ndarray,
    K: np.ndarray,
    method: str = "fast",
    grid: GridConfig | None = None,
) -> Placement:
    """Place root-relative poses (N, 17, 3) mm in the camera of pixels (N, 17, 2) and K ((N,) 3, 3)."""
    pose_rel = np.asarray(pose_rel, dtype=np.float64)
    rays = pixels_to_normalized(np.asarray(pixels, dtype=np.float64), np.asarray(K, dtype=np.float64))
    if method == "fast":
        depth = fast_root_depth(rays, pose_rel)
    elif method == "grid":
        depth = grid_root_depth(rays, pose_rel, grid)
    elif method == "none":
        shift = rigid_translation(rays, pose_rel)
        return Placement(joints=pose_rel + shift[:, None, :], root_depth=shift[:, 2] + pose_rel[:, ROOT, 2])
    else:
        raise ValueError(f"unknown search {method!r}; choose one of {', '.join(SEARCH_METHODS)}")
    return Placement(joints=place_on_rays(rays, pose_rel, depth), root_depth=depth)
