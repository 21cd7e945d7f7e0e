"""Checkpoint files: the model (with its normalization statistics), optimizer and training state.

A run directory holds `checkpoint.pt` (written atomically after every epoch), `config.yaml`,
`metrics.json` and `loss_curves.png`. Checkpoints hold only tensors and plain Python values, so
they load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import torch

from generator.store import atomic_write

from .config import TrainConfig

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "posebridge-lifter"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Checkpoint:
    config: TrainConfig
    model_state: dict
    optimizer_state: dict | None = None
    epoch: int = 0  # epochs completed
    step: int = 0
    history: dict = dataclasses.field(default_factory=dict)
    path: Path | None = None


def checkpoint_path(path: str | Path) -> Path:
    """A run directory or a checkpoint file -> the checkpoint file."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
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
    atomic_write(path, buf.getbuffer())  # fsynced: a run killed mid-save keeps its last checkpoint
    return path


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> Checkpoint:
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (give a run directory or a .pt file)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a posebridge lifter checkpoint (key 'format' is not {FORMAT!r})")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')!r}, this posebridge reads {FORMAT_VERSION}")
    return Checkpoint(
        config=TrainConfig.model_validate(payload["config"]),
        model_state=payload["model_state"],
        optimizer_state=payload.get("optimizer_state"),
        epoch=int(payload["epoch"]),
        step=int(payload["step"]),
        history=payload.get("history") or {},
        path=path,
    )
