"""The image network's part of `posebridge demo`: a tiny run on the demo's renders plus the
vendored real photos (COCO, MPII), evaluated on renders of the held-out people, and its
predictions on the COCO photos drawn into one figure for the report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console


class ImageDemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(300, ge=1)  # about a minute on 2 cores at 64 px (9,600 samples)
    input_size: int = Field(64, ge=32)
    batch_size: int = Field(32, ge=2)
    test_frames: int = Field(60, ge=1)  # renders of the held-out people
    real_weight: float = Field(0.4, ge=0, lt=1)  # the photos' share of each batch (COCO and MPII, half each)


@dataclasses.dataclass
class ImageDemoResult:
    run: Path
    metrics: dict  # evaluate-image summary on the held-out renders
    figure: Path
    people: int
    seconds: float


def run_image_demo(out: Path, dataset: Path, test_subjects: list[str], cfg: ImageDemoConfig, seed: int, image_size: int, workers: int,
                   console: Console, show_progress: bool) -> ImageDemoResult:  # fmt: skip
    import time

    from PIL import Image

    from ..label import REAL_DATA_DIR
    from .config import resolve_image_config
    from .evaluate import evaluate_image_source
    from .predict import ImagePoseEstimator, predict_images
    from .renders import render_dataset
    from .sources import open_image_source
    from .trainer import train_image_run

    t = time.perf_counter()
    coco, mpii = REAL_DATA_DIR / "coco" / "test_coco.json", REAL_DATA_DIR / "mpii" / "test_mpii.json"
    test = render_dataset(out / "dataset_heldout", cfg.test_frames, image_size, seed + 7, workers=workers, only=test_subjects)
    w = cfg.real_weight / 2
    image_cfg = resolve_image_config("cpu-small", {
        "data": [f"{dataset}:{1 - cfg.real_weight}", f"{coco}:{w}", f"{mpii}:{w}"], "net.input_size": cfg.input_size,
        "batch_size": cfg.batch_size, "epochs": 1, "steps_per_epoch": cfg.steps, "warmup_steps": min(20, cfg.steps), "seed": seed,
    })  # fmt: skip
    run = train_image_run(image_cfg, out / "run_image", overwrite=True, show_progress=show_progress)
    est = ImagePoseEstimator.load(run.path)
    metrics = evaluate_image_source(est.model, open_image_source(test), image_cfg.augment.pad).summary
    photos = sorted(coco.parent.glob("*.jpg"))
    pred = predict_images(run.path, photos, out / "predictions_image", coco=coco)
    sheets = [Image.open(p).convert("RGB") for p in pred.figures]
    width = max(s.width for s in sheets)
    figure = Image.new("RGB", (width, sum(s.height for s in sheets)), "white")
    y = 0
    for s in sheets:
        figure.paste(s, (0, y))
        y += s.height
    path = out / "image_predictions.png"
    figure.save(path)
    seconds = time.perf_counter() - t
    console.print(f"image network: {cfg.steps} steps at {cfg.input_size} px; held-out renders PCK@0.2 {metrics['pck_02']:.3f} "
                  f"(mean pose {metrics['baseline_mean_pose']['pck_02']:.3f}), MPJPE {metrics['mpjpe_mm']:.0f} mm "
                  f"(mean pose {metrics['baseline_mean_pose']['mpjpe_mm']:.0f} mm); {pred.people} people predicted -> {path.name}")  # fmt: skip
    return ImageDemoResult(run.path, metrics, path, pred.people, seconds)


def report_lines(r: ImageDemoResult, rel) -> list[str]:
    m, b = r.metrics, r.metrics["baseline_mean_pose"]
    return [
        "## The image network (photos in, 2D and 3D out)",
        "",
        f"A tiny `cpu-small` image network (2D heatmaps + root-relative 3D by integral regression, `train/image/`) trained briefly "
        f"on the rendered dataset mixed with the vendored COCO and MPII photos (run directory `{rel(r.run)}`), then tested on "
        f"renders of the held-out people, against the training data's mean pose:",
        "",
        "| metric | network | mean pose |",
        "| --- | ---: | ---: |",
        f"| PCK@0.2 (torso), held-out renders | {m['pck_02']:.3f} | {b['pck_02']:.3f} |",
        f"| MPJPE (mm), held-out renders | {m['mpjpe_mm']:.0f} | {b['mpjpe_mm']:.0f} |",
        f"| P-MPJPE (mm), held-out renders | {m['p_mpjpe_mm']:.0f} | {b['p_mpjpe_mm']:.0f} |",
        "",
        f"Its predictions on the COCO photos ({r.people} people, one per labelled box; the 3D placed in the camera by the geometric "
        f"search with K estimated from the image size). A demo-sized run: expect rough poses.",
        "",
        f"![image network predictions]({rel(r.figure)})",
        "",
    ]
