"""`posebridge demo` (`make demo`): the main job, end to end, on the built-in player.

1. pairs: synthetic 2D/3D pairs from the bundled CMU clips (held-out people excluded) and the prior;
2. generate: a rendered dataset from built-in player processes, then inspected;
3. export: the dataset's keypoints as a pairs file;
4. train: the stereo label generator on the pairs and the dataset, mixed;
5. evaluate: on the CMU people held out of everything above, clean and with 5 px noise;
6. label: real COCO photos (and real AIST++ detections) lifted into 3D labels;
7. report.md: the metrics table, loss curves, the contact sheet and the lifted photos;
8. (in the report) the image network trained briefly on the renders plus the vendored photos,
   its metrics on held-out renders and its predictions on the COCO photos.

Each step is a library call; the report links the files the steps wrote.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.rule import Rule

from .image.demo import ImageDemoConfig

log = logging.getLogger(__name__)


class DemoConfig(BaseModel):
    """The demo's scale; the defaults take a few minutes on a 2-core CPU."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    pairs_per_source: int = Field(200_000, ge=1000)  # CMU-train pairs and prior pairs, each
    frames: int = Field(3000, ge=1)  # rendered frames
    workers: int = Field(2, ge=1)  # built-in player processes
    image_size: int = Field(256, ge=32)
    dataset_weight: float = Field(0.2, ge=0.0)  # share of each training batch from the rendered dataset
    epochs: int | None = None  # None: train.accuracy's CPU settings
    steps_per_epoch: int | None = None
    noise_px_test: tuple[float, ...] = (0.0, 5.0)
    image: ImageDemoConfig | None = Field(default_factory=ImageDemoConfig)  # the image network's step (null skips it)


# What a demo folder holds (demo --overwrite replaces a folder only when nothing else is there).
DEMO_FILES = ("pairs", "dataset", "run_stereo", "metrics.json", "report.md", "contact_sheet.png", "labels_*.json", "lifted_*.png", ".*.tmp")


@dataclasses.dataclass
class DemoResult:
    folder: Path
    report: Path
    metrics: list[dict]
    seconds: dict[str, float]


def run_demo(
    out: str | Path,
    config: DemoConfig | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
) -> DemoResult:
    """Run every step into `out` and write `out/report.md`.

    An existing demo folder is refused unless `resume` (keep its rendered frames, redo the other
    steps) or `overwrite` (start from an empty folder) is given.
    """
    from generator.outputs import claim_output, clear_folder

    from bridge.dataset_report import contact_sheet, print_dataset_summary, summarize_dataset
    from bridge.generate import load_generate_config, print_generate_summary, run_generate
    from bridge.players import BuiltinLauncher
    from generator.pairs_io import load_pairs
    from generator.pairs_summary import print_summary, summarize_pairs
    from generator.store import export_pairs

    from .accuracy import AccuracyConfig, make_split_pairs, metrics_table
    from .evaluate import evaluate_pairs
    from .figures import render_lifted_figure
    from .inference import Lifter
    from .label import AISTPP_SLICE, COCO_FIXTURE, label_coco
    from .trainer import train_run

    cfg = config or DemoConfig()
    console = console or Console()
    out = Path(out)
    if claim_output(out, what="demo folder", resume=resume, overwrite=overwrite, owned=DEMO_FILES) == "overwrite":
        clear_folder(out, DEMO_FILES)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    acc = AccuracyConfig(seed=cfg.seed, train_pairs_per_source=cfg.pairs_per_source)
    if cfg.epochs is not None:
        acc = acc.with_epochs(cfg.epochs)
    if cfg.steps_per_epoch is not None:
        acc = acc.model_copy(update={"steps_per_epoch": cfg.steps_per_epoch})

    def step(title: str) -> float:
        console.print(Rule(f"[bold]{title}"))
        return time.perf_counter()

    # 1. pairs ------------------------------------------------------------------------------------
    t = step("1. keypoint pairs from real mocap and the pose prior")
    files = make_split_pairs(out / "pairs", acc)
    for path, title in ((files.train_cmu, "CMU clips (training people)"), (files.train_prior, "pose prior"), (files.test, "CMU clips (held-out people)")):
        print_summary(console, summarize_pairs(load_pairs(path, mmap=True)), title=f"{title}: {path.name}")
    console.print(f"held out of all training data: {', '.join(files.test_subjects)}")
    seconds["pairs"] = time.perf_counter() - t

    # 2. generate + inspect -----------------------------------------------------------------------
    t = step("2. rendered dataset from the built-in player")
    dataset = out / "dataset"
    gen = load_generate_config(
        None,
        {
            "frames": cfg.frames,
            "workers": cfg.workers,
            "seed": cfg.seed,
            "player.scene.image_size": [cfg.image_size, cfg.image_size],
            "player.pose_exclude_subjects": list(files.test_subjects),
        },
    )
    launcher = BuiltinLauncher.from_config(gen, dataset / ".run")
    print_generate_summary(console, run_generate(gen, dataset, launcher, console=console, show_progress=show_progress))
    print_dataset_summary(console, summarize_dataset(dataset))
    sheet = contact_sheet(dataset, out / "contact_sheet.png")
    seconds["generate"] = time.perf_counter() - t

    # 3. export -----------------------------------------------------------------------------------
    t = step("3. export the dataset's keypoints as pairs")
    dataset_pairs = export_pairs(dataset, out / "pairs" / "dataset.npz")
    console.print(f"{dataset_pairs}: {len(load_pairs(dataset_pairs, mmap=True))} pairs with visibility and the right view")
    seconds["export"] = time.perf_counter() - t

    # 4. train ------------------------------------------------------------------------------------
    t = step("4. train the stereo label generator")
    rest = (1.0 - cfg.dataset_weight) / 2
    data = [f"{files.train_cmu}:{rest}", f"{files.train_prior}:{rest}"]
    if cfg.dataset_weight > 0:
        data.append(f"{dataset_pairs}:{cfg.dataset_weight}")
    # A fresh run each time (the data above may have changed); the demo folder was claimed above.
    run = train_run(acc.train_config("stereo", data), out / "run_stereo", show_progress=show_progress, overwrite=True)
    m = run.read_metrics()
    console.print(f"{m['epochs']} epochs, {m['steps']} steps, final loss {m['final_loss']:.4f}, {m['samples_per_s']:.0f} samples/s")
    seconds["train"] = time.perf_counter() - t

    # 5. evaluate ---------------------------------------------------------------------------------
    t = step("5. evaluate on held-out CMU people")
    lifter = Lifter.load(run.path)
    test = load_pairs(files.test)
    metrics = []
    for noise in cfg.noise_px_test:
        for search in ("none", "fast"):
            result = evaluate_pairs(lifter, test, search=search, noise_px=noise, seed=cfg.seed)
            metrics.append({"noise_px": noise, "search": search, **result.summary})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    table = metrics_table(metrics, "search")
    console.print(table, markup=False, highlight=False)
    seconds["evaluate"] = time.perf_counter() - t

    # 6. label real photos ------------------------------------------------------------------------
    t = step("6. lift real photos and real detections into 3D labels")
    labelled = {}
    for name, coco in (("coco", COCO_FIXTURE), ("aistpp", AISTPP_SLICE)):
        summary = label_coco(run.path, coco, out / f"labels_{name}.json")
        figure = render_lifted_figure(summary.out, coco.parent, out / f"lifted_{name}.png")
        labelled[name] = (summary, figure)
        console.print(f"{coco.name}: lifted {summary.lifted} of {summary.people} people in {summary.images} images -> {summary.out.name}, {figure.name}")
    seconds["label"] = time.perf_counter() - t

    # 8. the image network ------------------------------------------------------------------------
    image = None
    if cfg.image is not None:
        from .image.demo import run_image_demo

        t = step("8. the image network on renders and real photos")
        image = run_image_demo(out, dataset, list(files.test_subjects), cfg.image, cfg.seed, cfg.image_size, cfg.workers, console, show_progress)
        seconds["image"] = time.perf_counter() - t

    # 7. report -----------------------------------------------------------------------------------
    report = _write_report(out, cfg, files, gen, m, run, table, sheet, labelled, seconds, image)
    console.print(Rule())
    console.print(f"[bold green]demo complete[/] in {sum(seconds.values()):.0f} s: {report}")
    return DemoResult(out, report, metrics, seconds)


