"""The label generator's generalization benchmark (train/generalization.py): recipes trained at one
sample budget and seed on cross-source splits, one table.

    python bench/generalization.py --out /tmp/gen --stage levers     # the recipe levers, single-view, cross-source splits
    python bench/generalization.py --out /tmp/gen --stage final      # previous vs new default, both models, every split
    python bench/generalization.py ... --aistpp /work/shared/data/keypoints2d/aistpp   # + AIST++ multi-view consistency

Runs are kept in OUT and reused when their config is unchanged, so a stage can be rerun cheaply.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.detector_noise import DetectorNoiseConfig  # noqa: E402
from train.generalization import (  # noqa: E402
    CROSS_SOURCE,
    PREVIOUS_DEFAULT,
    SPLITS,
    BenchmarkConfig,
    Recipe,
    aistpp_coco,
    mean_cross_source,
    results_table,
    run_benchmark,
)


def _on_previous(name: str, **changes) -> Recipe:
    return Recipe(name=name, overrides={**PREVIOUS_DEFAULT, **changes})


def _net(width: int = 1024, dropout: float = 0.5, blocks: int = 2) -> dict:
    return {"width": width, "blocks": blocks, "dropout": dropout}


# The levers measured (docs/benchmarks.md, Generalization): a first round, each on top of the one
# before it, then a second from what the first showed. The winner became TrainConfig's defaults.
LEVERS = [
    _on_previous("previous default (batch 1024)"),
    _on_previous("batch 256", batch_size=256),
    _on_previous("batch 256, cosine + warm-up", batch_size=256, lr_schedule="cosine", warmup_steps=100),
    _on_previous("... + dropout 0.25", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(dropout=0.25)),
    _on_previous("... + dropout 0.25, weight decay 0.01", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(dropout=0.25), weight_decay=0.01),
    _on_previous("... + dropout 0.25, detector noise", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(dropout=0.25),
                 detector_noise=DetectorNoiseConfig().model_dump()),
    _on_previous("batch 256, cosine, width 512", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(width=512, dropout=0.25)),
    _on_previous("batch 256, cosine, no mirroring", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(dropout=0.25), mirror=False),
    # Second round, from what the first showed (cosine hurt, dropout 0.25 helped):
    _on_previous("batch 256, dropout 0.25", batch_size=256, net=_net(dropout=0.25)),
    _on_previous("batch 256, dropout 0.1", batch_size=256, net=_net(dropout=0.1)),
    _on_previous("batch 256, cosine, dropout 0.1", batch_size=256, lr_schedule="cosine", warmup_steps=100, net=_net(dropout=0.1)),
    _on_previous("batch 256, dropout 0.25, detector noise", batch_size=256, net=_net(dropout=0.25), detector_noise=DetectorNoiseConfig().model_dump()),
    _on_previous("batch 256, dropout 0.25, 4 of 5 epochs end to end", batch_size=256, net=_net(dropout=0.25), end_to_end_epochs=4),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--stage", choices=["levers", "final"], default="final")
    ap.add_argument("--samples", type=int, default=250_000, help="training samples per run")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--recipes", help="comma-separated indices into the lever list (levers stage)")
    ap.add_argument("--models", default=None, help="single,stereo (default: single for levers, both for final)")
    ap.add_argument("--splits", default=None, help="comma-separated split names (default: cross-source for levers, all for final)")
    ap.add_argument("--aistpp", type=Path, help="a folder of AIST++ keypoint pickles (default: the vendored 90-pose slice)")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--prior-weight", type=float, help="the prior's share of each training batch (default: 0.5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = BenchmarkConfig(samples=args.samples, epochs=args.epochs, seed=args.seed, threads=args.threads, prior_weight=args.prior_weight)
    if args.stage == "levers":
        recipes = [LEVERS[int(i)] for i in args.recipes.split(",")] if args.recipes else LEVERS
        models, splits = ("single",), CROSS_SOURCE
    else:
        recipes = [LEVERS[0], Recipe(name="new default")]
        models, splits = ("single", "stereo"), tuple(SPLITS)
    models = tuple(args.models.split(",")) if args.models else models
    splits = tuple(args.splits.split(",")) if args.splits else splits
    aistpp = aistpp_coco(args.aistpp, every=24) if args.stage == "final" else None
    rows = run_benchmark(args.out, recipes, cfg, models=models, splits=splits, aistpp=aistpp)
    print(f"budget {cfg.samples:,} samples per run, seed {cfg.seed}; MPJPE / P-MPJPE (mm)\n")
    print(results_table(rows))
    print()
    for recipe in recipes:
        for model in models:
            for search in ("none", "fast"):
                try:
                    m = mean_cross_source(rows, recipe.name, model, search)
                    d = mean_cross_source(rows, recipe.name, model, search, noise="detector")
                except ValueError:
                    continue
                print(f"{recipe.name} / {model} / {search}: cross-source mean P-MPJPE clean {m:.1f}, detector 2D {d:.1f}")


if __name__ == "__main__":
    main()
