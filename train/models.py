"""The paper's two lifting networks and the single-view baseline, all Martinez et al. (2017) MLPs.

Every network maps raw units to raw units (normalized image coordinates in, normalized
coordinates or millimetres out; see normalization.py) and standardizes on both sides with `ZScore`
buffers, so a checkpoint is self-contained. Losses are MSE in the standardized output space, as in
the authors' code.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from generator.skeleton import NUM_JOINTS, ROOT

from .normalization import ZScore, disparity_code, disparity_from_code, pose_code

IN_2D = NUM_JOINTS * 2  # 34
OUT_3D = NUM_JOINTS * 3  # 51


class NetConfig(BaseModel):
    """Size and regularization of one Martinez MLP."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(1024, ge=8)
    blocks: int = Field(2, ge=0)  # residual blocks, each two Linear-BN-ReLU-Dropout layers
    # 0.25, not Martinez's 0.5: 6 mm lower P-MPJPE on unseen motions at batch 256 (docs/benchmarks.md, Generalization).
    dropout: float = Field(0.25, ge=0.0, lt=1.0)
    max_norm: float | None = Field(None, gt=0)  # per-unit max-norm on every Linear's weights


class BatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d that, in training under a process group (DDP), normalizes with the statistics of
    the global batch, so N ranks train exactly as one process on their union would.

    torch's SyncBatchNorm does this on GPUs only; this one runs on any device (gloo on CPU), on the
    (N, C) inputs of these MLPs. Its state dict is BatchNorm1d's, and outside a process group (or
    in eval) it is BatchNorm1d.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        x64 = x.double()
        # Sums over every rank's rows, in float64 so E[x^2] - E[x]^2 keeps its digits; the
        # all-reduce carries gradients back to every rank's rows.
        local = torch.cat([x64.sum(0), x64.square().sum(0), x64.new_tensor([x.shape[0]])])
        total = dist_nn.all_reduce(local)
        count = total[-1]
        mean = total[:c] / count
        var = (total[c : 2 * c] / count - mean.square()).clamp_min(0.0)
        y = ((x64 - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)
        if self.affine:
            y = y * self.weight + self.bias
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * count / (count - 1).clamp_min(1.0)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), factor)
        return y


class ResidualBlock(nn.Module):
    """Two Linear -> BatchNorm -> ReLU -> Dropout layers with a skip connection around them."""

    def __init__(self, width: int, dropout: float):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2):
            layers += [nn.Linear(width, width), BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class MartinezMLP(nn.Module):
    """in -> Linear(width)-BN-ReLU-Dropout -> residual blocks -> Linear(out), on standardized data."""

    def __init__(self, in_dim: int, out_dim: int, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Sequential(
            nn.Linear(in_dim, cfg.width), BatchNorm1d(cfg.width), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout)
        )
        self.blocks = nn.Sequential(*(ResidualBlock(cfg.width, cfg.dropout) for _ in range(cfg.blocks)))
        self.head = nn.Linear(cfg.width, out_dim)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Clip each output unit's incoming weight vector to `max_norm` (no-op when it is None)."""
        if self.cfg.max_norm is None:
            return
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.renorm(m.weight, p=2, dim=0, maxnorm=self.cfg.max_norm))


