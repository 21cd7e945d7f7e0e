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


def free_port() -> int:
    """A TCP port nobody listens on right now (for a process group's rendezvous)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_rank(rank: int, world: int, port: int, config_json: str, run_dir: str, states_dir: str) -> None:
    """One DDP rank of `train_run` (started by torch.multiprocessing.spawn), as torchrun would start
    it; saves the rank's final model state to states_dir/rank{rank}.pt, so a test can compare ranks.

    The trainer keeps its model to itself, so the model it builds is caught on the way out of
    `build_model` (the real function; nothing is replaced)."""
    import os
    from pathlib import Path

    import torch

    import train.trainer as trainer
    from train.config import TrainConfig

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    built = []
    build_model = trainer.build_model

    def keep(*args, **kw):
        built.append(build_model(*args, **kw))
        return built[-1]

    trainer.build_model = keep
    trainer.train_run(TrainConfig.model_validate_json(config_json), run_dir, show_progress=False)
    torch.save(built[0].state_dict(), Path(states_dir) / f"rank{rank}.pt")
