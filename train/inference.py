"""A trained lifter at inference: pixels + K -> root-relative 3D, right view, and the placed pose."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .models import StereoLifter, SingleLifter, build_model
from .normalization import normalized_to_pixels
from .search import GridConfig, geometric_search
from .targets import left_input


@dataclasses.dataclass
class Lifted:
    """What the lifter made of N poses. Arrays are float64; `right_2d` is None for a single-view model."""

    pose_net: np.ndarray  # (N, 17, 3) the network's root-relative pose, mm
    joints: np.ndarray  # (N, 17, 3) the placed pose, camera frame, mm (absolute)
    root_depth: np.ndarray  # (N,) mm
    right_2d: np.ndarray | None  # (N, 17, 2) the synthesized right view, pixels


class Lifter:
    """A loaded model in eval mode. Create with `Lifter.load(run_dir_or_checkpoint)`."""

    def __init__(self, model: StereoLifter | SingleLifter, baseline_mm: float, source: str = ""):
        self.model = model.eval()
        self.baseline_mm = baseline_mm
        self.source = source

    @property
    def kind(self) -> str:
        return self.model.kind

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "Lifter":
        ckpt = load_checkpoint(path, map_location=device)
        model = build_model(ckpt.config.model, ckpt.config.net)
        model.load_state_dict(ckpt.model_state)
        return cls(model.to(device), ckpt.config.baseline_mm, str(ckpt.path))

    def mean_pose_2d(self) -> np.ndarray:
        """The training data's mean left-view pose (17, 2), up to scale: its code's mean with s = 1."""
        net = self.model.view.net if self.kind == "stereo" else self.model.single.net
        code = net.in_norm.mean.detach().cpu().double().numpy().reshape(-1, 2)
        return np.concatenate([code[:1], code[:1] + code[1:]])

    @torch.no_grad()
    def predict(self, pixels: np.ndarray, K: np.ndarray, batch: int = 16384) -> tuple[np.ndarray, np.ndarray | None]:
        """Root-relative 3D (N, 17, 3) mm and, for the stereo model, the right view (N, 17, 2) pixels."""
        pixels = np.asarray(pixels, dtype=np.float64)
        K = np.broadcast_to(np.asarray(K, dtype=np.float64), (len(pixels), 3, 3))
        device = next(self.model.parameters()).device
        poses, rights = [], []
        for start in range(0, len(pixels), batch):
            sl = slice(start, start + batch)
            left = torch.from_numpy(left_input(pixels[sl], K[sl])).to(device)
            right, pose = self.model(left)
            poses.append(pose.double().cpu().numpy())
            if right is not None:
                rights.append(normalized_to_pixels(right.double().cpu().numpy(), K[sl]))
        pose = np.concatenate(poses) if poses else np.zeros((0, 17, 3))
        right_2d = (np.concatenate(rights) if rights else np.zeros((0, 17, 2))) if self.kind == "stereo" else None
        return pose, right_2d

    def lift(self, pixels: np.ndarray, K: np.ndarray, search: str = "fast", grid: GridConfig | None = None) -> Lifted:
        """Predict, then place each pose in the camera with the geometric search (or rigidly, 'none')."""
        K = np.broadcast_to(np.asarray(K, dtype=np.float64), (len(pixels), 3, 3))
        pose, right = self.predict(pixels, K)
        placed = geometric_search(pose, pixels, K, method=search, grid=grid)
        return Lifted(pose_net=pose, joints=placed.joints, root_depth=placed.root_depth, right_2d=right)
