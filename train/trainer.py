"""Training: the two stereo stages (separately, then end to end) or the single-view baseline.

One process or many: under `torchrun --nproc_per_node=N` every rank reads a disjoint share of the
data and gradients are averaged by DistributedDataParallel (gloo on CPU, NCCL on GPUs); BatchNorm
uses the global batch's statistics (models.BatchNorm1d), so N ranks take the steps one process
would take on their union (tests/test_train_ddp.py). Rank 0 writes the run directory. Each epoch is seeded by (seed, epoch, rank) and a checkpoint is written
after every epoch, so `resume` continues bit for bit where the run stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

from generator.errors import UserError
from generator.outputs import OutputError, claim_output, clear_folder
from generator.pairs_io import load_pairs
from generator.store import atomic_write

from .checkpoint import CHECKPOINT_NAME, Checkpoint, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .data import DataSpec, MixedBatches, open_source, source_rows
from .evaluate import evaluate_pairs
from .figures import plot_loss_curves
from .inference import Lifter
from .models import SingleLifter, StereoLifter, build_model, count_parameters
from .targets import training_features

log = logging.getLogger(__name__)

# What a run directory holds (train --overwrite replaces a folder only when nothing else is there).
RUN_FILES = (CHECKPOINT_NAME, "config.yaml", "metrics.json", "loss_curves.png", ".*.tmp")

# The epoch id of the data stream that fits the normalization statistics (never a training epoch).
_STATS_STREAM = 1_000_000_007


@dataclasses.dataclass(frozen=True)
class RunDir:
    """A training run's directory and the files in it."""

    path: Path

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def curves(self) -> Path:
        return self.path / "loss_curves.png"

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    def read_metrics(self) -> dict:
        return json.loads(self.metrics.read_text())


@dataclasses.dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # this run created the process group (and ends it)

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> DistContext:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), or use the one Ray
    Train set up (train/ray_train.py): one code path for both. Pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        # torchrun shows every GPU of the node; Ray Train shows each worker its own GPU only.
        dev = torch.device("cuda", local_rank if local_rank < torch.cuda.device_count() else 0)
    owns = world > 1 and not dist.is_initialized()
    if owns:
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return DistContext(rank=rank, world=dist.get_world_size() if dist.is_initialized() else 1, device=dev, owns_group=owns)


class _TrainStep(torch.nn.Module):
    """The forward pass of one training stage, as one module so DDP can wrap it."""

    def __init__(self, model: StereoLifter | SingleLifter):
        super().__init__()
        self.model = model

    def forward(self, left: torch.Tensor, right_input: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
        if isinstance(self.model, SingleLifter):
            return None, self.model.single(left)
        right = self.model.view(left)
        # Separately: the 3D net sees the (noisy) true right view; end to end: the synthesized one.
        recon_right = right if right_input is None else right_input
        return right, self.model.recon(left, recon_right)


def stage_losses(step: torch.nn.Module, model, batch: dict[str, torch.Tensor], stage: str, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The total loss and its parts for one batch."""
    if stage == "single":
        _, pose = step(batch["left"], None)
        loss_3d = model.single.loss(pose, batch["pose"])
        return {"loss": loss_3d, "loss_3d": loss_3d}
    right_input = batch["right_input"] if stage == "separate" else None
    right, pose = step(batch["left"], right_input)
    loss_view = model.view.loss(batch["left"], right, batch["right_target"])
    loss_3d = model.recon.loss(pose, batch["pose"])
    weight = 1.0 if stage == "separate" else cfg.end_to_end_view_weight
    return {"loss": loss_3d + weight * loss_view, "loss_view": loss_view, "loss_3d": loss_3d}


def feature_transform(cfg: TrainConfig):
    """The `MixedBatches` transform of a run: pairs rows -> training features (train/targets.py)."""

    def transform(rows, rng):
        return training_features(rows, rng, cfg.baseline_mm, cfg.noise_px, cfg.mirror, cfg.detector_noise)

    return transform


def fit_statistics(model: StereoLifter | SingleLifter, sources, weights, cfg: TrainConfig) -> None:
    """Fit every ZScore of the model on a sample of the (augmented) training mixture."""
    rows = [source_rows(s) for s in sources]
    n = cfg.stats_samples if None in rows else max(16, min(cfg.stats_samples, sum(rows)))
    model.fit_normalization(MixedBatches(sources, weights, n, feature_transform(cfg), seed=cfg.seed, epoch=_STATS_STREAM).next())


def _steps_per_epoch(cfg: TrainConfig, sources) -> int:
    """The configured steps, or one pass over the file sources' rows (synthetic ones are endless)."""
    if cfg.steps_per_epoch:
        return cfg.steps_per_epoch
    rows = [n for n in map(source_rows, sources) if n is not None]
    if not rows:
        raise ValueError("only synthetic data sources: give --steps-per-epoch (they have no end to define an epoch)")
    return max(1, math.ceil(sum(rows) / cfg.batch_size))


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate of `step` (0-based) in a run of `total_steps`: linear warm-up, then the
    exponential (Martinez et al.) or cosine schedule."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "exponential":
        return cfg.lr * cfg.lr_decay ** (step // cfg.lr_decay_steps)
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps - 1))
    return cfg.lr * (cfg.lr_final + (1.0 - cfg.lr_final) * 0.5 * (1.0 + math.cos(math.pi * t)))


def _epoch_seed(cfg: TrainConfig, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([cfg.seed, epoch, rank, 3]).generate_state(1)[0])


def _mean_across_ranks(values: dict[str, float], ctx: DistContext) -> dict[str, float]:
    if ctx.world == 1:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    return {k: float(v) / ctx.world for k, v in zip(keys, t.tolist())}


def _agree(flag: bool, ctx: DistContext) -> bool:
    """Rank 0's decision, on every rank."""
    if ctx.world == 1:
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int64)
    dist.broadcast(t, src=0)
    return bool(t.item())


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train_run(
    config: TrainConfig,
    out: str | Path,
    resume: bool = False,
    show_progress: bool = True,
    stop_after: Callable[[dict], bool] | None = None,
    overwrite: bool = False,
) -> RunDir:
    """Train a lifter into the run directory `out` (resuming from its checkpoint when asked).

    An existing run in `out` is refused (OutputError) unless `resume` continues it or
    `overwrite` replaces it. `stop_after(epoch_record)` is called after each epoch's checkpoint;
    True ends the run there (a time budget, early stopping); `resume` continues it later as if
    it had not stopped.
    """
    ctx = _init_distributed(config.device)
    try:
        return _train(config, RunDir(Path(out)), resume, show_progress, ctx, stop_after, overwrite)
    finally:
        if ctx.owns_group:
            dist.destroy_process_group()


