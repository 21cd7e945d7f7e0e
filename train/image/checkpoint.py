"""Image-network checkpoints: the config, the model (with its mean-pose buffers), the optimizer and
the training state; tensors and plain values only (`torch.load(weights_only=True)`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..checkpoint import load_payload, save_payload
from .config import ImageTrainConfig

FORMAT = "posebridge-image-net"
FORMAT_VERSION = 1


@dataclasses.dataclass
class ImageCheckpoint:
    config: ImageTrainConfig
    model_state: dict
    optimizer_state: dict | None = None
    epoch: int = 0
    step: int = 0
    history: dict = dataclasses.field(default_factory=dict)
    path: Path | None = None


def save_image_checkpoint(path: str | Path, ckpt: ImageCheckpoint) -> Path:
    return save_payload(path, FORMAT, FORMAT_VERSION, ckpt)


def load_image_checkpoint(path: str | Path, map_location: str = "cpu") -> ImageCheckpoint:
    _, config, state = load_payload(path, FORMAT, FORMAT_VERSION, "an image-network", map_location)
    return ImageCheckpoint(config=ImageTrainConfig.model_validate(config), **state)
