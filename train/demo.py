"""`posebridge demo` (`make demo`): the main job, end to end, on the built-in player.

1. pairs: the cross-source split of train/generalization.py ("walks -> actions"): training pairs
   from the bundled CMU walks (the held-out people excluded) and the pose prior; test pairs from
   motions never seen in training (the Character Creator action clips and the DeepMimic clips);
2. generate: a rendered dataset of the same walks (the held-out people excluded) from built-in
   player processes, then inspected;
3. export: the dataset's keypoints as a pairs file;
4. train: the stereo label generator with `train`'s default recipe (TrainConfig's defaults, only
   the budget set here) on the pairs and the dataset, mixed;
5. evaluate: on the unseen motions, with clean and with detector-like 2D, without and with the search;
6. label: real COCO photos (and real AIST++ detections) lifted into 3D labels;
7. report.md: the metrics table, loss curves, the contact sheet and the lifted photos;
8. (in the report) the image network trained briefly on the renders plus the vendored photos,
   its metrics on renders of the held-out people and its predictions on the COCO photos.

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
    pairs_per_source: int = Field(200_000, ge=1000)  # walk pairs and prior pairs, each
    frames: int = Field(3000, ge=1)  # rendered frames
    workers: int = Field(2, ge=1)  # built-in player processes
    image_size: int = Field(256, ge=32)
    dataset_weight: float = Field(0.2, ge=0.0)  # share of each training batch from the rendered dataset
    # The training budget; everything else is `train`'s default recipe (TrainConfig's defaults).
    epochs: int | None = None  # None: DEMO_EPOCHS
    steps_per_epoch: int | None = None  # None: DEMO_SAMPLES_PER_EPOCH / the default batch size
    threads: int | None = Field(2, ge=1)  # torch CPU threads for training (None: torch's choice)
    test_cameras_per_pose: int = Field(4, ge=1)  # test pairs per test pose, each under a fresh camera
    image: ImageDemoConfig | None = Field(default_factory=ImageDemoConfig)  # the image network's step (null skips it)


# The default training budget: a few minutes on 2 cores at the default recipe's width, whatever
# its batch size (250 steps of 256 per epoch).
DEMO_EPOCHS = 4
DEMO_SAMPLES_PER_EPOCH = 64_000
# The cross-source split the demo trains and tests on (train/generalization.py).
DEMO_SPLIT = "walks->actions"

# What a demo folder holds (demo --overwrite replaces a folder only when nothing else is there).
DEMO_FILES = ("pairs", "dataset", "run_stereo", "metrics.json", "report.md", "contact_sheet.png", "labels_*.json", "lifted_*.png", ".*.tmp",
              "dataset_heldout", "run_image", "predictions_image", "image_predictions.png")  # fmt: skip


@dataclasses.dataclass
class DemoPairs:
    """The pairs files of step 1: training files by source, test files by test-set name."""

    train: dict[str, Path]  # e.g. {"walks": pairs/train_walks.npz, "prior": pairs/train_prior.npz}
    tests: dict[str, Path]  # e.g. {"CC actions": pairs/test_cc_actions.npz, "DeepMimic": ...}
    train_subjects: list[str]
    held_out: list[str]  # people left out of every training file and of the renders
    excluded: list[str]  # those of them the training folders hold (what a renderer of those folders must exclude)
    prior_weight: float  # the prior's share of the pairs (the split's)


def make_demo_pairs(out_dir: Path, split_name: str, pairs_per_source: int, seed: int, test_cameras_per_pose: int) -> DemoPairs:
    """Write a cross-source split's training pairs (each training folder without the held-out
    people, and the prior; `pairs_per_source` each) and its test sets into `out_dir`."""
    from generator.pairs import generate_pairs
    from generator.pairs_io import save_pairs
    from generator.poses import load_pose_source

    from .accuracy import HELD_OUT_SUBJECTS
    from .generalization import SPLITS, BenchmarkConfig, bank_of, slug, test_sets

    split = SPLITS[split_name]
    out_dir.mkdir(parents=True, exist_ok=True)
    held_out = tuple(sorted(set(HELD_OUT_SUBJECTS) | set(split.held_out)))
    train, subjects, excluded = {}, set(), set()
    for i, folder in enumerate(split.train):
        bank = bank_of((folder,))
        excluded |= {c.subject for c in bank.clips} & set(held_out)
        bank = bank_of((folder,), exclude=held_out)
        name = folder.removeprefix("cmu_")
        train[name] = save_pairs(out_dir / f"train_{slug(name)}.npz", generate_pairs(bank, pairs_per_source, seed=seed + 1 + i))
        subjects |= {c.subject for c in bank.clips}
    if split.prior_weight > 0:
        prior = load_pose_source("prior", seed=seed, prior_size=BenchmarkConfig().prior_size)
        train["prior"] = save_pairs(out_dir / "train_prior.npz", generate_pairs(prior, pairs_per_source, seed=seed + 1 + len(split.train)))
    tests = test_sets(split, BenchmarkConfig(seed=seed, test_cameras_per_pose=test_cameras_per_pose))
    files = {name: save_pairs(out_dir / f"test_{slug(name)}.npz", pairs) for name, pairs in tests.items()}
    return DemoPairs(train, files, sorted(subjects), list(held_out), sorted(excluded), split.prior_weight)


def demo_train_config(cfg: DemoConfig, data: list[str]):
    """The stereo generator's TrainConfig: `train`'s defaults (the default recipe) on `data`, with
    only the demo's budget (epochs, steps per epoch), seed and threads set."""
    from .config import TrainConfig

    default = TrainConfig()
    epochs = cfg.epochs if cfg.epochs is not None else DEMO_EPOCHS
    steps = cfg.steps_per_epoch if cfg.steps_per_epoch is not None else max(1, round(DEMO_SAMPLES_PER_EPOCH / default.batch_size))
    e2e = default.end_to_end_epochs  # a default set above the demo's epochs leaves one separate epoch
    if e2e is not None:
        e2e = min(e2e, max(epochs - 1, 0))
    return TrainConfig(data=data, model="stereo", epochs=epochs, steps_per_epoch=steps, end_to_end_epochs=e2e, seed=cfg.seed, threads=cfg.threads)