def _claim_run(run: RunDir, resume: bool, overwrite: bool, ctx: DistContext, inputs: list[str]) -> None:
    """The output rule (generator/outputs.py) for the run directory, decided by rank 0 for all ranks."""
    error = None
    if ctx.main:
        try:
            if claim_output(run.path, what="training run", resume=resume, overwrite=overwrite, owned=RUN_FILES, inputs=inputs) == "overwrite":
                clear_folder(run.path, RUN_FILES)
        except UserError as e:
            error = str(e)
    if ctx.world > 1:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error:
        raise OutputError(error)


def _train(cfg: TrainConfig, run: RunDir, resume: bool, show_progress: bool, ctx: DistContext, stop_after, overwrite: bool = False) -> RunDir:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not cfg.data:
        raise ValueError("no training data: give at least one --data PATH[:WEIGHT]")
    if cfg.batch_size % ctx.world:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {ctx.world} ranks")
    specs = [DataSpec.parse(d) for d in cfg.data]
    sources = [open_source(s.path, seed=cfg.seed) for s in specs]
    weights = [s.weight for s in specs]
    steps_per_epoch = _steps_per_epoch(cfg, sources)
    _claim_run(run, resume, overwrite, ctx, [s.path for s in specs])

    torch.manual_seed(cfg.seed)  # the initial weights
    model = build_model(cfg.model, cfg.net)
    history: dict = {"epochs": [], "steps": {"step": [], "loss": [], "loss_view": [], "loss_3d": []}}
    start_epoch, step, optimizer_state = 0, 0, None
    if resume:
        ckpt = load_checkpoint(run.checkpoint)
        _check_resumable(ckpt.config, cfg, run.checkpoint)
        model.load_state_dict(ckpt.model_state)
        start_epoch, step, optimizer_state, history = ckpt.epoch, ckpt.step, ckpt.optimizer_state, ckpt.history
        log.info("resuming %s at epoch %d (step %d)", run.path, start_epoch, step)
    else:
        fit_statistics(model, sources, weights, cfg)
    model.to(ctx.device)
    optimizer = (torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.weight_decay > 0
                 else torch.optim.Adam(model.parameters(), lr=cfg.lr))  # fmt: skip
    total_steps = cfg.epochs * steps_per_epoch
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    train_step: torch.nn.Module = _TrainStep(model)
    if ctx.world > 1:
        train_step = DistributedDataParallel(train_step, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    if ctx.main:
        run.path.mkdir(parents=True, exist_ok=True)
        run.config.write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))

    log_every = cfg.log_every or max(1, steps_per_epoch // 50)
    local_batch = cfg.batch_size // ctx.world
    log.info(
        "training %s (%d parameters) on %d source(s), %d steps/epoch, batch %d on %d rank(s)",
        cfg.model, count_parameters(model), len(sources), steps_per_epoch, cfg.batch_size, ctx.world,
    )
    with _progress(show_progress and ctx.main) as progress:
        for epoch in range(start_epoch, cfg.epochs):
            stage = cfg.stage(epoch)
            torch.manual_seed(_epoch_seed(cfg, epoch, ctx.rank))
            batches = MixedBatches(
                sources, weights, local_batch, feature_transform(cfg), cfg.seed, epoch, ctx.rank, ctx.world, cfg.block_rows, cfg.buffer_blocks
            )
            task = progress.add_task(f"epoch {epoch + 1}/{cfg.epochs} {stage}", total=steps_per_epoch, loss="-")
            model.train()
            sums: dict[str, float] = {}
            t0 = time.perf_counter()
            for _ in range(steps_per_epoch):
                batch = {k: torch.from_numpy(v).to(ctx.device) for k, v in batches.next().items() if k != "source"}
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg, step, total_steps)
                losses = stage_losses(train_step, model, batch, stage, cfg)
                optimizer.zero_grad(set_to_none=True)
                losses["loss"].backward()
                optimizer.step()
                for net in model.nets():
                    net.apply_max_norm()
                step += 1
                values = {k: float(v.detach()) for k, v in losses.items()}
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                if ctx.main and step % log_every == 0:
                    curve = history["steps"]
                    curve["step"].append(step)
                    for k in ("loss", "loss_view", "loss_3d"):
                        curve[k].append(values.get(k, float("nan")))
                progress.update(task, advance=1, loss=f"{values['loss']:.4f}")
            seconds = time.perf_counter() - t0
            means = _mean_across_ranks({k: v / steps_per_epoch for k, v in sums.items()}, ctx)
            record = {
                "epoch": epoch + 1,
                "stage": stage,
                "step": step,
                "lr": learning_rate(cfg, step, total_steps),
                "seconds": seconds,
                "samples_per_s": steps_per_epoch * cfg.batch_size / seconds,
                **means,
            }
            if ctx.main:
                if cfg.val:
                    record["val"] = _validate(model, cfg)
                history["epochs"].append(record)
                ckpt = Checkpoint(cfg, model.state_dict(), optimizer.state_dict(), epoch + 1, step, history)
                save_checkpoint(run.checkpoint, ckpt)
                _write_metrics(run, cfg, model, history, ctx)
                plot_loss_curves(history, run.curves)
                log.info("epoch %d: loss %.4f, %.0f samples/s", epoch + 1, means["loss"], record["samples_per_s"])
            if stop_after is not None and _agree(stop_after(record), ctx):
                break
    if ctx.world > 1:
        dist.barrier()
    return run


