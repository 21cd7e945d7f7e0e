"""Helpers for the train tests: small, real pairs made from the pose prior and random cameras."""

from __future__ import annotations

import numpy as np

from generator.camera import project_points, right_view_points, world_to_camera
from generator.camera_sampler import CameraSamplerConfig, sample_cameras_for_poses
from generator.pairs_io import Pairs
from generator.prior import sample_prior_poses


def make_pairs(
    rng: np.random.Generator,
    n: int,
    *,
    right_baseline_mm: float | None = None,
    actions: tuple[str, ...] = ("walk", "jump"),
    shared_K: bool = False,
) -> Pairs:
    """n pairs of prior poses under random cameras (rejected samples dropped and redrawn)."""
    cfg = CameraSamplerConfig()
    parts_world, parts_cams = [], []
    while sum(len(p) for p in parts_world) < n:
        world = sample_prior_poses(rng, n).astype(np.float64)
        cams, ok = sample_cameras_for_poses(rng, world, cfg)
        parts_world.append(world[ok])
        parts_cams.append(cams.take(ok))
    world = np.concatenate(parts_world)[:n]
    K = np.concatenate([c.K for c in parts_cams])[:n]
    R = np.concatenate([c.R for c in parts_cams])[:n]
    t = np.concatenate([c.t for c in parts_cams])[:n]
    size = np.concatenate([c.image_size for c in parts_cams])[:n]
    cam = world_to_camera(world, R, t)
    if shared_K:
        K = np.broadcast_to(K[0], K.shape).copy()
    uv = project_points(cam, K)
    pairs = Pairs(
        joints_2d=uv.astype(np.float32),
        joints_3d=cam.astype(np.float32),
        K=(K[0] if shared_K else K).astype(np.float32),
        image_size=size.astype(np.int32),
        action=np.array([actions[i % len(actions)] for i in range(n)]),
    )
    if right_baseline_mm is not None:
        pairs.joints_2d_right = project_points(right_view_points(cam, right_baseline_mm), K).astype(np.float32)
        pairs.baseline_mm = np.float32(right_baseline_mm)
    return pairs
