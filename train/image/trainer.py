"""Training the image network: mixed sources, augmentation in DataLoader workers, resumable.

Each epoch is `steps_per_epoch` batches from `dataset.MixtureSampler`, seeded by (seed, epoch), and
a checkpoint is written after every epoch, so `resume` continues exactly where the last completed
epoch left off. LSP-format sources are always opened with their `train` split: the hold-out images
are never trained on. The learning rate warms up linearly, then follows a cosine to `lr x lr_final`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from generator.outputs import claim_output, clear_folder
from generator.store import atomic_write

from ..checkpoint import CHECKPOINT_NAME
from ..data import DataSpec
from ..figures import plot_loss_curves
from ..trainer import RUN_FILES, RunDir, _progress
from .checkpoint import ImageCheckpoint, load_image_checkpoint, save_image_checkpoint
from .augment import apply_colour
from .config import ImageTrainConfig
from .dataset import CropDataset, MixtureSampler, make_loader, mean_pose
from .evaluate import evaluate_image_source
from .losses import image_losses
from .model import ImagePoseNet, count_parameters
from .sources import describe_sources, open_image_source

log = logging.getLogger(__name__)

# Keys that must not change when a run is resumed (they define the model or its data stream).
_FIXED_ON_RESUME = ("net", "data", "seed", "batch_size", "augment", "loss", "steps_per_epoch", "min_joints")


def check_run_dir(out: Path, resume: bool, overwrite: bool, inputs: list[str] = ()) -> None:
    """The output rule (generator/outputs.py) for an image run: --resume continues it, --overwrite
    replaces its run files, and a folder holding anything else is refused."""
    if claim_output(out, what="image training run", resume=resume, overwrite=overwrite, owned=RUN_FILES, inputs=inputs) == "overwrite":
        clear_folder(out, RUN_FILES)
    if resume and not (out / CHECKPOINT_NAME).is_file():
        raise FileNotFoundError(f"{out}: no {CHECKPOINT_NAME} to resume")


def lr_at(cfg: ImageTrainConfig, step: int) -> float:
    total = cfg.epochs * cfg.steps_per_epoch
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: this torch build has no CUDA device")
    return dev


def open_training_sources(cfg: ImageTrainConfig):
    specs = [DataSpec.parse(d) for d in cfg.data]
    if not specs:
        raise ValueError("no training data: give at least one --data SRC[:WEIGHT]")
    sources = [open_image_source(s.path, split="train", min_joints=cfg.min_joints) for s in specs]
    for spec, src in zip(specs, sources):
        if len(src) == 0:
            raise ValueError(f"{spec.path}: no person with at least {cfg.min_joints} labelled joints to train on")
    return sources, [s.weight for s in specs]


def build_model(cfg: ImageTrainConfig, device: torch.device, seeded: bool = True) -> ImagePoseNet:
    """The network of `cfg` on `device` (NHWC when `channels_last`); `seeded`: initial weights from the run's seed."""
    if seeded:
        torch.manual_seed(cfg.seed)
    model = ImagePoseNet(cfg.net).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train_image_run(cfg: ImageTrainConfig, out: str | Path, resume: bool = False, overwrite: bool = False, show_progress: bool = True) -> RunDir:
    """Train the image network into the run directory `out`; returns it."""
    run = RunDir(Path(out))
    check_run_dir(run.path, resume, overwrite, [DataSpec.parse(d).path for d in cfg.data])
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    sources, weights = open_training_sources(cfg)
    log.info("image training data: %s", describe_sources(sources))
    model = build_model(cfg, device)
    history: dict = {"epochs": [], "steps": {"step": [], "loss": [], "loss_2d": [], "loss_3d": [], "loss_heatmap": [], "loss_bone": []}}
    start_epoch, step, optimizer_state = 0, 0, None
    if resume:
        ckpt = load_image_checkpoint(run.checkpoint)
        changed = [k for k in _FIXED_ON_RESUME if getattr(ckpt.config, k) != getattr(cfg, k)]
        if changed:
            raise ValueError(f"{run.checkpoint}: cannot resume with a different {', '.join(changed)}")
        model.load_state_dict(ckpt.model_state)
        start_epoch, step, optimizer_state, history = ckpt.epoch, ckpt.step, ckpt.optimizer_state, ckpt.history
        log.info("resuming %s at epoch %d (step %d)", run.path, start_epoch, step)
    else:
        m2, m3 = mean_pose(sources, weights, cfg.net.input_size, cfg.augment.pad)
        model.mean_2d.copy_(torch.from_numpy(m2))
        model.mean_3d.copy_(torch.from_numpy(m3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    run.path.mkdir(parents=True, exist_ok=True)
    run.config.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    val_sources = [open_image_source(p, split="holdout", min_joints=cfg.min_joints) for p in cfg.val]

    sampler = MixtureSampler([len(s) for s in sources], weights, cfg.batch_size, cfg.steps_per_epoch, cfg.seed)
    loader = make_loader(CropDataset(sources, cfg.net.input_size, cfg.augment, cfg.seed), sampler, cfg.workers, cfg.prefetch, pin_memory=device.type == "cuda")
    log_every = cfg.log_every or max(1, cfg.steps_per_epoch // 50)
    log.info("training the image network (%d parameters) for %d epochs of %d steps, batch %d", count_parameters(model), cfg.epochs, cfg.steps_per_epoch, cfg.batch_size)
    with _progress(show_progress) as progress:
        for epoch in range(start_epoch, cfg.epochs):
            sampler.set_epoch(epoch)
            torch.manual_seed(int(np.random.SeedSequence([cfg.seed, epoch, 11]).generate_state(1)[0]))
            task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs}", total=cfg.steps_per_epoch, loss="-")
            model.train()
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            for batch in loader:
                values = train_step(model, optimizer, batch, cfg, step, device)
                step += 1
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                if step % log_every == 0:
                    curve = history["steps"]
                    curve["step"].append(step)
                    for k in ("loss", "loss_2d", "loss_3d", "loss_heatmap", "loss_bone"):
                        curve[k].append(values.get(k, float("nan")))
                progress.update(task, advance=1, loss=f"{values['loss']:.4f}")
            seconds = time.perf_counter() - t0
            record = {
                "epoch": epoch + 1, "stage": "train", "step": step, "lr": lr_at(cfg, step), "seconds": seconds,
                "samples_per_s": cfg.steps_per_epoch * cfg.batch_size / seconds,
                **{k: v / cfg.steps_per_epoch for k, v in sums.items()},
            }  # fmt: skip
            if val_sources:
                record["val"] = {s.describe(): evaluate_image_source(model, s, cfg.augment.pad, cfg.val_samples).summary for s in val_sources}
            history["epochs"].append(record)
            save_image_checkpoint(run.checkpoint, ImageCheckpoint(cfg, model.state_dict(), optimizer.state_dict(), epoch + 1, step, history))
            _write_metrics(run, cfg, model, history, sources)
            _plot(history, run.curves)
            log.info("epoch %d: loss %.4f, %.1f samples/s", epoch + 1, record["loss"], record["samples_per_s"])
    return run


def train_step(model: ImagePoseNet, optimizer, batch: dict, cfg: ImageTrainConfig, step: int, device: torch.device) -> dict[str, float]:
    """One optimizer step on a batch; returns the loss values."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([cfg.seed, step, 13]).generate_state(1)[0]))
    images = apply_colour(batch["image"].to(device, non_blocking=True), batch["colour"].to(device), batch["noise"].to(device), generator)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    targets = {k: batch[k].to(device, non_blocking=True) for k in ("joints_2d", "valid_2d", "joints_3d", "valid_3d")}
    for group in optimizer.param_groups:
        group["lr"] = lr_at(cfg, step)
    losses = image_losses(model(images), targets, cfg.loss)
    optimizer.zero_grad(set_to_none=True)
    losses["loss"].backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def _plot(history: dict, out: Path) -> None:
    plot_loss_curves(
        history, out, series=(("loss", "total"), ("loss_2d", "2D (crop units)"), ("loss_3d", "3D (m)"), ("loss_heatmap", "heatmap CE"), ("loss_bone", "bone ratios")),
        ylabel="L1", val_key="pck_02", val_label="PCK@0.2", val_title="validation (first val source)",
    )


def _write_metrics(run: RunDir, cfg: ImageTrainConfig, model, history: dict, sources) -> None:
    epochs = history["epochs"]
    last = epochs[-1]
    seconds = sum(e["seconds"] for e in epochs)
    samples = last["step"] * cfg.batch_size
    metrics = {
        "model": "image",
        "preset": cfg.preset,
        "parameters": count_parameters(model),
        "data": cfg.data,
        "sources": [s.describe() for s in sources],
        "epochs": last["epoch"],
        "steps": last["step"],
        "batch_size": cfg.batch_size,
        "samples_seen": samples,
        "train_seconds": seconds,
        "samples_per_s": sum(e["samples_per_s"] * e["seconds"] for e in epochs) / seconds if seconds > 0 else None,
        "final_loss": last["loss"],
        "final_loss_2d": last.get("loss_2d"),
        "final_loss_3d": last.get("loss_3d"),
        "val": last.get("val"),
        "history": epochs,
    }
    atomic_write(run.metrics, json.dumps(metrics, indent=2).encode())
