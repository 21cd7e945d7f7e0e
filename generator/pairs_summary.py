"""What a set of pairs holds, in numbers: counts, camera distances, joints in frame, cameras used.

`summarize_pairs` works on any `Pairs` (memory-mapped ones too: it reads in blocks), and
`SummaryAccumulator` builds the same summary chunk by chunk while pairs are generated, in
constant memory, so the `pairs` command, `make demo` and users print the same summary.
Percentiles come from 1-unit histograms (1 mm, 1 px): nearest rank, exact to the unit.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from .camera import in_image
from .pairs_io import VISIBILITY_OUTSIDE, Pairs, iter_pair_chunks

PERCENTILES = (1, 5, 50, 95, 99)
_BLOCK = 1 << 16  # samples per read of a (memory-mapped) file


class PairsSummary(BaseModel):
    """Summary statistics of a set of pairs."""

    samples: int
    distance_percentiles_mm: dict[str, float]  # camera centre to pelvis, by percentile ("p50", ...)
    focal_percentiles_px: dict[str, float]
    joints_in_frame: float  # fraction of all joints inside the image
    samples_fully_in_frame: float  # fraction of samples with every joint inside
    cameras: dict[str, int]  # samples per camera profile (empty when there is no `camera` key)
    image_sizes: dict[str, int]  # samples per "WxH", most common first
    camera_rejection_rate: float | None = None  # from the generator, when known
    pose_rejection_rate: float | None = None


def _count_strings(values: np.ndarray) -> dict[str, int]:
    """Occurrences of each string in a fixed-width unicode array, fast for millions of rows.

    Sorting strings is slow, so each row's code points are hashed to 64 bits (random odd
    multipliers, wrapping arithmetic) and the hashes are counted; a representative row names
    each hash. A collision between two of the few distinct names here has odds of about 2**-64.
    """
    values = np.ascontiguousarray(values)
    if values.size == 0:
        return {}
    width = values.dtype.itemsize // 4
    codes = values.view(np.uint32).reshape(len(values), width).astype(np.uint64)
    multipliers = np.random.default_rng(0).integers(1, 2**63, width, dtype=np.uint64) | np.uint64(1)
    hashes = (codes * multipliers).sum(axis=1, dtype=np.uint64)
    _, first, counts = np.unique(hashes, return_index=True, return_counts=True)
    return {str(values[i]): int(c) for i, c in zip(first, counts)}


class _Histogram:
    """Counts of non-negative values rounded to whole units, growing as needed."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        bins = np.bincount(np.rint(np.maximum(values, 0)).astype(np.int64))
        if len(bins) > len(self.counts):
            self.counts = np.pad(self.counts, (0, len(bins) - len(self.counts)))
        self.counts[: len(bins)] += bins

    def percentiles(self) -> dict[str, float]:
        total = int(self.counts.sum())
        if total == 0:
            return {}
        cumulative = np.cumsum(self.counts)
        ranks = np.maximum(1, np.ceil(np.array(PERCENTILES) / 100.0 * total))  # nearest rank
        return {f"p{p}": float(np.searchsorted(cumulative, r)) for p, r in zip(PERCENTILES, ranks)}


class SummaryAccumulator:
    """A `PairsSummary` built chunk by chunk (`add`), in constant memory."""

    def __init__(self) -> None:
        self.samples = 0
        self.joints = 0
        self.in_frame_joints = 0
        self.full_samples = 0
        self.distance = _Histogram()
        self.focal = _Histogram()
        self.cameras: Counter[str] = Counter()
        self.sizes: Counter[int] = Counter()

    def add(self, pairs: Pairs) -> None:
        n = len(pairs)
        if n == 0:
            return
        pelvis = np.asarray(pairs.joints_3d[:, 0], dtype=np.float64)
        self.distance.add(np.linalg.norm(pelvis, axis=1))
        self.focal.add(np.asarray(pairs.K_per_sample()[:, 0, 0], dtype=np.float64))
        size = pairs.image_size_per_sample()
        if pairs.visibility is not None:
            inside = np.asarray(pairs.visibility) != VISIBILITY_OUTSIDE
        else:
            inside = in_image(np.asarray(pairs.joints_2d), size, np.asarray(pairs.joints_3d[..., 2]))
        self.samples += n
        self.joints += inside.size
        self.in_frame_joints += int(inside.sum())
        self.full_samples += int(inside.all(axis=1).sum())
        wh = np.asarray(size, dtype=np.int64)
        codes, counts = np.unique(wh[:, 0] << 32 | wh[:, 1], return_counts=True)
        self.sizes.update(dict(zip(codes.tolist(), counts.tolist())))
        if pairs.camera is not None:
            self.cameras.update(_count_strings(pairs.camera))

    def result(self, stats=None) -> PairsSummary:
        """The summary; `stats` (a generator's PairStats) adds the rejection rates."""
        return PairsSummary(
            samples=self.samples,
            distance_percentiles_mm=self.distance.percentiles(),
            focal_percentiles_px=self.focal.percentiles(),
            joints_in_frame=self.in_frame_joints / self.joints if self.joints else 0.0,
            samples_fully_in_frame=self.full_samples / self.samples if self.samples else 0.0,
            cameras=dict(sorted(self.cameras.items())),
            image_sizes={f"{c >> 32}x{c & 0xFFFFFFFF}": k for c, k in sorted(self.sizes.items(), key=lambda kv: -kv[1])},
            camera_rejection_rate=None if stats is None else stats.camera_rejection_rate,
            pose_rejection_rate=None if stats is None else stats.pose_rejection_rate,
        )


def summarize_pairs(pairs: Pairs, stats=None) -> PairsSummary:
    """Summarize `pairs` (read in blocks); `stats` (a generator's PairStats) adds the rejection rates."""
    acc = SummaryAccumulator()
    for chunk in iter_pair_chunks(pairs, _BLOCK):
        acc.add(chunk)
    return acc.result(stats)


def print_summary(console: Console, summary: PairsSummary, title: str = "pairs") -> None:
    """The summary as a rich table."""
    table = Table(title=title, show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("samples", f"{summary.samples:,}")
    d = summary.distance_percentiles_mm
    if d:
        table.add_row("camera distance (m)", "  ".join(f"{k} {v / 1000:.2f}" for k, v in d.items()))
    f = summary.focal_percentiles_px
    if f:
        table.add_row("focal length (px)", "  ".join(f"{k} {v:.0f}" for k, v in f.items()))
    table.add_row("joints in frame", f"{100 * summary.joints_in_frame:.2f} %")
    table.add_row("samples fully in frame", f"{100 * summary.samples_fully_in_frame:.2f} %")
    if summary.camera_rejection_rate is not None:
        table.add_row(
            "rejected",
            f"{100 * summary.camera_rejection_rate:.2f} % of cameras, {100 * (summary.pose_rejection_rate or 0):.2f} % of poses",
        )
    if summary.cameras:
        table.add_row("camera profiles", "  ".join(f"{k} {v:,}" for k, v in summary.cameras.items()))
    if summary.image_sizes:
        table.add_row("image sizes", "  ".join(f"{k} {v:,}" for k, v in list(summary.image_sizes.items())[:6]))
    console.print(table)
