"""The image network's domain-gap ablation in one command (train/image/ablation.py): four arms
(synthetic only, real only, mixed, mixed + pseudo-3D labels of the real photos), the same model,
seed and sample budget; PCK@0.2 on the real photos' hold-out, MPJPE on renders of held-out people;
one table (printed, and WORK/ablation.md + ablation.json).

    python bench/image_ablation.py --real /work/shared/data/images/lspet --work /tmp/ablation            # full budget
    python bench/image_ablation.py --real ... --work /tmp/abl_tiny --samples 640 --epochs 1 \\
        --render-frames 300 --render-test-frames 100 --lifter-pairs 5000 --lifter-epochs 1 --lifter-steps 30 --eval-limit 200   # a quick check

WORK must be outside the repository: it receives labels derived from the real photos.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.image.ablation import AblationConfig, run_ablation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True, help="an LSP-format folder (LSPET: /work/shared/data/images/lspet)")
    ap.add_argument("--work", required=True, type=Path, help="work folder (renders, lifter, labels, runs, table); resumable")
    ap.add_argument("--preset", default="cpu-small")
    ap.add_argument("--samples", type=int, default=76_800, help="training samples per arm (default: the cpu-small budget)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render-frames", type=int, default=20_000)
    ap.add_argument("--render-test-frames", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--real-weight", type=float, default=0.5)
    ap.add_argument("--lifter", help="a trained label generator run (default: train one in WORK)")
    ap.add_argument("--lifter-pairs", type=int, default=200_000)
    ap.add_argument("--lifter-epochs", type=int, default=8)
    ap.add_argument("--lifter-steps", type=int, default=400)
    ap.add_argument("--eval-limit", type=int)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.work.resolve().is_relative_to(REPO):
        sys.exit(f"--work {args.work} is inside the repository; the real photos' labels must not land there")
    cfg = AblationConfig(
        real=args.real, preset=args.preset, samples=args.samples, epochs=args.epochs, seed=args.seed, render_frames=args.render_frames,
        render_test_frames=args.render_test_frames, image_size=args.image_size, real_weight=args.real_weight, lifter=args.lifter,
        lifter_pairs=args.lifter_pairs, lifter_epochs=args.lifter_epochs, lifter_steps_per_epoch=args.lifter_steps, eval_limit=args.eval_limit,
        workers=args.workers,
    )  # fmt: skip
    result = run_ablation(cfg, args.work, show_progress=not args.no_progress)
    print(result.table)


if __name__ == "__main__":
    main()
