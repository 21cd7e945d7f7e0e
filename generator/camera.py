"""Pinhole camera math in the project's conventions (docs/conventions.md).

Camera frame: OpenCV (x right, y down, z forward), millimetres. World frame: right-handed, z up.
Extrinsics map world to camera: X_cam = R @ X_world + t. Pixels have their origin at the top-left
corner of the top-left pixel, so the centre of pixel (i, j) is (i + 0.5, j + 0.5) and an ideal
camera's principal point is (W / 2, H / 2).

All functions are pure and batched over leading dimensions: points are (..., J, 3) or (..., J, 2),
K is (..., 3, 3), R is (..., 3, 3), t is (..., 3).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

DEFAULT_BASELINE_MM = 500.0
WORLD_UP = np.array([0.0, 0.0, 1.0])


def intrinsics_matrix(fx, fy, cx, cy, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
    """K (..., 3, 3) from focal lengths and principal point in pixels (broadcast together).

    Written into `out` (..., 3, 3) when given, in place of a new array of `dtype`.
    """
    fx, fy, cx, cy = np.broadcast_arrays(*(np.asarray(v, dtype=dtype) for v in (fx, fy, cx, cy)))
    if out is None:
        K = np.zeros(fx.shape + (3, 3), dtype=dtype)
    else:
        K = out
        K[...] = 0.0
    K[..., 0, 0] = fx
    K[..., 1, 1] = fy
    K[..., 0, 2] = cx
    K[..., 1, 2] = cy
    K[..., 2, 2] = 1.0
    return K


def is_pinhole(K: np.ndarray) -> np.ndarray:
    """True (...) where K (..., 3, 3) is [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0."""
    K = np.asarray(K)
    return (
        (K[..., 0, 0] > 0) & (K[..., 1, 1] > 0) & (K[..., 1, 0] == 0)
        & (K[..., 2, 0] == 0) & (K[..., 2, 1] == 0) & (K[..., 2, 2] == 1)
    )  # fmt: skip


def focal_from_fov(fov_deg, size_px):
    """Focal length in pixels for a field of view (degrees) spanning `size_px` pixels."""
    return 0.5 * np.asarray(size_px, dtype=np.float64) / np.tan(0.5 * np.deg2rad(fov_deg))


def fov_from_focal(focal_px, size_px):
    """Field of view in degrees spanned by `size_px` pixels at focal length `focal_px`."""
    return np.rad2deg(2.0 * np.arctan(0.5 * np.asarray(size_px, dtype=np.float64) / np.asarray(focal_px)))


def intrinsics_from_fov(fov_x_deg, width, height, dtype=np.float64) -> np.ndarray:
    """K for square pixels, a horizontal FOV and the principal point at the image centre."""
    f = focal_from_fov(fov_x_deg, width)
    return intrinsics_matrix(f, f, np.asarray(width) / 2.0, np.asarray(height) / 2.0, dtype=dtype)


def transform_components(p, R, t, out: np.ndarray | None = None) -> np.ndarray:
    """R p + t on points stored as components: the core of `world_to_camera`, for any layout.

    `p` (3, *S) holds the x, y, z arrays; `R` (3, 3, ...) and `t` (3, ...) broadcast against S
    (e.g. R (3, 3, N) and t (3, N) for S = (J, N), one camera per column). Returns (3, *S),
    written into `out` when given (which must not overlap `p`).
    """
    p = np.asarray(p)
    R = np.asarray(R)
    t = np.asarray(t)
    if out is None:
        shape = (3,) + np.broadcast_shapes(p.shape[1:], R.shape[2:], t.shape[1:])
        out = np.empty(shape, dtype=np.result_type(p, R, t))
    np.einsum("c...,ic...->i...", p, R, out=out)  # numpy's own loop: no temporaries, one pass per row
    out += t.reshape((3,) + (1,) * (out.ndim - t.ndim) + t.shape[1:])  # t's trailing dims align right, like R's
    return out


def world_to_camera(points_world: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """X_cam = R X_world + t for points (..., J, 3)."""
    points_world, R, t = np.asarray(points_world), np.asarray(R), np.asarray(t)
    p = np.moveaxis(points_world, -1, 0)
    Rc = np.moveaxis(R, (-2, -1), (0, 1))[..., None]  # (3, 3, ..., 1) against (..., J)
    tc = np.moveaxis(t, -1, 0)[..., None]
    shape = np.broadcast_shapes(points_world.shape[:-1], R.shape[:-2] + (1,), t.shape[:-1] + (1,))
    out = np.empty(shape + (3,), dtype=np.result_type(points_world, R, t))
    transform_components(p, Rc, tc, out=np.moveaxis(out, -1, 0))
    return out


def camera_to_world(points_cam: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """X_world = R^T (X_cam - t) for points (..., J, 3)."""
    return np.einsum("...ji,...kj->...ki", R, points_cam - np.asarray(t)[..., None, :])


def camera_center(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The camera's position in the world, C = -R^T t, shape (..., 3)."""
    return -np.einsum("...ji,...j->...i", R, t)


def project_components(x, y, z, fx, fy, cx, cy, skew=None, out: np.ndarray | None = None) -> np.ndarray:
    """Pinhole projection on component arrays: the core of `project_points`, for any layout.

    u = fx x/z + s y/z + cx, v = fy y/z + cy, with the intrinsics broadcasting against x, y, z.
    Returns (2, *shape) (u then v), written into `out` when given.
    """
    inv_z = np.divide(1.0, z, dtype=np.result_type(z, np.float32))
    if out is None:
        dtype = np.result_type(x, y, inv_z, fx, cx)
        out = np.empty((2,) + np.broadcast_shapes(np.shape(x), np.shape(fx), np.shape(cx)), dtype=dtype)
    u, v = out[0], out[1]
    np.multiply(x, inv_z, out=u)
    u *= fx
    if skew is not None:
        u += skew * (y * inv_z)
    u += cx
    np.multiply(y, inv_z, out=v)
    v *= fy
    v += cy
    return out


def project_points(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Project camera-frame points (..., J, 3) to pixels (..., J, 2) with a pinhole K (..., 3, 3).

    Points at or behind the camera (z <= 0) give non-finite or mirrored pixels; callers mask them
    with `in_image`, which requires z > 0.
    """
    K = np.asarray(K)
    points_cam = np.asarray(points_cam)
    k = lambda i, j: K[..., i, j, None]  # noqa: E731 - broadcasts against (..., J)
    shape = np.broadcast_shapes(points_cam.shape[:-1], K.shape[:-2] + (1,))
    out = np.empty(shape + (2,), dtype=np.result_type(points_cam, K, np.float32))
    project_components(
        points_cam[..., 0], points_cam[..., 1], points_cam[..., 2], k(0, 0), k(1, 1), k(0, 2), k(1, 2), skew=k(0, 1),
        out=np.moveaxis(out, -1, 0),
    )  # fmt: skip
    return out


def right_view_u(u, z, fx, baseline_mm=DEFAULT_BASELINE_MM, out: np.ndarray | None = None) -> np.ndarray:
    """The right view's u from the left view's (v is unchanged): u_right = u - fx b / z.

    This is `project_points(right_view_points(p, b), K)` without reprojecting: shifting x by -b
    moves u by -fx b / z (skew multiplies y / z, which the shift leaves alone).
    """
    shift = np.divide(fx * np.asarray(baseline_mm), z, dtype=np.result_type(u, np.float32))
    return np.subtract(u, shift, out=out)


def distort_normalized(xn: np.ndarray, yn: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's radial-tangential model, dist = (k1, k2, p1, p2[, k3]) broadcast over leading dims."""
    dist = np.asarray(dist, dtype=np.float64)
    k1, k2, p1, p2 = (dist[..., i, None] for i in range(4))
    k3 = dist[..., 4, None] if dist.shape[-1] > 4 else 0.0
    r2 = xn * xn + yn * yn
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = xn * radial + 2.0 * p1 * xn * yn + p2 * (r2 + 2.0 * xn * xn)
    yd = yn * radial + p1 * (r2 + 2.0 * yn * yn) + 2.0 * p2 * xn * yn
    return xd, yd


def project_points_distorted(points_cam: np.ndarray, K: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """Like `project_points`, with optional OpenCV lens distortion (None or all zeros = pinhole)."""
    if dist is None or not np.any(dist):
        return project_points(points_cam, K)
    K = np.asarray(K)
    z = points_cam[..., 2]
    xd, yd = distort_normalized(points_cam[..., 0] / z, points_cam[..., 1] / z, dist)
    k = lambda i, j: K[..., i, j, None]  # noqa: E731 - broadcasts against (..., J)
    uv = project_components(xd, yd, np.ones_like(xd), k(0, 0), k(1, 1), k(0, 2), k(1, 2), skew=k(0, 1))
    return np.moveaxis(uv, 0, -1)


def backproject(pixels: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., J, 3) on the rays through `pixels` (..., J, 2) at z = `depth` (..., J)."""
    K = np.asarray(K)
    depth = np.asarray(depth)
    yn = (pixels[..., 1] - K[..., 1, 2, None]) / K[..., 1, 1, None]
    xn = (pixels[..., 0] - K[..., 0, 2, None] - K[..., 0, 1, None] * yn) / K[..., 0, 0, None]
    return np.stack([xn * depth, yn * depth, depth], axis=-1)


def right_view_points(points_cam: np.ndarray, baseline_mm=DEFAULT_BASELINE_MM) -> np.ndarray:
    """Camera-frame joints as seen by the paper's right camera.

    The right camera sits `baseline_mm` to the right (+x) of the left one, with the same
    orientation and K, so its camera-frame joints are (x - b, y, z). `baseline_mm` is a scalar or
    broadcasts against the leading dims of `points_cam`.
    """
    out = np.array(points_cam, copy=True)
    b = np.asarray(baseline_mm, dtype=out.dtype)
    out[..., 0] -= b[..., None] if b.ndim else b
    return out


def right_view_extrinsics(R: np.ndarray, t: np.ndarray, baseline_mm=DEFAULT_BASELINE_MM) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, t) of the right camera: same R, t shifted by -b along camera x."""
    t_right = np.array(t, dtype=np.float64, copy=True)
    t_right[..., 0] -= baseline_mm
    return np.array(R, copy=True), t_right


def in_image_components(u, v, width, height, z=None, out: np.ndarray | None = None) -> np.ndarray:
    """0 <= u < width and 0 <= v < height (and z > 0 when z is given), on component arrays.

    The core of `in_image`; the sizes broadcast against u and v. `out` is a bool array.
    """
    out = np.greater_equal(u, 0, out=out)
    out &= u < width
    out &= v >= 0
    out &= v < height
    if z is not None:
        out &= z > 0
    return out


def in_image(points_2d: np.ndarray, image_size, depth: np.ndarray | None = None) -> np.ndarray:
    """True where a pixel lies inside [0, W) x [0, H) (and, when given, depth z > 0).

    `image_size` is [width, height], shape (2,) or (..., 2).
    """
    size = np.asarray(image_size)
    points_2d = np.asarray(points_2d)
    return in_image_components(points_2d[..., 0], points_2d[..., 1], size[..., 0, None], size[..., 1, None], depth)


def look_at(camera_pos: np.ndarray, target: np.ndarray, roll_rad=0.0, up: np.ndarray = WORLD_UP) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, t) of an OpenCV camera at `camera_pos` looking at `target` (both (..., 3)).

    The camera's x axis is horizontal (perpendicular to the world up), its y axis points down in
    the image, and a positive `roll_rad` then rotates the camera clockwise about its optical axis
    as seen from behind. Looking straight along `up` is undefined and must be avoided by callers.
    """
    camera_pos = np.asarray(camera_pos, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    z = target - camera_pos
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    x = np.cross(z, np.broadcast_to(up, z.shape))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    roll = np.asarray(roll_rad, dtype=np.float64)[..., None]
    c, s = np.cos(roll), np.sin(roll)
    # Rolling the camera by +roll about its z axis rotates its x/y axes within the image plane.
    x_r = c * x + s * y
    y_r = -s * x + c * y
    R = np.stack([x_r, y_r, z], axis=-2)
    t = -np.einsum("...ij,...j->...i", R, camera_pos)
    return R, t


def orbit_rotation_components(azimuth, elevation, roll) -> np.ndarray:
    """World->camera rotation (3, 3, ...) of a camera orbiting its target, from angles (...) in radians.

    The camera sits at target + d (cos el cos az, cos el sin az, sin el) and looks at the target
    with its x axis horizontal, then rolls by `roll` as in `look_at` (which this equals, in closed
    form: no cross products or normalization). Rows are the camera's x, y, z axes in the world.
    Angles may be float32; the result has their dtype.
    """
    ca, sa = np.cos(azimuth), np.sin(azimuth)
    ce, se = np.cos(elevation), np.sin(elevation)
    cr, sr = np.cos(roll), np.sin(roll)
    x0 = (-sa, ca, np.zeros_like(sa))
    y0 = (se * ca, se * sa, -ce * np.ones_like(ca))
    dtype = np.result_type(ca, ce, cr)
    R = np.empty((3, 3) + np.broadcast_shapes(ca.shape, ce.shape, cr.shape), dtype=dtype)
    for j in range(3):
        R[0, j] = cr * x0[j] + sr * y0[j]
        R[1, j] = cr * y0[j] - sr * x0[j]
    R[2, 0] = -ce * ca
    R[2, 1] = -ce * sa
    R[2, 2] = -se
    return R


def orbit_camera_components(target, distance, azimuth, elevation, roll) -> tuple[np.ndarray, np.ndarray]:
    """`orbit_camera` on component arrays: R (3, 3, ...) and t (3, ...) for a target (3, ...).

    The core of `orbit_camera`, for any layout; the result has the angles' and target's dtype.
    """
    R = orbit_rotation_components(np.asarray(azimuth), np.asarray(elevation), np.asarray(roll))
    distance = np.asarray(distance)
    zeros = np.zeros_like(distance)
    t = transform_components(-np.asarray(target), R, np.stack([zeros, zeros, distance]))
    return R, t


def orbit_camera(target: np.ndarray, distance, azimuth, elevation, roll=0.0) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R (..., 3, 3), t (..., 3)) of a camera `distance` mm from `target` (..., 3).

    Azimuth is measured about the world z axis from +x, elevation above the horizontal plane
    through the target, roll about the optical axis (radians). Since the target lies on the
    optical axis, t = -R target + (0, 0, distance).
    """
    Rc, tc = orbit_camera_components(np.moveaxis(np.asarray(target), -1, 0), distance, azimuth, elevation, roll)
    return np.moveaxis(Rc, (0, 1), (-2, -1)), np.moveaxis(tc, 0, -1)


class CameraModel(BaseModel):
    """One camera at a boundary (config files, wire headers): intrinsics, image size, extrinsics."""

    model_config = ConfigDict(extra="forbid")

    K: list[list[float]]
    image_size: tuple[int, int]  # [width, height]
    R: list[list[float]]
    t: list[float]
    dist: list[float] | None = None  # OpenCV (k1, k2, p1, p2[, k3]); None = none

    @field_validator("K", "R")
    @classmethod
    def _three_by_three(cls, v: list[list[float]]) -> list[list[float]]:
        a = np.asarray(v, dtype=np.float64)
        if a.shape != (3, 3) or not np.all(np.isfinite(a)):
            raise ValueError(f"must be a finite 3x3 matrix, got shape {a.shape}")
        return v

    @field_validator("t")
    @classmethod
    def _vec3(cls, v: list[float]) -> list[float]:
        a = np.asarray(v, dtype=np.float64)
        if a.shape != (3,) or not np.all(np.isfinite(a)):
            raise ValueError(f"must be a finite 3-vector, got shape {a.shape}")
        return v

    @field_validator("image_size")
    @classmethod
    def _positive(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError(f"must be positive [width, height], got {list(v)}")
        return v

    @field_validator("dist")
    @classmethod
    def _dist(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (len(v) not in (4, 5) or not np.all(np.isfinite(v))):
            raise ValueError("must hold 4 or 5 finite OpenCV coefficients (k1, k2, p1, p2[, k3])")
        return v

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(K, image_size, R, t) as numpy arrays."""
        return (
            np.asarray(self.K, dtype=np.float64),
            np.asarray(self.image_size, dtype=np.int32),
            np.asarray(self.R, dtype=np.float64),
            np.asarray(self.t, dtype=np.float64),
        )
