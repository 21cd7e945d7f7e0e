"""The training configuration (a YAML file, command-line flags on top)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from generator.camera import DEFAULT_BASELINE_MM

from .detector_noise import DetectorNoiseConfig
from .models import NetConfig


class TrainConfig(BaseModel):
    """Everything a training run depends on; stored in the checkpoint and RUN_DIR/config.yaml."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    data: list[str] = Field(default_factory=list)  # PATH[:WEIGHT] sources
    model: Literal["stereo", "single"] = "stereo"
    net: NetConfig = Field(default_factory=NetConfig)
    epochs: int = Field(10, ge=1)
    # Global (split over the DDP ranks). 256, not 1024: at an equal sample budget, 4x the steps and
    # 8 mm lower P-MPJPE on motions never seen in training (docs/benchmarks.md, Generalization).
    batch_size: int = Field(256, ge=2)
    steps_per_epoch: int | None = Field(None, ge=1)  # default: total rows of all sources / batch size
    lr: float = Field(1e-3, gt=0)
    # exponential: lr x lr_decay every lr_decay_steps (Martinez et al.); cosine: from lr down to
    # lr x lr_final at the last step. Either after warmup_steps of linear warm-up.
    lr_schedule: Literal["exponential", "cosine"] = "exponential"
    lr_decay: float = Field(0.96, gt=0, le=1)
    lr_decay_steps: int = Field(100_000, ge=1)
    lr_final: float = Field(0.01, gt=0, le=1)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)  # decoupled (AdamW); 0: plain Adam
    baseline_mm: float = Field(DEFAULT_BASELINE_MM, gt=0)  # the right view's baseline
    noise_px: float = Field(5.0, ge=0)  # train-time 2D noise: per-sample std drawn from [0, noise_px]
    # Train-time detector-like 2D errors (train/detector_noise.py) at a per-sample strength drawn
    # from [0, 1], before the Gaussian noise; None: off.
    detector_noise: DetectorNoiseConfig | None = None
    mirror: bool = True  # random left/right mirroring of training samples
    end_to_end_epochs: int | None = Field(None, ge=0)  # stereo: final epochs trained end to end (default epochs // 2)
    # Weight of the right-view loss in the end-to-end stage: 0.1 let the 3D loss shape the view
    # net and gave 2-4 mm lower MPJPE than 1.0 on held-out CMU (docs/benchmarks.md, Accuracy).
    end_to_end_view_weight: float = Field(0.1, ge=0)
    seed: int = 0
    threads: int | None = Field(None, ge=1)  # torch CPU threads (default: torch's choice)
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    stats_samples: int = Field(100_000, ge=16)  # rows used to fit the z-score statistics
    val: str | None = None  # a pairs file evaluated (fast search) after every epoch
    val_samples: int = Field(20_000, ge=1)
    block_rows: int = Field(4096, ge=1)  # streaming: contiguous rows read at once
    buffer_blocks: int = Field(8, ge=1)  # streaming: blocks shuffled together
    log_every: int | None = Field(None, ge=1)  # steps between loss-curve points (default ~50 per epoch)

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.end_to_end_epochs is not None and self.end_to_end_epochs > self.epochs:
            raise ValueError(f"end_to_end_epochs {self.end_to_end_epochs} > epochs {self.epochs}")
        return self

    def e2e_epochs(self) -> int:
        if self.model != "stereo":
            return 0
        return self.epochs // 2 if self.end_to_end_epochs is None else self.end_to_end_epochs

    def stage(self, epoch: int) -> str:
        """'single', 'separate' (both stereo nets on ground-truth targets) or 'end_to_end'."""
        if self.model == "single":
            return "single"
        return "end_to_end" if epoch >= self.epochs - self.e2e_epochs() else "separate"

