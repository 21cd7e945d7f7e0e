"""The image network's training configuration and its two named presets.

`--config` takes a preset name or a YAML file; a YAML file may start from a preset with
`preset: NAME` (default `cpu-small`) and override any key. Command-line flags win over both.

- `cpu-small`: 128x128 crops, a ResNet-18-like net of basic blocks at a quarter of the width
  (1.9 M parameters), 32x32 heatmaps, batch 32, 10 epochs of 240 steps (76,800 samples): about
  25 minutes on 2 CPU cores at the ~50 samples/s of one torch thread beside one DataLoader
  worker (docs/benchmarks.md). The default budget of `posebridge train-image`.
- `gpu-full`: 256x256 crops, ResNet-50 (bottleneck blocks [3, 4, 6, 3], widths 64-512) with
  three upsampling stages of 256 channels to 64x64 heatmaps (Xiao et al. 2018's head), batch 64,
  40 epochs of 2,000 steps (5.1 M samples), 8 DataLoader workers, `--device cuda`.
"""

from __future__ import annotations

import copy
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from generator.config_file import ConfigError, read_config_mapping, set_dotted, validate_config

from .augment import AugmentConfig
from .losses import LossConfig
from .model import NetConfig

PRESETS: dict[str, dict] = {
    "cpu-small": {
        "net": {
            "input_size": 128,
            "backbone": {"block": "basic", "stem_channels": 24, "stem_kernel": 3, "stem_pool": False,
                         "widths": [32, 64, 128, 256], "depths": [1, 2, 2, 1], "strides": [2, 2, 2, 1]},
            "head_channels": [96, 64],
        },
        "batch_size": 32,
        "epochs": 10,
        "steps_per_epoch": 240,
        "lr": 2e-3,
        "threads": 1,
        "workers": 1,
        "device": "cpu",
    },
    "gpu-full": {
        "net": {
            "input_size": 256,
            "backbone": {"block": "bottleneck", "stem_channels": 64, "stem_kernel": 7, "stem_pool": True,
                         "widths": [64, 128, 256, 512], "depths": [3, 4, 6, 3], "strides": [1, 2, 2, 2]},
            "head_channels": [256, 256, 256],
        },
        "batch_size": 64,
        "epochs": 40,
        "steps_per_epoch": 2000,
        "lr": 1e-3,
        "threads": None,
        "workers": 8,
        "device": "cuda",
    },
}  # fmt: skip
DEFAULT_PRESET = "cpu-small"


class ImageTrainConfig(BaseModel):
    """Everything an image-network run depends on; stored in its checkpoint and config.yaml."""

    model_config = ConfigDict(extra="forbid")

    preset: str = DEFAULT_PRESET  # the preset these values started from (for the record)
    data: list[str] = Field(default_factory=list)  # SRC[:WEIGHT] (sources.py)
    net: NetConfig = Field(default_factory=NetConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    epochs: int = Field(10, ge=1)
    steps_per_epoch: int = Field(240, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0)
    lr_final: float = Field(0.02, gt=0, le=1)  # cosine decay to lr x lr_final at the last step
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    device: str = "cpu"  # cpu, cuda, cuda:N, auto
    # torch threads of the training process (None: torch's choice). 1 on CPU: with one DataLoader
    # worker that fills the 2 cores, and more intra-op threads than free cores make OpenMP's
    # barrier waits spin (measured 18x slower at 64 px on a busy 2-core machine).
    threads: int | None = Field(1, ge=1)
    workers: int = Field(1, ge=0)  # DataLoader worker processes (decoding + augmentation)
    prefetch: int = Field(4, ge=1)  # batches each worker prepares ahead
    channels_last: bool = True  # NHWC tensors: faster convolutions on CPU (oneDNN) and GPU
    min_joints: int = Field(4, ge=1, le=17)  # people with fewer labelled h36m17 joints are left out
    val: list[str] = Field(default_factory=list)  # sources evaluated after every epoch (LSP: holdout split)
    val_samples: int = Field(500, ge=1)  # people per validation source
    log_every: int | None = Field(None, ge=1)  # steps between loss-curve points (default ~50 per epoch)

    def total_samples(self) -> int:
        return self.epochs * self.steps_per_epoch * self.batch_size


def preset_values(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown config {name!r}: give a preset ({', '.join(PRESETS)}) or a YAML file")
    return {"preset": name, **copy.deepcopy(PRESETS[name])}


def resolve_image_config(config: str | Path | None, overrides: dict | None = None, base: dict | None = None) -> ImageTrainConfig:
    """The config from a preset name or a YAML file (which may name its `preset`), `base` values
    (a resumed run's) when neither is given, and dotted-key `overrides` (None values skipped)."""
    if config is None:
        values, source = (copy.deepcopy(base), "the checkpoint") if base is not None else (preset_values(DEFAULT_PRESET), DEFAULT_PRESET)
    elif str(config) in PRESETS:
        values, source = preset_values(str(config)), str(config)
    elif Path(config).is_file():
        text = read_config_mapping(config)
        values = preset_values(str(text.get("preset", DEFAULT_PRESET)))
        values = _merge(values, text)
        source = str(config)
    else:
        raise ConfigError(f"--config {config}: neither a preset ({', '.join(PRESETS)}) nor a YAML file")
    values = set_dotted(values, overrides or {})
    return validate_config(ImageTrainConfig, values, source, what="image training config")


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
