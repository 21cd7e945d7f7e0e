"""The label generator's generalization benchmark: train on one kind of motion, test on another.

The held-out-people split of `train/accuracy.py` tests people the networks never saw, but their
motions (walks, a hop, a dance) come from the same capture as training. Real data differs in
capture, retargeting and motion at once, so this benchmark crosses sources (the bundled folders,
generator/data/mocap, DATA_LICENSES.md):

- walks -> actions: train on the 27 CMU walkers (cgspeed BVH, per-person skeletons) plus the pose
  prior; test on the Character Creator re-exports of CMU actions (dance, basketball, sword, jumps:
  another retargeting) and on the DeepMimic clips (flips, cartwheel, crawl, get-up: another rig);
- actions -> walks: the reverse (CC actions and DeepMimic plus the prior; test on the walks and
  subject 131's hops);
- held-out people: the accuracy split's people, trained on every other clip plus the prior.

Every split trains on pairs made on the fly (`synthetic:` sources: fresh cameras every step, the
pair generator's mirroring and bone scaling) and tests on its unseen clips under fresh cameras,
with clean 2D and with detector-like 2D (train/detector_noise.py, full strength). Real 2D without
3D truth: the multi-view consistency of lifted AIST++ detections (`aistpp` below). A *recipe* is a
set of TrainConfig overrides; every run has the same sample budget and seed, so recipes compare.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from generator.config_file import set_dotted
from generator.mocap import DATA_DIR as MOCAP_DIR
from generator.pairs import PairAugmentConfig, PairsConfig, generate_pairs
from generator.pairs_io import Pairs
from generator.poses import PoseBank, load_pose_source

from .accuracy import HELD_OUT_SUBJECTS, multiview_consistency
from .config import TrainConfig
from .detector_noise import DetectorNoiseConfig, detector_noise
from .evaluate import evaluate_pairs
from .inference import Lifter
from .label import AISTPP_SLICE, LabelOptions, lift_coco
from .trainer import train_run

log = logging.getLogger(__name__)


class Split(BaseModel):
    """Training folders (of the bundled mocap; "bundled" is all of them) and test sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    train: tuple[str, ...]
    test: dict[str, tuple[str, ...]]  # test-set name -> folders
    held_out: tuple[str, ...] = ()  # subjects left out of training; when set, the test sets are exactly them
    prior_weight: float = Field(0.5, ge=0, lt=1)


SPLITS: dict[str, Split] = {
    s.name: s
    for s in (
        Split(name="walks->actions", train=("cmu_walks",), test={"CC actions": ("cmu_actions_cc",), "DeepMimic": ("deepmimic",)}),
        Split(name="actions->walks", train=("cmu_actions_cc", "deepmimic"), test={"CMU walks": ("cmu_walks", "cmu_131")}),
        Split(name="held-out people", train=("bundled",), test={"held-out people": ("bundled",)}, held_out=HELD_OUT_SUBJECTS),
    )
}
CROSS_SOURCE = ("walks->actions", "actions->walks")
AISTPP_TEST = "AIST++ multi-view"

# The recipe `train` used before this benchmark existed (the paper's sizes, Martinez's schedule):
# pinned here so that every later default is measured against it.
PREVIOUS_DEFAULT: dict = {
    "batch_size": 1024, "net": {"width": 1024, "blocks": 2, "dropout": 0.5}, "lr": 1e-3, "lr_schedule": "exponential",
    "warmup_steps": 0, "weight_decay": 0.0, "noise_px": 5.0, "detector_noise": None, "mirror": True,
    "end_to_end_epochs": None, "end_to_end_view_weight": 0.1,
}  # fmt: skip


