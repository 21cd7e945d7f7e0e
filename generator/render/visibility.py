"""Keypoint visibility from the depth buffer: 0 outside the image, 1 occluded, 2 visible.

A joint lies inside the body, so the depth buffer never shows the joint itself. Along the ray
from the joint towards the camera, the body's own surface around the joint (its capsule end
sphere and the ellipsoids that enclose it, `JointSurfaces`) ends at an exit point. The joint is
visible when the first surface the camera sees at the joint's pixel is not in front of that exit
point by more than a tolerance:

    z_buffer >= z_exit - (VISIBILITY_TOLERANCE_MM + VISIBILITY_TOLERANCE_PX * z_joint / fx)

The tolerance covers the depth difference between the joint's exact sub-pixel position and the
centre of the pixel that is read. Anything else in front (another limb, the torso, an occluder,
or the joint's own part folded over it) makes the joint occluded. Unity Perception's keypoint
labeler uses the same kind of rule with a fixed per-joint "self occlusion distance"; here that
distance comes from the actual geometry and viewing direction.
"""

from __future__ import annotations

import numpy as np

from ..camera import in_image

VISIBILITY_TOLERANCE_MM = 10.0
VISIBILITY_TOLERANCE_PX = 1.0

OUTSIDE, OCCLUDED, VISIBLE = 0, 1, 2


def ellipsoid_exit_distance(origin: np.ndarray, direction: np.ndarray, ellipsoids: np.ndarray) -> np.ndarray:
    """Distance (P,) from each origin (P, 3) along its unit direction (P, 3) to where it leaves its
    ellipsoid (P, >=12: centre, three axis vectors = half extents); 0 when the origin lies outside it.
    """
    center = ellipsoids[:, :3]
    axes = ellipsoids[:, 3:12].reshape(-1, 3, 3)  # rows = axis vectors
    inv = axes / np.einsum("pij,pij->pi", axes, axes)[..., None]  # rows a_i / |a_i|^2: the inverse map
    q = np.einsum("pij,pj->pi", inv, origin - center)
    v = np.einsum("pij,pj->pi", inv, direction)
    c = np.einsum("pi,pi->p", q, q) - 1.0
    s = _far_root(np.einsum("pi,pi->p", v, v), np.einsum("pi,pi->p", q, v), c)
    return np.where(c <= 0.0, s, 0.0)


def capsule_exit_distance(origin: np.ndarray, direction: np.ndarray, capsules: np.ndarray) -> np.ndarray:
    """Distance (P,) from each origin (P, 3) along its unit direction (P, 3) to where it leaves its
    capsule (P, >=8: a, radius_a, b, radius_b), taken with the larger radius throughout (so a
    tapered capsule counts slightly wide). The origins are inside (joints at a capsule end).

    A capsule is convex, so the exit of the ray is the farthest exit among its two end spheres
    and its cylinder.
    """
    a, b = capsules[:, 0:3], capsules[:, 4:7]
    r = np.maximum(capsules[:, 3], capsules[:, 7])
    best = np.maximum(_sphere_exit(origin - a, direction, r), _sphere_exit(origin - b, direction, r))
    axis = b - a
    length = np.linalg.norm(axis, axis=1)
    d = axis / np.maximum(length, 1e-9)[:, None]
    o = origin - a
    o_perp = o - np.einsum("pi,pi->p", o, d)[:, None] * d
    w_perp = direction - np.einsum("pi,pi->p", direction, d)[:, None] * d
    s = _far_root(np.einsum("pi,pi->p", w_perp, w_perp), np.einsum("pi,pi->p", o_perp, w_perp), np.einsum("pi,pi->p", o_perp, o_perp) - r * r)
    along = np.einsum("pi,pi->p", o + s[:, None] * direction, d)
    on_cylinder = (along >= 0.0) & (along <= length)
    return np.maximum(best, np.where(on_cylinder, s, 0.0))


def _far_root(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The larger root of a s^2 + 2 b s + c = 0, clamped at 0; 0 where there is none."""
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (-b + np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0.0) & (a > 1e-12), np.maximum(s, 0.0), 0.0)


def _sphere_exit(offset: np.ndarray, direction: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Far intersection of rays (origin - centre = offset, unit direction) with spheres."""
    return _far_root(np.ones(len(offset)), np.einsum("pi,pi->p", offset, direction), np.einsum("pi,pi->p", offset, offset) - radius * radius)


def joint_exit_distance(joints_world: np.ndarray, camera_pos: np.ndarray, prims, surfaces) -> np.ndarray:
    """Distance (17,) from each joint towards the camera to the end of its own body surface.

    `prims` and `surfaces` are the mannequin's Primitives and JointSurfaces.
    """
    to_camera = camera_pos - joints_world
    direction = to_camera / np.linalg.norm(to_camera, axis=1, keepdims=True)
    exit_dist = np.array(surfaces.sphere_radius, dtype=np.float64, copy=True)
    for pairs, shapes, exit_fn in (
        (surfaces.ellipsoid_pairs, prims.ellipsoids, ellipsoid_exit_distance),
        (surfaces.capsule_pairs, prims.capsules, capsule_exit_distance),
    ):
        j, k = pairs[:, 0], pairs[:, 1]
        np.maximum.at(exit_dist, j, exit_fn(joints_world[j], direction[j], shapes[k].astype(np.float64)))
    return exit_dist


def visibility_from_depth(
    joints_cam: np.ndarray, joints_2d: np.ndarray, image_size, buffer_depth: np.ndarray, exit_distance: np.ndarray, fx: float
) -> np.ndarray:
    """Visibility (17,) uint8 from the buffer's camera-frame depth (17,) at each joint's pixel.

    `buffer_depth` is z of the first surface at the pixel (inf where only background was drawn);
    it is ignored for joints outside the image.
    """
    z = joints_cam[:, 2]
    inside = in_image(joints_2d, image_size, z)
    # The exit point lies on the ray to the camera, so its depth shrinks in proportion to distance.
    z_exit = z * (1.0 - exit_distance / np.linalg.norm(joints_cam, axis=1))
    tolerance = VISIBILITY_TOLERANCE_MM + VISIBILITY_TOLERANCE_PX * z / fx
    visible = buffer_depth >= z_exit - tolerance
    return np.where(inside, np.where(visible, VISIBLE, OCCLUDED), OUTSIDE).astype(np.uint8)
