"""Accuracy on held-out real mocap: the stereo generator against the same-size single-view baseline.

Trains both models on synthetic pairs from part of the bundled CMU clips plus the pose prior
(mixed 50/50), then evaluates on the CMU people held out of training under fresh random cameras,
with clean 2D and with 5 px Gaussian noise (train/accuracy.py has the split and the settings).
Prints the Markdown table of docs/benchmarks.md and writes accuracy.json / accuracy.md.

    python bench/accuracy.py [--out DIR] [--width 512] [--epochs 8] [--steps 400]

Without --out the files go to a new temporary folder, printed at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.accuracy import AccuracyConfig, markdown_table, run_accuracy  # noqa: E402
from train.models import NetConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--width", type=int, default=AccuracyConfig().net.width)
    parser.add_argument("--epochs", type=int, default=AccuracyConfig().epochs)
    parser.add_argument("--steps", type=int, default=AccuracyConfig().steps_per_epoch, help="steps per epoch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    base = AccuracyConfig()
    cfg = base.with_epochs(args.epochs).model_copy(update={
        "net": NetConfig(**{**base.net.model_dump(), "width": args.width}),
        "steps_per_epoch": args.steps,
        "threads": args.threads,
        "seed": args.seed,
    })
    out = args.out or Path(tempfile.mkdtemp(prefix="posebridge-accuracy-"))
    report = run_accuracy(out, cfg)
    print(f"train: {', '.join(report['train_subjects'])} + prior; test (held out): {', '.join(report['test_subjects'])}; {report['test_pairs']} test pairs")
    print(f"parameters: stereo {report['parameters']['stereo']:,}, single {report['parameters']['single']:,}; "
          f"training time: stereo {report['train_seconds']['stereo']:.0f} s, single {report['train_seconds']['single']:.0f} s")
    print(markdown_table(report))
    rows = {(r["model"], r["search"], r["noise_px"]): r for r in report["rows"]}
    for noise in cfg.noise_px_test:
        s, b = rows[("stereo", "fast", noise)], rows[("single", "none", noise)]
        print(
            f"{'clean' if noise == 0 else f'{noise:g} px noise'}: stereo+search vs single-view baseline: MPJPE {s['mpjpe_mm']:.1f} vs {b['mpjpe_mm']:.1f} mm "
            f"(ratio {s['mpjpe_mm'] / b['mpjpe_mm']:.3f}), P-MPJPE {s['p_mpjpe_mm']:.1f} vs {b['p_mpjpe_mm']:.1f} mm (ratio {s['p_mpjpe_mm'] / b['p_mpjpe_mm']:.3f}), "
            f"reprojection {s['reprojection_px']:.1e} px"
        )
    mv = report["aistpp_multiview_consistency"]
    print(
        f"real AIST++ detections, 3 views of 30 moments: P-MPJPE between views' 3D labels: stereo {mv['stereo']['p_mpjpe_mean_mm']:.1f} mm, "
        f"single {mv['single']['p_mpjpe_mean_mm']:.1f} mm (mean over {mv['stereo']['view_pairs']} / {mv['single']['view_pairs']} view pairs)"
    )
    print(f"runs, pairs and accuracy.json in {out}")


if __name__ == "__main__":
    main()