class StandardizedNet(nn.Module):
    """A Martinez MLP between an input and an output `ZScore`: raw features (N, in) -> raw (N, out)."""

    def __init__(self, in_dim: int, out_dim: int, cfg: NetConfig):
        super().__init__()
        self.in_norm = ZScore(in_dim)
        self.out_norm = ZScore(out_dim)
        self.mlp = MartinezMLP(in_dim, out_dim, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_norm.inverse(self.mlp(self.in_norm(x.reshape(x.shape[0], -1))))

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """MSE in the standardized output space."""
        diff = (prediction - target).reshape(prediction.shape[0], -1) / self.out_norm.std
        return diff.square().mean()

    def fit(self, x, y) -> None:
        self.in_norm.fit(_flat(x))
        self.out_norm.fit(_flat(y))


def _flat(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x.reshape(x.shape[0], -1)


class ViewSynthesisNet(nn.Module):
    """Left view (N, 17, 2) -> the synthesized right view (N, 17, 2), normalized image coordinates.

    The MLP maps the left pose's code to the disparity's code (normalization.py) and the right
    view is the left one minus the disparity: the right view differs from the left by a few
    percent, so predicting it whole would bury the depth signal under the pose's own variance.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.net = StandardizedNet(IN_2D, IN_2D, cfg)

    def forward(self, left: torch.Tensor) -> torch.Tensor:
        code, size = pose_code(left)
        # Only x has a disparity: the right camera is the left one moved along its x axis.
        disparity_c = self.net(code).reshape(-1, NUM_JOINTS, 2) * code.new_tensor([1.0, 0.0])
        return left - disparity_from_code(disparity_c, size)

    def loss(self, left: torch.Tensor, right: torch.Tensor, right_target: torch.Tensor) -> torch.Tensor:
        """MSE of the disparity codes (standardized), the space the MLP predicts in."""
        size = pose_code(left)[1]
        return self.net.loss(disparity_code(left - right, size), disparity_code(left - right_target, size))

    @torch.no_grad()
    def fit(self, left: torch.Tensor, right: torch.Tensor) -> None:
        code, size = pose_code(left)
        self.net.fit(code, disparity_code(left - right, size))


class ReconstructionNet(nn.Module):
    """Left and right views (N, 17, 2) each, 68 numbers -> root-relative 3D (N, 17, 3) in mm.

    The 68 inputs enter as the left pose's code and the disparity's code (a fixed change of
    variables before the z-scoring), for the same reason as in ViewSynthesisNet.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.net = StandardizedNet(2 * IN_2D, OUT_3D, cfg)

    @staticmethod
    def features(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        code, size = pose_code(left)
        return torch.cat([_flat(code), _flat(disparity_code(left - right, size))], dim=1)

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return with_zero_root(self.net(self.features(left, right)).reshape(-1, NUM_JOINTS, 3))

    def loss(self, pose: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net.loss(pose, target)

    @torch.no_grad()
    def fit(self, left: torch.Tensor, right: torch.Tensor, pose: torch.Tensor) -> None:
        self.net.fit(self.features(left, right), pose)


class SingleViewNet(nn.Module):
    """The Martinez baseline: one view (N, 17, 2) -> root-relative 3D (N, 17, 3) mm, same size."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.net = StandardizedNet(IN_2D, OUT_3D, cfg)

    def forward(self, left: torch.Tensor) -> torch.Tensor:
        return with_zero_root(self.net(pose_code(left)[0]).reshape(-1, NUM_JOINTS, 3))

    def loss(self, pose: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net.loss(pose, target)

    @torch.no_grad()
    def fit(self, left: torch.Tensor, pose: torch.Tensor) -> None:
        self.net.fit(pose_code(left)[0], pose)


def with_zero_root(pose: torch.Tensor) -> torch.Tensor:
    """A root-relative pose has its root at the origin by definition; set it exactly."""
    mask = torch.ones_like(pose[:1])
    mask[:, ROOT] = 0.0
    return pose * mask


class StereoLifter(nn.Module):
    """The paper's label generator: view synthesis, then 3D reconstruction from both views."""

    kind = "stereo"

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.view = ViewSynthesisNet(cfg)
        self.recon = ReconstructionNet(cfg)

    def forward(self, left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left (N, 17, 2) -> (synthesized right (N, 17, 2), root-relative 3D (N, 17, 3) mm)."""
        right = self.view(left)
        return right, self.recon(left, right)

    def fit_normalization(self, sample: dict[str, np.ndarray]) -> None:
        """Fit every ZScore on a sample of training features (train/targets.py)."""
        t = {k: torch.from_numpy(v).double() for k, v in sample.items()}
        self.view.fit(t["left"], t["right_target"])
        self.recon.fit(t["left"], t["right_input"], t["pose"])

    def nets(self) -> list[MartinezMLP]:
        return [self.view.net.mlp, self.recon.net.mlp]


class SingleLifter(nn.Module):
    """The baseline wrapped like StereoLifter (no right view)."""

    kind = "single"

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.single = SingleViewNet(cfg)

    def forward(self, left: torch.Tensor) -> tuple[None, torch.Tensor]:
        return None, self.single(left)

    def fit_normalization(self, sample: dict[str, np.ndarray]) -> None:
        self.single.fit(torch.from_numpy(sample["left"]).double(), torch.from_numpy(sample["pose"]).double())

    def nets(self) -> list[MartinezMLP]:
        return [self.single.net.mlp]


MODEL_KINDS = {"stereo": StereoLifter, "single": SingleLifter}


def build_model(kind: str, cfg: NetConfig) -> StereoLifter | SingleLifter:
    try:
        return MODEL_KINDS[kind](cfg)
    except KeyError:
        raise ValueError(f"unknown model {kind!r}; choose one of {sorted(MODEL_KINDS)}") from None


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
