"""The domain-gap ablation: what mixing rendered and real images buys the image network.

Four arms, the same model (a preset), seed and sample budget, differing only in their data:

1. `synthetic`: rendered frames (mocap people other than the held-out ones);
2. `real`: the real photos' train split (2D labels only);
3. `mixed`: both, half and half per batch;
4. `mixed+pseudo3d`: both, the photos carrying pseudo-3D labels that the stereo label generator
   (trained on mocap pairs without the held-out people) lifted from their 2D (`posebridge label --lsp`).

Tested on the real photos' hold-out split (PCK@0.2; left/right limb asymmetry of the 3D; and
MPJPE / P-MPJPE against the label generator's lifting of the hold-out's own 2D labels, a
consistency figure, not ground truth) and on renders of the held-out mocap people (MPJPE,
P-MPJPE, PCK). Everything goes into a work folder outside the repository (the photos' labels
must not be vendored); each step resumes what is already there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

ARMS = ("synthetic", "real", "mixed", "mixed+pseudo3d")


class AblationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    real: str  # an LSP-format folder (its train split trains, its holdout split tests)
    preset: str = "cpu-small"
    samples: int = Field(76_800, ge=1)  # training samples per arm (steps x batch): the cpu-small budget
    epochs: int = Field(10, ge=1)  # checkpoints per arm (the budget is split evenly)
    seed: int = 0
    render_frames: int = Field(20_000, ge=1)  # training renders
    render_test_frames: int = Field(1000, ge=1)  # renders of the held-out people
    image_size: int = Field(256, ge=32)
    real_weight: float = Field(0.5, gt=0, lt=1)  # the photos' share of a mixed batch
    lifter: str | None = None  # a trained label generator run; None: train one here
    lifter_pairs: int = Field(200_000, ge=1000)  # mocap pairs per source for that lifter
    lifter_epochs: int = Field(8, ge=1)
    lifter_steps_per_epoch: int = Field(400, ge=1)
    eval_limit: int | None = Field(None, ge=1)  # people per test set (None: all)
    workers: int | None = None  # DataLoader workers (None: the preset's)
    overrides: dict = Field(default_factory=dict)  # more ImageTrainConfig keys (dotted), for every arm


@dataclasses.dataclass
class AblationResult:
    rows: list[dict]
    table: str
    folder: Path


def _lifter(cfg: AblationConfig, work: Path, show_progress: bool) -> Path:
    if cfg.lifter:
        return Path(cfg.lifter)
    from ..accuracy import AccuracyConfig, make_split_pairs
    from ..checkpoint import CHECKPOINT_NAME
    from ..trainer import train_run

    run = work / "lifter"
    if (run / CHECKPOINT_NAME).is_file():
        return run
    acc = AccuracyConfig(seed=cfg.seed, train_pairs_per_source=cfg.lifter_pairs).with_epochs(cfg.lifter_epochs)
    acc = acc.model_copy(update={"steps_per_epoch": cfg.lifter_steps_per_epoch})
    files = make_split_pairs(work / "pairs", acc)
    train_run(acc.train_config("stereo", [f"{files.train_cmu}:0.5", f"{files.train_prior}:0.5"]), run, show_progress=show_progress)
    return run


def run_ablation(cfg: AblationConfig, work: str | Path, show_progress: bool = True) -> AblationResult:
    """Render, lift, train the four arms and evaluate them into `work`; returns the table."""
    from ..accuracy import HELD_OUT_SUBJECTS
    from .config import resolve_image_config
    from .evaluate import evaluate_image_source
    from .lsp import label_lsp
    from .predict import ImagePoseEstimator
    from .renders import render_dataset
    from .sources import open_image_source
    from .trainer import train_image_run

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log.info("rendering %d training and %d test frames", cfg.render_frames, cfg.render_test_frames)
    train_renders = render_dataset(work / "renders_train", cfg.render_frames, cfg.image_size, cfg.seed + 1, exclude=HELD_OUT_SUBJECTS, show_progress=show_progress)
    # Held-out people on bodies no training render used (another identity pool).
    test_renders = render_dataset(work / "renders_test", cfg.render_test_frames, cfg.image_size, cfg.seed + 2, only=HELD_OUT_SUBJECTS,
                                  show_progress=show_progress, identity_seed=1)
    lifter = _lifter(cfg, work, show_progress)
    labels = {split: work / f"real_labels_{split}.json" for split in ("train", "holdout")}
    for split, path in labels.items():
        if not path.is_file():
            s = label_lsp(lifter, cfg.real, path, split=split)
            log.info("pseudo-3D labels (%s): %d of %d people lifted", split, s["lifted"], s["people"])

    base = resolve_image_config(cfg.preset)
    steps = max(1, round(cfg.samples / base.batch_size / cfg.epochs))
    w = cfg.real_weight
    data = {
        "synthetic": [f"{train_renders}:1"],
        "real": [f"{cfg.real}:1"],
        "mixed": [f"{train_renders}:{1 - w}", f"{cfg.real}:{w}"],
        "mixed+pseudo3d": [f"{train_renders}:{1 - w}", f"{labels['train']}:{w}"],
    }
    tests = {
        "real": open_image_source(labels["holdout"], split="holdout"),
        "renders": open_image_source(test_renders),
    }
    rows = []
    for arm in ARMS:
        run_dir = work / f"arm_{arm.replace('+', '_')}"
        arm_cfg = resolve_image_config(cfg.preset, {**cfg.overrides, "data": data[arm], "epochs": cfg.epochs, "steps_per_epoch": steps,
                                                    "seed": cfg.seed, "workers": cfg.workers})  # fmt: skip
        resume = (run_dir / "checkpoint.pt").is_file()
        run = train_image_run(arm_cfg, run_dir, resume=resume, show_progress=show_progress)
        est = ImagePoseEstimator.load(run.path)
        real = evaluate_image_source(est.model, tests["real"], arm_cfg.augment.pad, cfg.eval_limit, workers=1).summary
        synth = evaluate_image_source(est.model, tests["renders"], arm_cfg.augment.pad, cfg.eval_limit, workers=1).summary
        rows.append({
            "arm": arm, "data": data[arm], "samples": arm_cfg.total_samples(), "train_seconds": run.read_metrics()["train_seconds"],
            "real_pck_02": real["pck_02"], "real_symmetry_pct": real["symmetry_pct"], "real_mpjpe_vs_lifter_mm": real["mpjpe_mm"],
            "real_p_mpjpe_vs_lifter_mm": real["p_mpjpe_mm"], "real_n": real["n"], "real_n_3d": real["n_3d"],
            "renders_mpjpe_mm": synth["mpjpe_mm"], "renders_p_mpjpe_mm": synth["p_mpjpe_mm"], "renders_pck_02": synth["pck_02"], "renders_n": synth["n"],
            "mean_pose": {"real_pck_02": real["baseline_mean_pose"]["pck_02"], "renders_mpjpe_mm": synth["baseline_mean_pose"].get("mpjpe_mm")},
        })  # fmt: skip
        log.info("%s: %s", arm, rows[-1])
    table = ablation_table(rows, cfg, time.perf_counter() - t0)
    (work / "ablation.json").write_text(json.dumps({"config": cfg.model_dump(mode="json"), "rows": rows}, indent=2))
    (work / "ablation.md").write_text(table + "\n")
    return AblationResult(rows, table, work)


def ablation_table(rows: list[dict], cfg: AblationConfig, seconds: float) -> str:
    f = lambda v, p: "–" if v is None else format(v, p)  # noqa: E731
    lines = [
        f"Preset {cfg.preset}, {rows[0]['samples']:,} training samples per arm, seed {cfg.seed}, {cfg.render_frames:,} training renders at "
        f"{cfg.image_size}², real photos {cfg.real} (train split; tested on its holdout split), {seconds / 60:.0f} min in all.",
        "",
        "| arm | real PCK@0.2 ↑ | real L/R asymmetry % ↓ | real P-MPJPE vs lifter (mm) ↓ | renders MPJPE (mm) ↓ | renders P-MPJPE (mm) ↓ | renders PCK@0.2 ↑ |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['arm']} | {f(r['real_pck_02'], '.3f')} | {f(r['real_symmetry_pct'], '.1f')} | {f(r['real_p_mpjpe_vs_lifter_mm'], '.0f')} | "
                     f"{f(r['renders_mpjpe_mm'], '.0f')} | {f(r['renders_p_mpjpe_mm'], '.0f')} | {f(r['renders_pck_02'], '.3f')} |")  # fmt: skip
    mp = rows[0]["mean_pose"]
    lines.append(f"| mean pose (synthetic arm's) | {f(mp['real_pck_02'], '.3f')} | – | – | {f(mp['renders_mpjpe_mm'], '.0f')} | – | – |")
    return "\n".join(lines)
