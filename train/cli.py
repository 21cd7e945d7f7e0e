"""`posebridge train | evaluate | label | import-videopose3d`: a thin click layer over train/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.console import Console

from generator.cli_support import overwrite_option, user_errors

from .search import SEARCH_METHODS

console = Console()


_path = click.Path(path_type=Path)


@click.command("train")
@click.option("--data", "data", multiple=True, metavar="PATH[:WEIGHT]", help="A pairs .npz, a Bridge dataset folder, or synthetic:SOURCE[?config=F&exclude=S,..] (pairs made on the fly from a mocap folder, 'bundled' or 'prior'), with a mixing weight; repeat to mix.")
@click.option("--model", type=click.Choice(["stereo", "single"]), help="stereo (the paper's generator) or single (the Martinez baseline).")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int, help="Global batch size (split over DDP ranks).")
@click.option("--out", required=True, type=_path, help="The run directory.")
@click.option("--config", "config_file", type=_path, help="A YAML file of TrainConfig keys; flags win.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@overwrite_option("training run")
@click.option("--seed", type=int)
@click.option("--steps-per-epoch", type=int)
@click.option("--lr", type=float)
@click.option("--noise-px", type=float, help="Max std of the train-time 2D noise in pixels.")
@click.option("--detector-noise/--no-detector-noise", default=None, help="Train-time detector-like 2D errors (train/detector_noise.py defaults).")
@click.option("--lr-schedule", type=click.Choice(["exponential", "cosine"]))
@click.option("--warmup-steps", type=int)
@click.option("--weight-decay", type=float, help="Decoupled weight decay (AdamW); 0: Adam.")
@click.option("--width", type=int, help="Width of the MLPs (1024 in the paper).")
@click.option("--blocks", type=int, help="Residual blocks per MLP (2 in the paper).")
@click.option("--dropout", type=float)
@click.option("--max-norm", type=float, help="Max-norm constraint on every weight row.")
@click.option("--val", type=_path, help="A pairs file evaluated after every epoch.")
@click.option("--threads", type=int, help="torch CPU threads per process.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process (or a torchrun rank); ray: --workers Ray Train workers (TorchTrainer), the same code per worker.")
@click.option("--workers", type=int, default=2, show_default=True, help="Ray Train workers (--executor ray).")
@click.option("--ray-address", help="Ray cluster to join (HOST:PORT or auto) with --executor ray. [a local one]")
@click.option("--gpu", "use_gpu", is_flag=True, help="One GPU per Ray Train worker (NCCL); else CPUs (gloo).")
@user_errors
def train(data, model, epochs, batch_size, out, config_file, resume, overwrite, seed, steps_per_epoch, lr, noise_px, detector_noise, lr_schedule,
          warmup_steps, weight_decay, width, blocks, dropout, max_norm, val, threads, device, no_progress,
          executor="local", workers=2, ray_address=None, use_gpu=False):
    """Train the stereo label generator (or the single-view baseline); works under torchrun and Ray Train.

    The defaults are the recipe that won the cross-source benchmark (bench/generalization.py,
    docs/benchmarks.md): batch 256 and dropout 0.25 instead of the paper's 1024 and 0.5 cut the
    P-MPJPE on motions never seen in training from 80 to 69 mm at the same sample budget, so
    `--data` alone trains the best model we know.
    """
    from generator.config_file import read_config_mapping, set_dotted, validate_config
    from generator.outputs import check_flags

    from .checkpoint import load_checkpoint
    from .config import TrainConfig
    from .trainer import train_run

    check_flags(out, resume, overwrite)
    if config_file:
        values = read_config_mapping(config_file)
    elif resume:
        values = load_checkpoint(out).config.model_dump(mode="json")
    else:
        values = {}
    overrides = {
        "data": list(data) or None, "model": model, "epochs": epochs, "batch_size": batch_size, "seed": seed,
        "steps_per_epoch": steps_per_epoch, "lr": lr, "noise_px": noise_px, "val": str(val) if val else None,
        "lr_schedule": lr_schedule, "warmup_steps": warmup_steps, "weight_decay": weight_decay,
        "threads": threads, "device": device,
        "net.width": width, "net.blocks": blocks, "net.dropout": dropout, "net.max_norm": max_norm,
    }  # fmt: skip
    values = set_dotted(values, overrides)
    if detector_noise is not None:
        values["detector_noise"] = {} if detector_noise else None  # {}: the model's defaults
    cfg = validate_config(TrainConfig, values, str(config_file or "flags"), what="training config")
    if executor == "ray":
        from .ray_train import train_on_ray

        m = train_on_ray(cfg, out, workers, resume=resume, overwrite=overwrite, use_gpu=use_gpu, ray_address=ray_address)
        console.print(f"[bold]{m['model']}[/] on {m['world_size']} Ray Train workers: {m['epochs']} epochs, {m['steps']} steps, "
                      f"final loss {m['final_loss']:.4f}, {m['samples_per_s']:.0f} samples/s -> {out}")
        return
    run = train_run(cfg, out, resume=resume, overwrite=overwrite, show_progress=not no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        m = run.read_metrics()
        console.print(
            f"[bold]{m['model']}[/]: {m['epochs']} epochs, {m['steps']} steps, final loss {m['final_loss']:.4f}, "
            f"{m['samples_per_s']:.0f} samples/s -> {run.path} (checkpoint, metrics.json, loss_curves.png)"
        )


@click.command("evaluate")
@click.option("--checkpoint", required=True, type=_path, help="A run directory or checkpoint .pt.")
@click.option("--data", required=True, type=_path, help="A pairs .npz, or a dataset folder from `posebridge generate`.")
@click.option("--search", type=click.Choice(SEARCH_METHODS), default="fast", show_default=True,
              help="fast: zero reprojection error, 8-11 mm lower P-MPJPE on clean 2D; with detector 2D it still helps P-MPJPE "
                   "but not MPJPE, so use none when root-relative MPJPE on detections is what matters (docs/benchmarks.md).")
@click.option("--noise-px", type=float, default=0.0, show_default=True, help="Gaussian noise added to the input 2D.")
@click.option("--detector-noise", is_flag=True, help="Corrupt the input 2D with detector-like errors first (train/detector_noise.py).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--grid-min", type=float, default=2800.0, show_default=True, help="Grid search: nearest root depth (mm).")
@click.option("--grid-max", type=float, default=7199.0, show_default=True, help="Grid search: farthest root depth (mm).")
@click.option("--grid-step", type=float, default=1.0, show_default=True)
@click.option("--json", "json_out", type=_path, help="Write the metrics JSON here.")
@user_errors
def evaluate(checkpoint, data, search, noise_px, detector_noise, seed, grid_min, grid_max, grid_step, json_out):
    """MPJPE, P-MPJPE, N-MPJPE, PCK3D, AUC, absolute MPJPE and reprojection error, per joint and action."""
    from .data import open_source
    from .evaluate import evaluate_pairs
    from .inference import Lifter
    from .search import GridConfig

    grid = GridConfig(depth_min_mm=grid_min, depth_max_mm=grid_max, step_mm=grid_step)
    pairs = open_source(data)  # checked before the model is loaded
    if detector_noise:
        from .generalization import BenchmarkConfig, with_detector_noise

        pairs = with_detector_noise(pairs, BenchmarkConfig(seed=seed))
    result = evaluate_pairs(Lifter.load(checkpoint), pairs, search=search, noise_px=noise_px, seed=seed, grid=grid)
    console.print(result.markdown(), markup=False, highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2))


@click.command("label")
@click.option("--checkpoint", required=True, type=_path)
@click.option("--coco", "coco_json", type=_path, help="A COCO keypoints JSON (labels or detections).")
@click.option("--lsp", "lsp_folder", type=_path, help="Or an LSP/LSPET folder (joints.mat + images/); writes a posebridge-lsp-labels JSON.")
@click.option("--split", type=click.Choice(["train", "holdout", "all"]), default="train", show_default=True, help="With --lsp: which images.")
@click.option("--out", required=True, type=_path, help="The labelled JSON.")
@click.option("--focal-px", type=float, help="Focal length in pixels (default: the image diagonal).")
@click.option("--min-confidence", type=float, default=0.3, show_default=True, help="Keypoint scores below this are missing.")
@click.option("--min-joints", type=int, default=12, show_default=True, help="Skip people with fewer reliable h36m17 joints.")
@click.option("--search", type=click.Choice(SEARCH_METHODS), default="fast", show_default=True,
              help="fast: zero reprojection error, 8-11 mm lower P-MPJPE on clean 2D; with detector 2D it still helps P-MPJPE "
                   "but not MPJPE, so use none when root-relative MPJPE on detections is what matters (docs/benchmarks.md).")
@click.option("--figure", type=_path, help="Also draw the lifted people (2D over the photo beside 3D) to this PNG (--coco).")
@click.option("--images", type=_path, help="Folder of the photos, for --figure (default: beside the JSON).")
@overwrite_option("labelled JSON")
@user_errors
def label(checkpoint, coco_json, lsp_folder, split, out, focal_px, min_confidence, min_joints, search, figure, images, overwrite):
    """Lift every person of a COCO keypoints file (or an LSP folder) into 3D labels (keypoints_3d, mm, camera frame)."""
    from generator.outputs import claim_output

    if (coco_json is None) == (lsp_folder is None):
        raise click.UsageError("give exactly one of --coco FILE and --lsp FOLDER")
    claim_output(out, what="labelled JSON", folder=False, overwrite=overwrite, inputs=[coco_json or lsp_folder], resume_flag=None)
    if lsp_folder is not None:
        from .image.lsp import label_lsp

        s = label_lsp(checkpoint, lsp_folder, out, split=split, focal_px=focal_px, min_joints=min_joints, search=search)
        console.print(f"lifted {s['lifted']} of {s['people']} people ({s['layout']}, split {s['split']}; {s['skipped']} skipped) -> {out}")
        return
    from .label import label_coco

    s = label_coco(checkpoint, coco_json, out, focal_px=focal_px, min_confidence=min_confidence, min_joints=min_joints, search=search)
    console.print(f"lifted {s.lifted} of {s.people} people in {s.images} images ({s.skipped} skipped) -> {out}")
    if figure:
        from .figures import render_lifted_figure

        render_lifted_figure(out, images or coco_json.parent, figure)
        console.print(f"figure -> {figure}")


@click.command("import-videopose3d")
@click.option("--data-3d", required=True, type=_path, help="VideoPose3D data_3d_*.npz (positions_3d).")
@click.option("--data-2d", required=True, type=_path, help="VideoPose3D data_2d_*.npz (positions_2d).")
@click.option("--cameras", required=True, type=_path, help="Camera file (JSON, docs/conventions.md).")
@click.option("--out", required=True, type=_path, help="The pairs v1 .npz to write.")
@click.option("--subject", "subjects", multiple=True, help="Import only these subjects (repeatable).")
@overwrite_option("pairs file")
@user_errors
def import_videopose3d_command(data_3d, data_2d, cameras, out, subjects, overwrite):
    """Convert Human3.6M in VideoPose3D's npz format (+ a camera file) into a pairs v1 file."""
    from generator.outputs import claim_output

    from .videopose3d import import_videopose3d

    claim_output(out, what="pairs file", folder=False, overwrite=overwrite, inputs=[data_3d, data_2d, cameras], resume_flag=None)

    s = import_videopose3d(data_3d, data_2d, cameras, out, subjects=list(subjects) or None)
    console.print(f"{s.n} pairs from {s.sequences} sequences -> {s.out}")
    for item in s.skipped:
        console.print(f"  skipped {item}")


@click.command("demo")
@click.option("--out", type=_path, default=Path("demo_out"), show_default=True, help="Where every step writes.")
@click.option("--config", "config_file", type=_path, help="A YAML file of DemoConfig keys (scale of each step).")
@click.option("--frames", type=int, help="Rendered frames. [3000]")
@click.option("--seed", type=int, help="[0]")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--resume", is_flag=True, help="Continue a demo in --out: keep its rendered frames, redo the other steps.")
@overwrite_option("demo folder")
@user_errors
def demo(out, config_file, frames, seed, no_progress, resume, overwrite):
    """The main job end to end: pairs, a rendered dataset, training, evaluation, real photos lifted, a report."""
    from generator.config_file import load_config

    from .demo import DemoConfig, run_demo

    cfg = load_config(DemoConfig, config_file, dict(frames=frames, seed=seed), what="demo config")
    run_demo(out, cfg, console=console, show_progress=not no_progress, resume=resume, overwrite=overwrite)
