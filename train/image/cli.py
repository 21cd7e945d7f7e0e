"""`posebridge train-image | evaluate-image | predict`: a thin click layer over train/image/."""

from __future__ import annotations

import json
from pathlib import Path

import click

from generator.cli_support import overwrite_option, user_errors

from ..cli import _path, console


@click.command("train-image")
@click.option("--data", "data", multiple=True, metavar="SRC[:WEIGHT]",
              help="A rendered dataset folder, a COCO keypoints JSON (with or without pseudo-3D), an MPII JSON, an LSP/LSPET folder "
                   "(its train split) or a posebridge-lsp-labels JSON, with a mixing weight; repeat to mix.")  # fmt: skip
@click.option("--config", "config", help="A preset (cpu-small, gpu-full) or a YAML file (`preset:` + overrides). [cpu-small]")
@click.option("--out", required=True, type=_path, help="The run directory.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@overwrite_option("image training run")
@click.option("--epochs", type=int)
@click.option("--steps-per-epoch", type=int)
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--input-size", type=int, help="Crop side in pixels.")
@click.option("--seed", type=int)
@click.option("--workers", type=int, help="DataLoader worker processes.")
@click.option("--threads", type=int, help="torch threads of the training process.")
@click.option("--device", help="cpu, cuda, cuda:N or auto.")
@click.option("--val", "val", multiple=True, type=_path, help="A source evaluated after every epoch (LSP: its holdout split); repeatable.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@user_errors
def train_image(data, config, out, resume, overwrite, epochs, steps_per_epoch, batch_size, lr, input_size, seed, workers, threads, device, val, no_progress):
    """Train the image network (2D heatmaps + root-relative 3D) on mixed rendered and real images."""
    from .checkpoint import load_image_checkpoint
    from .config import resolve_image_config
    from .trainer import train_image_run

    base = load_image_checkpoint(out).config.model_dump(mode="json") if resume and config is None else None
    overrides = {
        "data": list(data) or None, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "lr": lr,
        "net.input_size": input_size, "seed": seed, "workers": workers, "threads": threads, "device": device,
        "val": [str(v) for v in val] or None,
    }  # fmt: skip
    cfg = resolve_image_config(config, overrides, base=base)
    run = train_image_run(cfg, out, resume=resume, overwrite=overwrite, show_progress=not no_progress)
    m = run.read_metrics()
    console.print(
        f"[bold]image network[/] ({cfg.preset}): {m['epochs']} epochs, {m['steps']} steps, final loss {m['final_loss']:.4f}, "
        f"{m['samples_per_s']:.1f} samples/s -> {run.path} (checkpoint, metrics.json, loss_curves.png)"
    )


@click.command("evaluate-image")
@click.option("--checkpoint", required=True, type=_path, help="An image run directory or its checkpoint.pt.")
@click.option("--data", required=True, type=_path, help="A source as for train-image (LSP folders: --split).")
@click.option("--split", type=click.Choice(["holdout", "train", "all"]), default="holdout", show_default=True, help="LSP-format folders only.")
@click.option("--limit", type=int, help="Evaluate the first N people only.")
@click.option("--workers", type=int, default=1, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_out", type=_path, help="Write the metrics JSON here.")
@user_errors
def evaluate_image(checkpoint, data, split, limit, workers, device, json_out):
    """PCK@0.2 (torso) per joint and mean; MPJPE and P-MPJPE where the data has 3D; the mean-pose baseline."""
    from .evaluate import evaluate_image_source
    from .predict import ImagePoseEstimator
    from .sources import open_image_source

    est = ImagePoseEstimator.load(checkpoint, device)
    source = open_image_source(data, split=split, min_joints=est.config.min_joints)
    result = evaluate_image_source(est.model, source, est.config.augment.pad, limit=limit, workers=workers)
    console.print(result.markdown(), markup=False, highlight=False)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2))


@click.command("predict")
@click.option("--checkpoint", required=True, type=_path, help="An image run directory or its checkpoint.pt.")
@click.argument("images", nargs=-1, required=True, type=_path)
@click.option("--out", required=True, type=_path, help="Folder for predictions.json and one figure per image.")
@click.option("--coco", type=_path, help="A COCO JSON whose bbox per person picks the people (default: the whole image is one person).")
@click.option("--focal-px", type=float, help="Focal length for placing the 3D (default: the image diagonal).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--no-figures", is_flag=True)
@user_errors
def predict(checkpoint, images, out, coco, focal_px, device, no_figures):
    """2D and 3D of the people in photos, with a figure per image."""
    from .predict import predict_images

    s = predict_images(checkpoint, [Path(p) for p in images], out, coco=coco, focal_px=focal_px, device=device, figures=not no_figures)
    console.print(f"{s.people} people in {s.images} images -> {s.out / 'predictions.json'}" + (f" and {len(s.figures)} figures" if s.figures else ""))