class Recipe(BaseModel):
    """A named set of TrainConfig overrides (nested dicts for `net`); {} is today's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    overrides: dict = Field(default_factory=dict)


class BenchmarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(250_000, ge=1)  # training samples per run (the budget)
    epochs: int = Field(5, ge=1)
    seed: int = 0
    prior_size: int = Field(100_000, ge=1)
    test_cameras_per_pose: int = Field(4, ge=1)
    test_limit: int | None = Field(None, ge=1)  # test pairs per set (default: all)
    detector: DetectorNoiseConfig = Field(default_factory=DetectorNoiseConfig)
    prior_weight: float | None = Field(None, ge=0, lt=1)  # the prior's share of each batch (None: the split's)
    threads: int | None = None


def bank_of(folders: tuple[str, ...], subjects: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> PoseBank:
    """The bundled clips of `folders` (all of them for "bundled"), restricted to `subjects` or without `exclude`."""
    bank = PoseBank.concatenate([load_pose_source("bundled" if f == "bundled" else MOCAP_DIR / f) for f in folders])
    if subjects:
        return bank.select_clips(np.array([c.subject in subjects for c in bank.clips]))
    if exclude:
        return bank.select_clips(np.array([c.subject not in exclude for c in bank.clips]))
    return bank


def training_data(split: Split, cfg: BenchmarkConfig) -> list[str]:
    """`--data` arguments: the split's folders made on the fly, and the prior."""
    prior_weight = split.prior_weight if cfg.prior_weight is None else cfg.prior_weight
    mocap_weight = (1.0 - prior_weight) / len(split.train)
    exclude = f"?exclude={','.join(split.held_out)}" if split.held_out else ""
    data = [f"synthetic:{'bundled' if f == 'bundled' else MOCAP_DIR / f}{exclude}:{mocap_weight:g}" for f in split.train]
    if prior_weight > 0:
        data.append(f"synthetic:prior?prior_size={cfg.prior_size}:{prior_weight:g}")
    return data


def test_sets(split: Split, cfg: BenchmarkConfig) -> dict[str, Pairs]:
    """Each test set's poses under fresh cameras, as captured (no mirroring, no bone scaling)."""
    plain = PairsConfig(augment=PairAugmentConfig(mirror_probability=0.0, bone_scale=None))
    out = {}
    for i, (name, folders) in enumerate(split.test.items()):
        bank = bank_of(folders, subjects=split.held_out)
        n = cfg.test_cameras_per_pose * len(bank)
        out[name] = generate_pairs(bank, n if cfg.test_limit is None else min(n, cfg.test_limit), seed=cfg.seed + 1000 + i, config=plain)
    return out


def with_detector_noise(pairs: Pairs, cfg: BenchmarkConfig) -> Pairs:
    """The pairs with their 2D replaced by detector-like 2D (full strength, seeded)."""
    rng = np.random.default_rng(cfg.seed + 77)
    noisy = detector_noise(pairs.joints_2d.astype(np.float64), rng, cfg.detector)
    return dataclasses.replace(pairs, joints_2d=noisy.astype(np.float32))


def recipe_config(recipe: Recipe, model: str, data: list[str], cfg: BenchmarkConfig) -> TrainConfig:
    """The TrainConfig of one run: the recipe on today's defaults, at the benchmark's budget."""
    values = TrainConfig(data=data, model=model, seed=cfg.seed, threads=cfg.threads).model_dump(mode="json")
    set_dotted(values, _dotted(recipe.overrides), skip_none=False)  # None is a value here (detector_noise off)
    values["epochs"] = cfg.epochs
    values["steps_per_epoch"] = max(1, round(cfg.samples / values["batch_size"] / cfg.epochs))
    if values.get("end_to_end_epochs") is not None:
        values["end_to_end_epochs"] = min(values["end_to_end_epochs"], cfg.epochs - 1)
    return TrainConfig.model_validate(values)


