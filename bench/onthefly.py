"""Training from on-the-fly pairs against a fixed file, at the same budget (steps x batch).

Data, as in the accuracy experiment (train/accuracy.py): the CMU clips of the training subjects
and the pose prior, mixed 50/50. "file": the fixed 400k-pair file of that experiment (200k pairs
from each bank, made once). "synthetic": `--data synthetic:...` from the same two banks, so every
training sample is a new pose draw under a new camera. Optionally (`--small N`) a third run from a
fixed file of only N pairs per bank, where a model sees each pair many times.

Test sets, neither seen in training: the CMU people held out by person (the accuracy split), and
the 20 DeepMimic clips (flips, cartwheel, crawl, get-up, dances: motions unlike the training
clips), each pose under fresh cameras without augmentation. Prints MPJPE / P-MPJPE (mm) of the
stereo generator + fast search and of the single-view baseline without search, clean and with
5 px 2D noise, and the training time of each run.

    python bench/onthefly.py [--epochs 8] [--steps 400] [--models stereo,single] [--small 10000] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.pairs import PairAugmentConfig, PairsConfig, generate_pairs  # noqa: E402
from generator.pairs_io import load_pairs, save_pairs  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from train.accuracy import AccuracyConfig, make_split_pairs  # noqa: E402
from train.evaluate import evaluate_pairs  # noqa: E402
from train.inference import Lifter  # noqa: E402
from train.trainer import train_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=400, help="steps per epoch")
    parser.add_argument("--models", default="stereo,single")
    parser.add_argument("--small", type=int, default=0, help="also train from a fixed file of this many pairs per bank")
    parser.add_argument("--out", type=Path, help="keep the runs and results.json here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = AccuracyConfig().with_epochs(args.epochs).model_copy(update={"steps_per_epoch": args.steps})
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        files = make_split_pairs(out / "pairs", cfg)
        plain = PairsConfig(augment=PairAugmentConfig(mirror_probability=0.0, bone_scale=None))
        bundled = load_pose_source("bundled")
        deepmimic = bundled.select_clips([c.subject == "deepmimic" for c in bundled.clips])
        tests = {
            "held-out CMU people": load_pairs(files.test),
            "DeepMimic motions": generate_pairs(deepmimic, cfg.test_cameras_per_pose * len(deepmimic), seed=cfg.seed + 4, config=plain),
        }
        held_out = ",".join([*cfg.held_out_subjects, "deepmimic"])
        data = {
            "file, 400k pairs": [f"{files.train_cmu}:0.5", f"{files.train_prior}:0.5"],
            "on the fly": [f"synthetic:bundled?exclude={held_out}:0.5", f"synthetic:prior?prior_size={cfg.prior_size}:0.5"],
        }
        if args.small:
            small_cmu = save_pairs(out / "pairs" / "small_cmu.npz", load_pairs(files.train_cmu).select(slice(0, args.small)))
            small_prior = save_pairs(out / "pairs" / "small_prior.npz", load_pairs(files.train_prior).select(slice(0, args.small)))
            data[f"file, {2 * args.small // 1000}k pairs"] = [f"{small_cmu}:0.5", f"{small_prior}:0.5"]
        results = []
        for kind in args.models.split(","):
            for name, sources in data.items():
                t0 = time.perf_counter()
                run = train_run(cfg.train_config(kind, sources), out / f"{kind}-{len(results)}", show_progress=False)
                seconds = time.perf_counter() - t0
                lifter = Lifter.load(run.path)
                search = "fast" if kind == "stereo" else "none"
                row = {"model": kind, "search": search, "data": name, "train_s": seconds}
                for test_name, test in tests.items():
                    for noise in (0.0, 5.0):
                        s = evaluate_pairs(lifter, test, search=search, noise_px=noise, seed=cfg.seed, progress=False).summary
                        row[f"{test_name}, {noise:g} px"] = (s["mpjpe_mm"], s["p_mpjpe_mm"])
                results.append(row)
                print(json.dumps(row), flush=True)
        if args.out:
            (out / "results.json").write_text(json.dumps(results, indent=2))
    samples = cfg.epochs * cfg.steps_per_epoch * cfg.batch_size
    print(f"\nbudget: {cfg.epochs} epochs x {cfg.steps_per_epoch} steps x batch {cfg.batch_size} = {samples:,} samples per run; "
          f"{len(tests['held-out CMU people'])} held-out CMU pairs, {len(tests['DeepMimic motions'])} DeepMimic pairs; MPJPE / P-MPJPE mm")
    cols = [k for k in results[0] if "px" in k]
    print("| model | data | " + " | ".join(cols) + " | train s |")
    print("| --- | --- |" + " ---: |" * (len(cols) + 1))
    for r in results:
        label = "stereo + fast search" if r["model"] == "stereo" else "single-view, no search"
        print(f"| {label} | {r['data']} | " + " | ".join(f"{r[c][0]:.1f} / {r[c][1]:.1f}" for c in cols) + f" | {r['train_s']:.0f} |")


if __name__ == "__main__":
    main()
