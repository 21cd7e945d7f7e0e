"""Geometric search speed: the closed-form (fast) search beside the paper's grid, on one core.

Poses from the pose prior are placed under random cameras (generator.pairs); the "network" pose
each search receives is the true root-relative pose plus 30 mm Gaussian noise per coordinate, so
the optimum is not trivially exact. Timed for each method: rays from pixels and K, the root-depth
search, and placing every joint on its ray (the whole `geometric_search` call), batched. The grid
is the paper's: 2800-7199 mm in 1 mm steps (4400 depths), summed Euclidean distances. Also
printed: the rigid placement used without search, how far the grid's depth is from the fast one,
and the reprojection error of both (zero by construction).

    python bench/search.py [--poses 200000] [--grid-poses 4000] [--repeats 3]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: set before numpy/torch load their pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from generator.pairs import generate_pairs  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from train.metrics import reprojection_errors, root_align  # noqa: E402
from train.search import GridConfig, geometric_search  # noqa: E402


def _best_rate(fn, n: int, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return n / best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--poses", type=int, default=200_000)
    parser.add_argument("--grid-poses", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    bank = load_pose_source("prior", prior_size=20_000)
    pairs = generate_pairs(bank, args.poses, seed=0)
    rng = np.random.default_rng(0)
    gt = pairs.joints_3d.astype(np.float64)
    net = root_align(gt) + rng.normal(0.0, 30.0, gt.shape)
    net[:, 0] = 0.0
    pixels, K = pairs.joints_2d.astype(np.float64), pairs.K.astype(np.float64)
    g = slice(0, args.grid_poses)
    grid = GridConfig()

    fast_rate, fast = _best_rate(lambda: geometric_search(net, pixels, K, "fast"), args.poses, args.repeats)
    none_rate, _ = _best_rate(lambda: geometric_search(net, pixels, K, "none"), args.poses, args.repeats)
    grid_rate, paper = _best_rate(lambda: geometric_search(net[g], pixels[g], K[g], "grid", grid), args.grid_poses, 1)
    wide = dict(depth_min_mm=500, depth_max_mm=9999)  # covers every sample's depth (the paper's range clips near cameras)
    squared = geometric_search(net[g], pixels[g], K[g], "grid", GridConfig(**wide, loss="squared"))
    paper_wide = geometric_search(net[g], pixels[g], K[g], "grid", GridConfig(**wide))

    print(f"poses: {args.poses} (grid: {args.grid_poses}), one core, float64")
    print(f"fast search (closed form):        {fast_rate:12,.0f} poses/s")
    print(f"grid search (paper, 4400 depths): {grid_rate:12,.0f} poses/s")
    print(f"rigid placement (no search):      {none_rate:12,.0f} poses/s")
    print(f"fast / grid: {fast_rate / grid_rate:,.0f}x")
    print(
        f"root depth over 0.5-10 m, |grid(squared loss) - fast|: max {np.abs(squared.root_depth - fast.root_depth[g]).max():.2f} mm; "
        f"|grid(paper's summed distances) - fast|: median {np.median(np.abs(paper_wide.root_depth - fast.root_depth[g])):.1f} mm"
    )
    print(
        f"reprojection error: fast {reprojection_errors(fast.joints, pixels, K).max():.1e} px, "
        f"grid {reprojection_errors(paper.joints, pixels[g], K[g]).max():.1e} px (max)"
    )


if __name__ == "__main__":
    main()