def _validate(model, cfg: TrainConfig) -> dict:
    lifter = Lifter(model, cfg.baseline_mm)
    result = evaluate_pairs(lifter, load_pairs(cfg.val, mmap=True), search="fast", limit=cfg.val_samples, progress=False)
    model.train()
    return {k: result.summary[k] for k in ("mpjpe_mm", "p_mpjpe_mm", "abs_mpjpe_mm", "n")}


def _write_metrics(run: RunDir, cfg: TrainConfig, model, history: dict, ctx: DistContext) -> None:
    epochs = history["epochs"]
    last = epochs[-1]
    seconds = sum(e["seconds"] for e in epochs)
    samples = sum(e["samples_per_s"] * e["seconds"] for e in epochs)
    metrics = {
        "model": cfg.model,
        "parameters": count_parameters(model),
        "data": cfg.data,
        "epochs": last["epoch"],
        "steps": last["step"],
        "batch_size": cfg.batch_size,
        "world_size": ctx.world,
        "samples_seen": int(round(samples)),
        "train_seconds": seconds,
        "samples_per_s": samples / seconds if seconds > 0 else None,
        "final_loss": last["loss"],
        "final_loss_3d": last.get("loss_3d"),
        "final_loss_view": last.get("loss_view"),
        "val": last.get("val"),
        "history": epochs,
    }
    atomic_write(run.metrics, json.dumps(metrics, indent=2).encode())


# Keys that must not change when a run is resumed (they define the model or its data stream).
_FIXED_ON_RESUME = ("model", "net", "baseline_mm", "seed", "batch_size", "data")


def _check_resumable(saved: TrainConfig, given: TrainConfig, path: Path) -> None:
    changed = [k for k in _FIXED_ON_RESUME if getattr(saved, k) != getattr(given, k)]
    if changed:
        raise ValueError(f"{path}: cannot resume with a different {', '.join(changed)} (the checkpoint has {[getattr(saved, k) for k in changed]})")
    if given.epochs < saved.epochs:
        log.warning("resuming with fewer epochs (%d) than the run was started with (%d)", given.epochs, saved.epochs)
