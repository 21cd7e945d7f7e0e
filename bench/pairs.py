"""Keypoint-pair generation rate, in one process, against the rate of merely writing its bytes.

The timed section is `PairGenerator.fill` into a preallocated (already touched) output: pose
draws, mirroring, bone scaling, camera draws with the rejection rule, camera-frame joints,
left and right 2D, in-image checks, visibility, K and the image size, and (in the "with
provenance" figure) the subject/sequence/action/camera strings. In the same run it times the
floor for any generator, `np.copyto` of the same number of output bytes into a preallocated
array, and prints both rates and their ratio. `--file` adds the end-to-end rate of
`write_pairs_file` (generation, checksums, disk and fsync).

    python bench/pairs.py [--source bundled] [--n 1000000] [--repeats 3] [--file]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from generator.pairs import BLOCK_SIZE, PairGenerator, PairsConfig, write_pairs_file  # noqa: E402
from generator.pairs_io import STRING_KEYS  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402

NUMERIC = ("joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "image_size")


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="bundled")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--file", action="store_true", help="also time write_pairs_file to a temporary file")
    args = parser.parse_args()
    n = -(-args.n // BLOCK_SIZE) * BLOCK_SIZE

    bank = load_pose_source(args.source)
    gen = PairGenerator(bank, PairsConfig(), seed=0)
    out = gen.allocate(n)
    gen.fill(out)  # touch every page and warm up
    numeric_bytes = sum(getattr(out, k).nbytes for k in NUMERIC) // n
    string_bytes = sum(getattr(out, k).nbytes for k in STRING_KEYS) // n

    t_numeric = best_of(args.repeats, lambda: gen.fill(out, strings=False))
    t_full = best_of(args.repeats, lambda: gen.fill(out, strings=True))

    def copy_rate(bytes_per_sample: int) -> float:
        src = np.ones(n * bytes_per_sample, dtype=np.uint8)
        dst = np.zeros_like(src)
        np.copyto(dst, src)
        return n / best_of(args.repeats, lambda: np.copyto(dst, src))

    copy_numeric = copy_rate(numeric_bytes)
    copy_full = copy_rate(numeric_bytes + string_bytes)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}, numpy {np.__version__}")
    print(f"source: {args.source} ({len(bank):,} poses), {n:,} pairs, best of {args.repeats}")
    rate_numeric, rate_full = n / t_numeric, n / t_full
    print(f"pairs (numeric, {numeric_bytes} B/pair):        {rate_numeric:>12,.0f} pairs/s")
    print(f"np.copyto of the same bytes:                {copy_numeric:>12,.0f} pairs/s   ratio {rate_numeric / copy_numeric:.3f}")
    print(f"pairs with provenance ({numeric_bytes + string_bytes} B/pair):  {rate_full:>12,.0f} pairs/s")
    print(f"np.copyto of the same bytes:                {copy_full:>12,.0f} pairs/s   ratio {rate_full / copy_full:.3f}")
    if args.file:
        with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
            path = Path(tmp) / "pairs.npz"
            start = time.perf_counter()
            write_pairs_file(path, bank, n, seed=0)
            elapsed = time.perf_counter() - start
            print(f"write_pairs_file, end to end ({path.stat().st_size / n:.0f} B/pair on disk): {n / elapsed:>10,.0f} pairs/s")


if __name__ == "__main__":
    main()
