"""ResNet backbones in plain torch (torchvision cannot be installed beside the CPU torch here).

`BackboneConfig` describes one: a stem (a strided convolution, optionally a max-pool), then stages
of residual blocks, each stage starting with a stride. Basic blocks (two 3x3 convolutions, He et
al. 2016) make the small CPU nets; bottleneck blocks (1x1, 3x3, 1x1 with 4x expansion) with depths
[3, 4, 6, 3] and widths [64, 128, 256, 512] are ResNet-50.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn


class BackboneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    block: Literal["basic", "bottleneck"] = "basic"
    stem_channels: int = Field(24, ge=1)
    stem_kernel: int = Field(3, ge=1)
    stem_pool: bool = False  # a 3x3 stride-2 max-pool after the stem (ResNet's)
    widths: list[int] = Field(default_factory=lambda: [32, 64, 128, 256])  # per stage (bottleneck: x4 out)
    depths: list[int] = Field(default_factory=lambda: [1, 2, 2, 1])
    strides: list[int] = Field(default_factory=lambda: [2, 2, 2, 1])

    @model_validator(mode="after")
    def _same_lengths(self) -> "BackboneConfig":
        if not (len(self.widths) == len(self.depths) == len(self.strides) >= 1):
            raise ValueError("widths, depths and strides need one entry per stage")
        return self

    def stride(self) -> int:
        """Input pixels per output feature pixel."""
        s = 2 * (2 if self.stem_pool else 1)
        for t in self.strides:
            s *= t
        return s


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, relu=False))
        self.skip = nn.Identity() if stride == 1 and cin == width else conv_bn(cin, width, 1, stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(conv_bn(cin, width, 1), conv_bn(width, width, 3, stride), conv_bn(width, cout, 1, relu=False))
        self.skip = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet(nn.Module):
    def __init__(self, cfg: BackboneConfig):
        super().__init__()
        block = BasicBlock if cfg.block == "basic" else Bottleneck
        layers: list[nn.Module] = [conv_bn(3, cfg.stem_channels, cfg.stem_kernel, 2)]
        if cfg.stem_pool:
            layers.append(nn.MaxPool2d(3, 2, 1))
        cin = cfg.stem_channels
        for width, depth, stride in zip(cfg.widths, cfg.depths, cfg.strides):
            for d in range(depth):
                layers.append(block(cin, width, stride if d == 0 else 1))
                cin = width * block.expansion
        self.layers = nn.Sequential(*layers)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # each residual branch starts near zero (Goyal et al. 2017)
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_(m.body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
