"""Image-network checkpoints: the config, the model (with its mean-pose buffers), the optimizer and
the training state; tensors and plain values only (`torch.load(weights_only=True)`)."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import torch

from generator.store import atomic_write

from ..checkpoint import CHECKPOINT_NAME, checkpoint_path
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
    path = checkpoint_path(path)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": ckpt.config.model_dump(mode="json"),
        "model_state": ckpt.model_state,
        "optimizer_state": ckpt.optimizer_state,
        "epoch": ckpt.epoch,
        "step": ckpt.step,
        "history": ckpt.history,
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, buf.getbuffer())
    return path


def load_image_checkpoint(path: str | Path, map_location: str = "cpu") -> ImageCheckpoint:
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (give an image run directory or its {CHECKPOINT_NAME})")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        what = "a lifter checkpoint (posebridge train); give an image run" if isinstance(payload, dict) and payload.get("format") == "posebridge-lifter" else "not an image-network checkpoint"
        raise ValueError(f"{path}: {what} (key 'format' is not {FORMAT!r})")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')!r}, this posebridge reads {FORMAT_VERSION}")
    return ImageCheckpoint(
        config=ImageTrainConfig.model_validate(payload["config"]),
        model_state=payload["model_state"],
        optimizer_state=payload.get("optimizer_state"),
        epoch=int(payload["epoch"]),
        step=int(payload["step"]),
        history=payload.get("history") or {},
        path=path,
    )
