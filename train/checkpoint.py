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


_STATE_KEYS = ("model_state", "optimizer_state", "epoch", "step", "history")


def save_payload(path: str | Path, fmt: str, version: int, ckpt) -> Path:
    """Write a checkpoint dataclass (config, model and optimizer state, epoch, step, history)
    tagged with its format, atomically and fsynced: a run killed mid-save keeps its last checkpoint."""
    path = checkpoint_path(path)
    payload = {"format": fmt, "version": version, "config": ckpt.config.model_dump(mode="json"), **{k: getattr(ckpt, k) for k in _STATE_KEYS}}
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write(path, buf.getbuffer())
    return path


def load_payload(path: str | Path, fmt: str, version: int, what: str, map_location: str = "cpu") -> tuple[Path, dict, dict]:
    """(file, config values, the state fields of the checkpoint dataclass) of a checkpoint of
    format `fmt`; a one-line error naming the file for anything else (`what` names the command
    that writes the right kind)."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint (give {what} run directory or its {CHECKPOINT_NAME})")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable checkpoint ({e})") from e
    found = payload.get("format") if isinstance(payload, dict) else None
    if found != fmt:
        kind = {FORMAT: "a lifter checkpoint (posebridge train)", "posebridge-image-net": "an image-network checkpoint (posebridge train-image)"}.get(found)
        raise ValueError(f"{path}: {kind or 'not a posebridge checkpoint'}, not {what} one (key 'format' is not {fmt!r})")
    if payload.get("version") != version:
        raise ValueError(f"{path}: checkpoint version {payload.get('version')!r}, this posebridge reads {version}")
    state = {"model_state": payload["model_state"], "optimizer_state": payload.get("optimizer_state"), "epoch": int(payload["epoch"]),
             "step": int(payload["step"]), "history": payload.get("history") or {}, "path": path}  # fmt: skip
    return path, payload["config"], state


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    return save_payload(path, FORMAT, FORMAT_VERSION, ckpt)


def load_checkpoint(path: str | Path, map_location: str = "cpu") -> Checkpoint:
    _, config, state = load_payload(path, FORMAT, FORMAT_VERSION, "a lifter", map_location)
    return Checkpoint(config=TrainConfig.model_validate(config), **state)