def _dotted(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "detector_noise":  # a whole optional sub-config: set, not merged
            out.update(_dotted(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def train_recipe(recipe: Recipe, model: str, split: Split, out: Path, cfg: BenchmarkConfig, show_progress: bool = False) -> Path:
    """Train one run, or reuse a finished run of the same config (runs are named by a hash of
    their config, so recipes that resolve to the same settings share one); returns its folder."""
    tc = recipe_config(recipe, model, training_data(split, cfg), cfg)
    digest = hashlib.sha256(json.dumps(tc.model_dump(mode="json", exclude={"threads", "device"}), sort_keys=True).encode()).hexdigest()[:12]
    run = out / "runs" / slug(split.name) / f"{model}-{digest}"
    if not (run / "metrics.json").is_file():
        train_run(tc, run, show_progress=show_progress, overwrite=True)
    (run / "recipe.txt").write_text(recipe.name + "\n")
    return run


def slug(name: str) -> str:
    """A file-name-safe form of a split or test-set name."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def evaluation_inputs(tests: dict[str, Pairs], cfg: BenchmarkConfig) -> dict[tuple[str, str], Pairs]:
    """Every test set as (name, "clean") and with detector-like 2D as (name, "detector"): made
    once per split and shared by every run evaluated on it."""
    return {key: pairs for name, clean in tests.items() for key, pairs in (((name, "clean"), clean), ((name, "detector"), with_detector_noise(clean, cfg)))}


def evaluate_run(run: Path, inputs: dict[tuple[str, str], Pairs], cfg: BenchmarkConfig, searches: tuple[str, ...]) -> list[dict]:
    """MPJPE / P-MPJPE of one run on every test input (`evaluation_inputs`)."""
    lifter = Lifter.load(run)
    rows = []
    for (name, noise), data in inputs.items():
        for search in searches:
            s = evaluate_pairs(lifter, data, search=search, seed=cfg.seed, progress=False).summary
            rows.append({"test": name, "noise": noise, "search": search, "mpjpe_mm": s["mpjpe_mm"], "p_mpjpe_mm": s["p_mpjpe_mm"], "n": s["n"]})
    return rows


def aistpp_coco(folder: str | Path | None = None, every: int = 24) -> dict:
    """AIST++ detections as a COCO dict with a `frame` per image (for `multiview_consistency`):
    every `every`-th frame of every view of the pickles in `folder` (the shared data's
    keypoints2d/aistpp: 4 dances x 9 views), or the vendored 90-pose slice when None."""
    if folder is None:
        return json.loads(AISTPP_SLICE.read_text())
    import pickle

    paths = sorted(Path(folder).glob("*.pkl"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no AIST++ .pkl keypoint files")
    template = json.loads(AISTPP_SLICE.read_text())
    images, anns = [], []
    for seq, path in enumerate(paths):
        with open(path, "rb") as f:
            d = pickle.load(f)  # noqa: S301 (the shared data's own pickles, SOURCE.txt)
        kp = np.asarray(d["keypoints2d"], dtype=np.float64)  # (views, frames, 17, 3)
        if kp.ndim != 4 or kp.shape[2:] != (17, 3):
            raise ValueError(f"{path}: keypoints2d has shape {kp.shape}, expected (views, frames, 17, 3)")
        for view in range(kp.shape[0]):
            for frame in range(0, kp.shape[1], every):
                k = kp[view, frame]
                if not np.isfinite(k).all():
                    continue
                image_id = len(images) + 1
                images.append({"id": image_id, "file_name": f"{path.stem}/c{view + 1:02d}/{frame:06d}", "width": 1920, "height": 1080,
                               "camera": f"c{view + 1:02d}", "frame": f"{seq}:{frame}"})  # fmt: skip
                visible = k[:, 2] >= 0.3
                x0, y0 = k[visible, :2].min(axis=0) if visible.any() else (0.0, 0.0)
                x1, y1 = k[visible, :2].max(axis=0) if visible.any() else (0.0, 0.0)
                anns.append({"id": image_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "keypoints": np.round(k, 3).ravel().tolist(),
                             "num_keypoints": int(visible.sum()), "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})  # fmt: skip
    return {"info": {"description": f"AIST++ detections from {folder}, every {every}th frame"}, "images": images, "annotations": anns,
            "categories": template["categories"]}  # fmt: skip


def aistpp_consistency(run: Path, coco: dict) -> dict:
    """Multi-view consistency (P-MPJPE between views of one moment) of a run's liftings (fast search)."""
    labelled, _ = lift_coco(Lifter.load(run), coco, LabelOptions(), source="aistpp")
    return multiview_consistency(labelled)


def run_benchmark(
    out: str | Path,
    recipes: list[Recipe],
    cfg: BenchmarkConfig | None = None,
    models: tuple[str, ...] = ("single", "stereo"),
    splits: tuple[str, ...] = tuple(SPLITS),
    searches: tuple[str, ...] = ("none", "fast"),
    aistpp: dict | None = None,
    show_progress: bool = False,
) -> list[dict]:
    """Train every (recipe, split, model) at the same budget and evaluate it; rows of results,
    also written to OUT/results.json. `aistpp` (a COCO dict, `aistpp_coco`) adds the multi-view
    consistency of the held-out-people split's models (or the last split's)."""
    cfg = cfg or BenchmarkConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split_name in splits:
        split = SPLITS[split_name]
        inputs = evaluation_inputs(test_sets(split, cfg), cfg)
        for recipe in recipes:
            for model in models:
                t0 = time.perf_counter()
                run = train_recipe(recipe, model, split, out, cfg, show_progress)
                seconds = json.loads((run / "metrics.json").read_text())["train_seconds"]
                for r in evaluate_run(run, inputs, cfg, searches):
                    rows.append({"recipe": recipe.name, "model": model, "split": split.name, **r})
                if aistpp is not None and split_name == (splits[-1] if "held-out people" not in splits else "held-out people"):
                    mv = aistpp_consistency(run, aistpp)
                    rows.append({"recipe": recipe.name, "model": model, "split": split.name, "test": AISTPP_TEST, "noise": "detector (real)",
                                 "search": "fast", "mpjpe_mm": None, "p_mpjpe_mm": mv["p_mpjpe_mean_mm"], "n": mv["view_pairs"]})  # fmt: skip
                log.info("%s / %s / %s: trained in %.0f s, done in %.0f s", recipe.name, split.name, model, seconds, time.perf_counter() - t0)
    (out / "results.json").write_text(json.dumps({"config": cfg.model_dump(mode="json"), "recipes": [r.model_dump() for r in recipes], "rows": rows}, indent=2))
    return rows


def results_table(rows: list[dict]) -> str:
    """One Markdown row per (recipe, model, search); a column per (test set, 2D input): MPJPE / P-MPJPE."""
    cols = list(dict.fromkeys((r["test"], r["noise"]) for r in rows))
    keys = list(dict.fromkeys((r["recipe"], r["model"], r["search"]) for r in rows if r["test"] != AISTPP_TEST))
    cell = {(r["recipe"], r["model"], r["search"], r["test"], r["noise"]): r for r in rows}
    head = "| recipe | model | search | " + " | ".join(f"{t}, {n}" for t, n in cols) + " |"
    lines = [head, "|" + " --- |" * 3 + " ---: |" * len(cols)]
    for recipe, model, search in keys:
        values = []
        for t, n in cols:
            r = cell.get((recipe, model, "fast" if t == AISTPP_TEST else search, t, n))  # AIST++ is lifted with the search
            if r is None:
                values.append("–")
            elif r["mpjpe_mm"] is None:
                values.append(f"{r['p_mpjpe_mm']:.1f}")
            else:
                values.append(f"{r['mpjpe_mm']:.1f} / {r['p_mpjpe_mm']:.1f}")
        lines.append(f"| {recipe} | {model} | {search} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def mean_cross_source(rows: list[dict], recipe: str, model: str, search: str, noise: str = "clean", metric: str = "p_mpjpe_mm") -> float:
    """The mean of `metric` over the cross-source test sets: the one figure recipes are ranked by."""
    vals = [r[metric] for r in rows if r["recipe"] == recipe and r["model"] == model and r["search"] == search and r["noise"] == noise
            and r["split"] in CROSS_SOURCE]  # fmt: skip
    if not vals:
        raise ValueError(f"no cross-source rows for {recipe} / {model} / {search} / {noise}")
    return float(np.mean(vals))