def _write_report(out: Path, cfg: DemoConfig, files, gen, m: dict, run, table: str, sheet: Path, labelled: dict, seconds: dict, image=None) -> Path:
    rel = lambda p: Path(p).resolve().relative_to(out.resolve()).as_posix()  # noqa: E731
    lines = [
        "# posebridge demo report",
        "",
        f"Seed {cfg.seed}. Steps took " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".",
        "",
        "## Data",
        "",
        f"- Pairs from the bundled CMU clips of {len(files.train_subjects)} people ({', '.join(files.train_subjects)}) "
        f"and from the pose prior, {cfg.pairs_per_source:,} each: `{rel(files.train_cmu)}`, `{rel(files.train_prior)}`.",
        f"- A rendered dataset of {gen.frames} frames at {cfg.image_size}×{cfg.image_size} from {gen.workers} built-in players "
        f"(`dataset/`), exported as `pairs/dataset.npz`.",
        f"- Held out of all of it, for evaluation: {', '.join(files.test_subjects)} (`{rel(files.test)}`, fresh cameras, no augmentation).",
        "",
        f"![contact sheet]({rel(sheet)})",
        "",
        "## Training",
        "",
        f"The stereo label generator (view synthesis + 3D reconstruction), {m['epochs']} epochs, {m['steps']} steps, "
        f"final loss {m['final_loss']:.4f}, {m['samples_per_s']:.0f} samples/s. Run directory: `{rel(run.path)}`.",
        "",
        f"![loss curves]({rel(run.curves)})",
        "",
        "## Accuracy on held-out people",
        "",
        "Root-relative errors (MPJPE: Protocol #1; P-MPJPE: Procrustes, Protocol #2; N-MPJPE: scale-aligned), "
        "PCK3D at 150 mm and its AUC over 0-150 mm, the absolute (not root-aligned) error, and the reprojection error "
        "onto the input 2D. The geometric search (`fast`) puts every joint on the ray of its input pixel, so its "
        "reprojection error is zero up to float precision.",
        "",
        table,
        "",
        "## Real photos lifted into 3D labels",
        "",
    ]
    for name, (summary, figure) in labelled.items():
        lines += [
            f"`{rel(summary.out)}`: {summary.lifted} of {summary.people} people lifted in {summary.images} images "
            f"({summary.skipped} skipped for too few reliable keypoints).",
            "",
            f"![lifted {name}]({rel(figure)})",
            "",
        ]
    if image is not None:
        from .image.demo import report_lines

        lines += report_lines(image, rel)
    report = out / "report.md"
    report.write_text("\n".join(lines))
    return report
