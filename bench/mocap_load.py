"""Mocap loading: the vendored clips (or a folder) → a PoseBank of h36m17 world poses.

The timed section is `load_pose_source(SOURCE)`: parse every BVH/DeepMimic file, forward
kinematics, name maps, floor, 30 fps subsampling. In the same run it times two references that
do only part of that work on the same BVH files (no hierarchy, no FK, no DeepMimic): reading
the MOTION numbers line by line with Python floats, as a simple reader does, and reading them
with one `np.fromstring` per file, the floor for any text parser in numpy. It prints all three
and the ratios.

    python bench/mocap_load.py [--source bundled] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from generator.mocap import DATA_DIR, find_clips  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402


def _naive_motion_parse(paths: list[Path]) -> int:
    values = 0
    for path in paths:
        lines = path.read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("Frame Time")) + 1
        for line in lines[start:]:
            values += len([float(x) for x in line.split()])
    return values


def _numpy_motion_parse(paths: list[Path]) -> int:
    values = 0
    for path in paths:
        raw = path.read_bytes()
        start = raw.index(b"\n", raw.index(b"Frame Time")) + 1
        values += np.fromstring(raw[start:], sep=" ").size
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="bundled")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    folder = DATA_DIR if args.source == "bundled" else Path(args.source)
    paths = find_clips(folder) if folder.is_dir() else [folder]
    megabytes = sum(p.stat().st_size for p in paths) / 1e6
    bvh = [p for p in paths if p.suffix.lower() == ".bvh"]

    best = best_naive = best_numpy = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        bank = load_pose_source(args.source)
        best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        _naive_motion_parse(bvh)
        best_naive = min(best_naive, time.perf_counter() - t)
        t = time.perf_counter()
        _numpy_motion_parse(bvh)
        best_numpy = min(best_numpy, time.perf_counter() - t)

    print(f"source: {args.source} ({len(paths)} clips, {len(bvh)} BVH, {megabytes:.1f} MB)")
    print(f"load_pose_source: {best:.3f} s  ({len(bank)} poses, {len(bank) / best:,.0f} poses/s, {megabytes / best:.1f} MB/s)")
    print(f"reference: BVH MOTION numbers only, Python floats: {best_naive:.3f} s (ratio {best_naive / best:.2f})")
    print(f"reference: BVH MOTION numbers only, np.fromstring: {best_numpy:.3f} s (ratio {best_numpy / best:.2f})")


if __name__ == "__main__":
    main()
