"""The image network: a person crop in, h36m17 2D and root-relative 3D out.

Integral regression (Sun et al. 2018) over 2.5D maps: a ResNet backbone, an upsampling head
(Xiao et al. 2018's deconvolutions, here nearest-neighbour upsampling + 3x3 convolution), and per
joint one heatmap and three location maps (x, y, z in metres, root-relative, camera axes; the
location maps of Mehta et al. 2017). The softmax of a joint's heatmap gives its 2D position as the
expected pixel (soft-argmax) and its 3D as the same expectation of the location maps, so 2D and
depth come out of one differentiable read-out and are trained with plain L1 losses. z is the
per-joint root-relative depth of Zhou et al. 2017; x and y let the geometric search place the pose
in the camera when K is known (train/search.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from generator.skeleton import NUM_JOINTS

from .backbone import BackboneConfig, ResNet, conv_bn

# ImageNet statistics: the usual input normalization of ResNets.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)


class NetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_size: int = Field(128, ge=16)  # crop side in pixels
    backbone: BackboneConfig = Field(default_factory=BackboneConfig)
    head_channels: list[int] = Field(default_factory=lambda: [96, 64])  # one x2 upsampling stage each

    def heatmap_size(self) -> int:
        return self.input_size * (2 ** len(self.head_channels)) // self.backbone.stride()


class ImagePoseNet(nn.Module):
    """forward(uint8 or float images (B, 3, S, S)) -> {"joints_2d": (B, 17, 2) in [-1, 1] of the crop,
    "joints_3d": (B, 17, 3) metres root-relative, "heatmaps": (B, 17, h, w) probabilities}."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet(cfg.backbone)
        layers: list[nn.Module] = []
        cin = self.backbone.out_channels
        for c in cfg.head_channels:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), conv_bn(cin, c, 3)]
            cin = c
        self.head = nn.Sequential(*layers)
        self.out = nn.Conv2d(cin, NUM_JOINTS * 4, 1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("rgb_mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("rgb_std", torch.tensor(RGB_STD).view(1, 3, 1, 1) * 255)
        # The training mixture's mean pose (dataset.mean_pose): the trivial predictor it must beat.
        self.register_buffer("mean_2d", torch.zeros(NUM_JOINTS, 2))
        self.register_buffer("mean_3d", torch.zeros(NUM_JOINTS, 3))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images.float() - self.rgb_mean) / self.rgb_std
        maps = self.out(self.head(self.backbone(x)))
        b, _, h, w = maps.shape
        logits = maps[:, :NUM_JOINTS].reshape(b, NUM_JOINTS, h * w)
        prob = F.softmax(logits, dim=-1)
        loc = maps[:, NUM_JOINTS:].reshape(b, NUM_JOINTS, 3, h * w)
        # pixel centres of the heatmap in [-1, 1] crop coordinates
        xs = (torch.arange(w, device=maps.device, dtype=prob.dtype) + 0.5) / w * 2 - 1
        ys = (torch.arange(h, device=maps.device, dtype=prob.dtype) + 0.5) / h * 2 - 1
        p2 = prob.view(b, NUM_JOINTS, h, w)
        joints_2d = torch.stack([(p2.sum(dim=2) * xs).sum(-1), (p2.sum(dim=3) * ys).sum(-1)], dim=-1)
        # The 3D is read as a residual to the training mixture's mean pose: an untrained network
        # starts at the trivial predictor instead of at a point, and learns from there.
        joints_3d = torch.einsum("bjcn,bjn->bjc", loc, prob) + self.mean_3d
        return {"joints_2d": joints_2d, "joints_3d": joints_3d, "heatmaps": p2}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def channels_last(model: ImagePoseNet) -> bool:
    """Whether the model's weights are in NHWC layout (its inputs should be too)."""
    w = model.backbone.layers[0][0].weight  # the stem's k x k convolution (a 1 x 1 kernel would be both)
    return w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
