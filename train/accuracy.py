"""The accuracy experiment: train on synthetic pairs from part of the CMU clips plus the pose prior,
evaluate on CMU people held out of training, under fresh random cameras, with clean and noisy 2D.

The split is by person (every clip of a held-out CMU subject is held out), so it is also by clip.
Training pairs come from `generator.pairs` (random cameras, mirroring and bone-length scaling) and
are mixed 50/50 with pairs from the prior; test pairs use other seeds and no augmentation, so every
test pose is a real captured pose of a person the networks never saw. The stereo generator and
the same-size single-view baseline get the same data, epochs and batch size.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from generator.pairs import PairAugmentConfig, PairsConfig, generate_pairs
from generator.pairs_io import Pairs, load_pairs, save_pairs
from generator.poses import PoseBank, load_pose_source

from .config import TrainConfig
from .evaluate import evaluate_pairs, placement_errors, summary_metrics
from .inference import Lifter
from .label import AISTPP_SLICE, LabelOptions, lift_coco
from . import metrics as M
from .models import NetConfig
from .search import GridConfig, geometric_search
from .trainer import train_run

log = logging.getLogger(__name__)

# Held out by person: a dancer, a hopper and five walkers; training keeps subjects 02, 06, 07, 08,
# 12, 16 and 35 (walks, run, jump, punch, basketball).
HELD_OUT_SUBJECTS = ("cmu_05", "cmu_131", "cmu_38", "cmu_39", "cmu_43", "cmu_45", "cmu_55")


class AccuracyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    held_out_subjects: tuple[str, ...] = HELD_OUT_SUBJECTS
    train_pairs_per_source: int = Field(200_000, ge=1)  # CMU-train pairs and prior pairs, each
    prior_size: int = Field(100_000, ge=1)
    test_cameras_per_pose: int = Field(4, ge=1)
    # CPU scale: half the paper's width, so both models train in a few minutes on 2 threads.
    net: NetConfig = Field(default_factory=lambda: NetConfig(width=512, blocks=2, dropout=0.1))
    epochs: int = Field(8, ge=1)
    steps_per_epoch: int = Field(400, ge=1)
    end_to_end_epochs: int = Field(5, ge=0)  # stereo: the last epochs trained end to end
    end_to_end_view_weight: float = Field(0.1, ge=0)
    batch_size: int = Field(256, ge=2)
    lr: float = 1e-3
    noise_px_train: float = 5.0
    noise_px_test: tuple[float, ...] = (0.0, 5.0)
    grid: GridConfig = Field(default_factory=lambda: GridConfig(depth_min_mm=1000.0, depth_max_mm=8999.0))
    threads: int | None = 2
    seed: int = 0

    def with_epochs(self, epochs: int) -> "AccuracyConfig":
        """A copy training `epochs` epochs, its end-to-end stage cut to leave at least one separate epoch."""
        return self.model_copy(update={"epochs": epochs, "end_to_end_epochs": min(self.end_to_end_epochs, max(epochs - 1, 0))})

    def train_config(self, kind: str, data: list[str]) -> TrainConfig:
        """The TrainConfig these settings give for `kind` (stereo or single) on `data` (PATH[:WEIGHT])."""
        return TrainConfig(
            data=data,
            model=kind,
            net=self.net,
            epochs=self.epochs,
            end_to_end_epochs=self.end_to_end_epochs if kind == "stereo" else None,
            end_to_end_view_weight=self.end_to_end_view_weight,
            steps_per_epoch=self.steps_per_epoch,
            batch_size=self.batch_size,
            lr=self.lr,
            noise_px=self.noise_px_train,
            seed=self.seed,
            threads=self.threads,
        )


@dataclasses.dataclass
class SplitFiles:
    train_cmu: Path
    train_prior: Path
    test: Path
    train_subjects: list[str]
    test_subjects: list[str]


def cmu_split(bank: PoseBank, held_out: tuple[str, ...]) -> tuple[PoseBank, PoseBank]:
    """The CMU clips of `bank` split by subject into (training, held-out) banks."""
    subjects = np.array([c.subject for c in bank.clips])
    is_cmu = np.char.startswith(subjects, "cmu_")
    test = np.isin(subjects, held_out)
    missing = sorted(set(held_out) - set(subjects.tolist()))
    if missing:
        raise ValueError(f"held-out subjects {missing} are not in the pose bank")
    return bank.select_clips(is_cmu & ~test), bank.select_clips(test)


def make_split_pairs(out_dir: str | Path, cfg: AccuracyConfig | None = None) -> SplitFiles:
    """Write the training pairs (CMU-train, prior) and the held-out test pairs into `out_dir`."""
    cfg = cfg or AccuracyConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_bank, test_bank = cmu_split(load_pose_source("bundled"), cfg.held_out_subjects)
    prior = load_pose_source("prior", seed=cfg.seed, prior_size=cfg.prior_size)
    files = SplitFiles(
        out_dir / "train_cmu.npz", out_dir / "train_prior.npz", out_dir / "test_cmu_heldout.npz",
        sorted({c.subject for c in train_bank.clips}), sorted({c.subject for c in test_bank.clips}),
    )
    save_pairs(files.train_cmu, generate_pairs(train_bank, cfg.train_pairs_per_source, seed=cfg.seed + 1))
    save_pairs(files.train_prior, generate_pairs(prior, cfg.train_pairs_per_source, seed=cfg.seed + 2))
    # Test: held-out poses (drawn at random, test_cameras_per_pose per pose on average) under fresh
    # cameras, as captured: no mirroring, no bone scaling.
    plain = PairsConfig(augment=PairAugmentConfig(mirror_probability=0.0, bone_scale=None))
    save_pairs(files.test, generate_pairs(test_bank, cfg.test_cameras_per_pose * len(test_bank), seed=cfg.seed + 3, config=plain))
    return files


def _train(kind: str, files: SplitFiles, out: Path, cfg: AccuracyConfig, show_progress: bool = True) -> tuple[Path, float]:
    tc = cfg.train_config(kind, [f"{files.train_cmu}:0.5", f"{files.train_prior}:0.5"])
    t0 = time.perf_counter()
    run = train_run(tc, out / f"run_{kind}", show_progress=show_progress, overwrite=True)  # a rerun rebuilds everything in out
    return run.path, time.perf_counter() - t0


def _row(name: str, kind: str, search: str, noise: float, lifter: Lifter, test: Pairs, cfg: AccuracyConfig) -> dict:
    result = evaluate_pairs(lifter, test, search=search, noise_px=noise, seed=cfg.seed, grid=cfg.grid)
    return {"method": name, "model": kind, "search": search, "noise_px": noise, **result.summary, "per_action": result.per_action}


def _oracle_row(test: Pairs, noise: float, cfg: AccuracyConfig) -> dict:
    """The true root-relative pose through the fast search: the error the search alone adds when
    it puts every joint on the ray of a noisy pixel (zero with clean 2D)."""
    rng = np.random.default_rng(cfg.seed)
    pixels = test.joints_2d.astype(np.float64) + (rng.normal(0.0, noise, test.joints_2d.shape) if noise > 0 else 0.0)
    gt = test.joints_3d.astype(np.float64)
    placed = geometric_search(M.root_align(gt), pixels, test.K_per_sample(), method="fast").joints
    errors = placement_errors(placed, gt, pixels, test.K_per_sample())
    method = "true 3D pose, search fast (the search's own error)"
    return {"method": method, "model": "oracle", "search": "fast", "noise_px": noise, **summary_metrics(errors)}


def multiview_consistency(labelled: dict) -> dict:
    """P-MPJPE between the 3D labels of one moment seen by different cameras (images sharing a
    `frame`): real data has no 3D ground truth, but every view of one pose must lift to the same
    shape. Returns the number of view pairs and their mean and median P-MPJPE (mm)."""
    frames = {img["id"]: img.get("frame") for img in labelled["images"]}
    poses: dict = {}
    for ann in labelled["annotations"]:
        if ann.get("keypoints_3d") is not None and frames.get(ann["image_id"]) is not None:
            poses.setdefault(frames[ann["image_id"]], []).append(np.asarray(ann["keypoints_3d"], dtype=np.float64))
    pairs = [(p, q) for views in poses.values() for i, p in enumerate(views) for q in views[i + 1 :]]
    if not pairs:
        raise ValueError("no moment was lifted from two views")
    errors = M.errors_procrustes(np.stack([p for p, _ in pairs]), np.stack([q for _, q in pairs])).mean(axis=1)
    return {"view_pairs": len(pairs), "p_mpjpe_mean_mm": float(errors.mean()), "p_mpjpe_median_mm": float(np.median(errors))}


def run_accuracy(out_dir: str | Path, cfg: AccuracyConfig | None = None, show_progress: bool = True) -> dict:
    """Make the split, train both models, evaluate every (model, search, noise); write
    accuracy.json and accuracy.md into `out_dir` and return the report."""
    cfg = cfg or AccuracyConfig()
    out_dir = Path(out_dir)
    files = make_split_pairs(out_dir / "pairs", cfg)
    test = load_pairs(files.test)
    runs = {kind: _train(kind, files, out_dir, cfg, show_progress) for kind in ("stereo", "single")}
    lifters = {kind: Lifter.load(path) for kind, (path, _) in runs.items()}
    rows = []
    for noise in cfg.noise_px_test:
        for kind, searches in (("single", ("none", "fast")), ("stereo", ("none", "fast", "grid"))):
            for search in searches:
                label = {"single": "single-view baseline", "stereo": "stereo generator"}[kind]
                rows.append(_row(f"{label}, search {search}", kind, search, noise, lifters[kind], test, cfg))
        rows.append(_oracle_row(test, noise, cfg))
    aistpp = json.loads(AISTPP_SLICE.read_text())
    consistency = {}
    for kind, lifter in lifters.items():
        labelled, _ = lift_coco(lifter, aistpp, LabelOptions(), source=str(AISTPP_SLICE))
        consistency[kind] = multiview_consistency(labelled)
    report = {
        "config": cfg.model_dump(mode="json"),
        "aistpp_multiview_consistency": consistency,
        "train_subjects": files.train_subjects,
        "test_subjects": files.test_subjects,
        "test_pairs": len(test),
        "train_seconds": {k: v[1] for k, v in runs.items()},
        "parameters": {k: json.loads((v[0] / "metrics.json").read_text())["parameters"] for k, v in runs.items()},
        "rows": rows,
    }
    (out_dir / "accuracy.json").write_text(json.dumps(report, indent=2))
    (out_dir / "accuracy.md").write_text(markdown_table(report))
    return report


def _input_2d(row: dict) -> str:
    """A row's 2D input: `noise` ("clean", "detector") when it has one, else its Gaussian `noise_px`."""
    if "noise" in row:
        return {"clean": "clean", "detector": "detector-like"}.get(row["noise"], row["noise"])
    return "clean" if row["noise_px"] == 0 else f"+{row['noise_px']:g} px noise"


def metrics_table(rows: list[dict], label: str = "method", first: str | None = None) -> str:
    """A Markdown table of evaluation rows: their `first` key when given (e.g. the test set), their
    2D input (`noise` or `noise_px`), their `label` key and the summary metrics."""
    lead = f"{first} | " if first else ""
    lines = [
        f"| {lead}2D input | {label} | MPJPE (mm) | P-MPJPE (mm) | N-MPJPE (mm) | PCK3D@150 | AUC | abs MPJPE (mm) | reprojection (px) |",
        "|" + " --- |" * (3 if first else 2) + " ---: |" * 7,
    ]
    for r in rows:
        lead = f"{r[first]} | " if first else ""
        lines.append(
            f"| {lead}{_input_2d(r)} | {r[label]} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | {r['n_mpjpe_mm']:.1f} | "
            f"{r['pck3d_150']:.3f} | {r['auc']:.3f} | {r['abs_mpjpe_mm']:.0f} | {r['reprojection_px']:.2g} |"
        )
    return "\n".join(lines)


def markdown_table(report: dict) -> str:
    return metrics_table(report["rows"]) + "\n"