def recipe_lines(tc) -> str:
    """The key values of a TrainConfig's recipe, in words, for the report."""
    n = tc.net
    if tc.lr_schedule == "cosine":
        schedule = f"cosine from {tc.lr:g} to {tc.lr * tc.lr_final:.2g}"
    else:
        schedule = f"exponential from {tc.lr:g}, ×{tc.lr_decay:g} every {tc.lr_decay_steps:,} steps"
    if tc.warmup_steps:
        schedule += f" after {tc.warmup_steps:,} warm-up steps"
    parts = [
        f"batch {tc.batch_size}",
        f"width {n.width}, {n.blocks} residual blocks, dropout {n.dropout:g}",
        f"lr {schedule}",
        f"weight decay {tc.weight_decay:g}",
        f"Gaussian 2D noise up to {tc.noise_px:g} px",
        f"detector-like 2D noise {'on' if tc.detector_noise is not None else 'off'}",
        f"mirroring {'on' if tc.mirror else 'off'}",
        f"the last {tc.e2e_epochs()} of {tc.epochs} epochs end to end (view-loss weight {tc.end_to_end_view_weight:g})",
    ]
    return "; ".join(parts)


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
    from generator.mocap import DATA_DIR as MOCAP_DIR
    from generator.pairs_io import load_pairs
    from generator.pairs_summary import print_summary, summarize_pairs
    from generator.store import export_pairs

    from .accuracy import metrics_table
    from .evaluate import evaluate_pairs
    from .figures import render_lifted_figure
    from .generalization import BenchmarkConfig, with_detector_noise
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

    def step(title: str) -> float:
        console.print(Rule(f"[bold]{title}"))
        return time.perf_counter()

    # 1. pairs ------------------------------------------------------------------------------------
    t = step("1. keypoint pairs: walks and the pose prior for training, unseen actions for testing")
    files = make_demo_pairs(out / "pairs", DEMO_SPLIT, cfg.pairs_per_source, cfg.seed, cfg.test_cameras_per_pose)
    titles = {"walks": "CMU walks (training people)", "prior": "pose prior"}
    for name, path in files.train.items():
        print_summary(console, summarize_pairs(load_pairs(path, mmap=True)), title=f"{titles.get(name, name)}: {path.name}")
    for name, path in files.tests.items():
        print_summary(console, summarize_pairs(load_pairs(path, mmap=True)), title=f"test, unseen motions, {name}: {path.name}")
    console.print(f"held out of all training data: {', '.join(files.held_out)}")
    seconds["pairs"] = time.perf_counter() - t

    # 2. generate + inspect -----------------------------------------------------------------------
    t = step("2. rendered dataset from the built-in player")
    dataset = out / "dataset"
    # The renders join the lifter's training data: the training walks only, never a test motion.
    gen = load_generate_config(
        None,
        {
            "frames": cfg.frames,
            "workers": cfg.workers,
            "seed": cfg.seed,
            "player.scene.image_size": [cfg.image_size, cfg.image_size],
            "player.pose_source": str(MOCAP_DIR / "cmu_walks"),
            "player.pose_exclude_subjects": files.excluded,  # the held-out people among the walkers
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
    t = step("4. train the stereo label generator (the default recipe)")
    rest = 1.0 - cfg.dataset_weight
    mocap = [p for name, p in files.train.items() if name != "prior"]
    data = [f"{p}:{rest * (1 - files.prior_weight) / len(mocap):g}" for p in mocap]
    if "prior" in files.train:
        data.append(f"{files.train['prior']}:{rest * files.prior_weight:g}")
    if cfg.dataset_weight > 0:
        data.append(f"{dataset_pairs}:{cfg.dataset_weight:g}")
    tc = demo_train_config(cfg, data)
    # A fresh run each time (the data above may have changed); the demo folder was claimed above.
    run = train_run(tc, out / "run_stereo", show_progress=show_progress, overwrite=True)
    m = run.read_metrics()
    console.print(f"{m['epochs']} epochs, {m['steps']} steps, final loss {m['final_loss']:.4f}, {m['samples_per_s']:.0f} samples/s")
    console.print(f"recipe (train's defaults): {recipe_lines(tc)}")
    seconds["train"] = time.perf_counter() - t

    # 5. evaluate ---------------------------------------------------------------------------------
    t = step("5. evaluate on unseen motions, clean and with detector-like 2D")
    lifter = Lifter.load(run.path)
    bench = BenchmarkConfig(seed=cfg.seed)
    metrics = []
    for name, path in files.tests.items():
        test = load_pairs(path)
        for noise, pairs in (("clean", test), ("detector", with_detector_noise(test, bench))):
            for search in ("none", "fast"):
                result = evaluate_pairs(lifter, pairs, search=search, seed=cfg.seed, progress=show_progress)
                metrics.append({"test": name, "noise": noise, "search": search, **result.summary})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    table = metrics_table(metrics, "search", first="test")
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
        image = run_image_demo(out, dataset, files.held_out, cfg.image, cfg.seed, cfg.image_size, cfg.workers, console, show_progress)
        seconds["image"] = time.perf_counter() - t

    # 7. report -----------------------------------------------------------------------------------
    report = _write_report(out, cfg, files, gen, m, run, tc, table, sheet, labelled, seconds, image)
    console.print(Rule())
    console.print(f"[bold green]demo complete[/] in {sum(seconds.values()):.0f} s: {report}")
    return DemoResult(out, report, metrics, seconds)


def _write_report(out: Path, cfg: DemoConfig, files: DemoPairs, gen, m: dict, run, tc, table: str, sheet: Path, labelled: dict, seconds: dict,
                  image=None) -> Path:  # fmt: skip
    rel = lambda p: Path(p).resolve().relative_to(out.resolve()).as_posix()  # noqa: E731
    train_files = ", ".join(f"`{rel(p)}`" for p in files.train.values())
    tests = ", ".join(f"{name} (`{rel(p)}`)" for name, p in files.tests.items())
    lines = [
        "# posebridge demo report",
        "",
        f"Seed {cfg.seed}. Steps took " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".",
        "",
        "## Data",
        "",
        f"The cross-source split `{DEMO_SPLIT}` (train/generalization.py): train on walks, test on other motions.",
        "",
        f"- Training pairs from the bundled CMU walks of {len(files.train_subjects)} people ({', '.join(files.train_subjects)}) "
        f"and from the pose prior, {cfg.pairs_per_source:,} each: {train_files}.",
        f"- A rendered dataset of {gen.frames} frames of the same walks at {cfg.image_size}×{cfg.image_size} from {gen.workers} built-in players "
        f"(`dataset/`), exported as `pairs/dataset.npz`.",
        f"- Held out of all of it: the people {', '.join(files.held_out)} (the image network's test renders below), and every "
        f"test motion: {tests}, fresh cameras, no augmentation.",
        "",
        f"![contact sheet]({rel(sheet)})",
        "",
        "## Training",
        "",
        f"The stereo label generator (view synthesis + 3D reconstruction) with `train`'s default recipe (TrainConfig's defaults; "
        f"the demo sets only the budget): {recipe_lines(tc)}. "
        f"{m['epochs']} epochs, {m['steps']} steps, final loss {m['final_loss']:.4f}, {m['samples_per_s']:.0f} samples/s. "
        f"Run directory: `{rel(run.path)}`.",
        "",
        f"![loss curves]({rel(run.curves)})",
        "",
        "## Accuracy on unseen motions (cross-source: trained on walks, tested on actions)",
        "",
        "Root-relative errors (MPJPE: Protocol #1; P-MPJPE: Procrustes, Protocol #2; N-MPJPE: scale-aligned), "
        "PCK3D at 150 mm and its AUC over 0-150 mm, the absolute (not root-aligned) error, and the reprojection error "
        "onto the input 2D. Inputs: the clean projected 2D, and detector-like 2D (train/detector_noise.py at full strength: "
        "definition bias, jitter, left/right swaps, gross errors, misses). The geometric search (`fast`) puts every joint on "
        "the ray of its input pixel, so its reprojection error is zero up to float precision.",
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
