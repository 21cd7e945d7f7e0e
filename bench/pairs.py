"""Keypoint-pair generation rate, in one process, against the rate of merely writing its bytes.

The timed section is `PairGenerator.fill` into a preallocated (already touched) output: pose
draws, mirroring, bone scaling, camera draws with the rejection rule, camera-frame joints,
left and right 2D, in-image checks, visibility, K and the image size, and (in the "with
provenance" figure) the subject/sequence/action/camera strings. In the same run it times the
floor for any generator, `np.copyto` of the same number of output bytes into a preallocated
array, and prints both rates and their ratio. `--file` adds the end-to-end rate of
`write_pairs_file` (generation, checksums, disk and fsync) side by side with the disk limit: the
same arrays, already in memory, written by `np.savez` to the same disk (and, second reference,
`np.savez` followed by an fsync, as durable as write_pairs_file). The two runs alternate, best of
`--repeats`; the output file's bytes must equal what np.savez holds.

    python bench/pairs.py [--source bundled] [--n 1000000] [--repeats 3] [--file] [--skip-rates]
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
    parser.add_argument("--file", action="store_true", help="also time write_pairs_file against np.savez, to a temporary file")
    parser.add_argument("--skip-rates", action="store_true", help="only the --file comparison")
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1], help="where the --file runs write")
    args = parser.parse_args()
    n = -(-args.n // BLOCK_SIZE) * BLOCK_SIZE

    bank = load_pose_source(args.source)
    gen = PairGenerator(bank, PairsConfig(), seed=0)
    out = gen.allocate(n)
    gen.fill(out)  # touch every page and warm up
    numeric_bytes = sum(getattr(out, k).nbytes for k in NUMERIC) // n
    string_bytes = sum(getattr(out, k).nbytes for k in STRING_KEYS) // n
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}, numpy {np.__version__}")
    print(f"source: {args.source} ({len(bank):,} poses), {n:,} pairs, best of {args.repeats}")
    if args.file:
        file_comparison(args, bank, out, n)
    if args.skip_rates:
        return

    t_numeric = best_of(args.repeats, lambda: gen.fill(out, strings=False))
    t_full = best_of(args.repeats, lambda: gen.fill(out, strings=True))

    def copy_rate(bytes_per_sample: int) -> float:
        src = np.ones(n * bytes_per_sample, dtype=np.uint8)
        dst = np.zeros_like(src)
        np.copyto(dst, src)
        return n / best_of(args.repeats, lambda: np.copyto(dst, src))

    copy_numeric = copy_rate(numeric_bytes)
    copy_full = copy_rate(numeric_bytes + string_bytes)

    rate_numeric, rate_full = n / t_numeric, n / t_full
    print(f"pairs (numeric, {numeric_bytes} B/pair):        {rate_numeric:>12,.0f} pairs/s")
    print(f"np.copyto of the same bytes:                {copy_numeric:>12,.0f} pairs/s   ratio {rate_numeric / copy_numeric:.3f}")
    print(f"pairs with provenance ({numeric_bytes + string_bytes} B/pair):  {rate_full:>12,.0f} pairs/s")
    print(f"np.copyto of the same bytes:                {copy_full:>12,.0f} pairs/s   ratio {rate_full / copy_full:.3f}")


def file_comparison(args, bank, pairs, n: int) -> None:
    """write_pairs_file end to end against np.savez of the same arrays already in memory."""
    arrays = pairs.arrays()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours, ref = Path(tmp) / "pairs.npz", Path(tmp) / "savez.npz"
        t_ours, t_savez, t_sync = [], [], []
        for _ in range(args.repeats):
            for p in (ours, ref):
                p.unlink(missing_ok=True)
            os.sync()
            start = time.perf_counter()
            write_pairs_file(ours, bank, n, seed=0)
            t_ours.append(time.perf_counter() - start)
            os.sync()
            start = time.perf_counter()
            np.savez(ref, **arrays)
            t_savez.append(time.perf_counter() - start)
            fd = os.open(ref, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            t_sync.append(time.perf_counter() - start)
        size = ours.stat().st_size
        with np.load(ours) as a, np.load(ref) as b:  # the same content (the layouts differ: ours is aligned)
            assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    best, savez, sync = min(t_ours), min(t_savez), min(t_sync)
    print(f"file: {size / 1e9:.2f} GB ({size / n:.0f} B/pair) in {args.dir}")
    print(f"write_pairs_file, end to end (generate, CRC, write, fsync): {best:6.2f} s  {n / best:>12,.0f} pairs/s  {size / best / 1e9:.2f} GB/s")
    print(f"np.savez of the arrays in memory (the disk limit):          {savez:6.2f} s  {n / savez:>12,.0f} pairs/s   ratio {savez / best:.2f}")
    print(f"np.savez + fsync:                                           {sync:6.2f} s  {n / sync:>12,.0f} pairs/s   ratio {sync / best:.2f}")
    print(f"  (all runs, s: write_pairs_file {', '.join(f'{t:.2f}' for t in t_ours)}; np.savez {', '.join(f'{t:.2f}' for t in t_savez)}; "
          f"+fsync {', '.join(f'{t:.2f}' for t in t_sync)})")

if __name__ == "__main__":
    main()
