"""Training data: sources (pairs files, Bridge dataset folders), weighted mixing and streaming.

`--data PATH[:WEIGHT]` names a source (or `synthetic:SOURCE[:WEIGHT]`, pairs made on the fly,
train/synthetic.py); every batch holds rows of each source in proportion to the
weights (each batch exactly, up to rounding that is carried over to later batches). Sources are
memory-mapped and streamed: a source is cut into contiguous blocks, the blocks are visited in a
random order, and rows are shuffled within a buffer of a few blocks, so memory stays at a few
blocks per source however large the files are. Under DDP each rank reads a disjoint share of the
blocks. Everything is seeded by (seed, epoch, source, rank), so an epoch is reproducible on its own
and training can resume at any epoch boundary bit for bit. A synthetic source has no rows to
share: each rank gets its own generated stream, seeded by the same four numbers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from generator.pairs_io import Pairs, load_pairs
from generator.store import MANIFEST_NAME, load_dataset_pairs

from generator.storage import is_remote

from .synthetic import SyntheticSource, SyntheticSpec, is_synthetic

# Arrays a training batch needs from a source (the optional ones may be absent).
ROW_KEYS = ("joints_2d", "joints_3d", "K", "joints_2d_right", "baseline_mm")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """One `--data` argument: a source (a path, or `synthetic:...`) and its mixing weight."""

    path: str
    weight: float = 1.0

    @staticmethod
    def parse(text: str) -> "DataSpec":
        """`PATH` or `PATH:WEIGHT` (the weight a positive number)."""
        head, sep, tail = str(text).rpartition(":")
        if sep and head:
            try:
                weight = float(tail)
            except ValueError:
                return DataSpec(str(text))
            if not math.isfinite(weight) or weight <= 0:
                raise ValueError(f"--data {text!r}: the weight {tail!r} must be a positive number")
            return DataSpec(head, weight)
        return DataSpec(str(text))

    def __str__(self) -> str:
        return f"{self.path}:{self.weight:g}"


Source = Pairs | SyntheticSource


def open_source(path: str | Path, allow_empty: bool = False, seed: int = 0) -> Source:
    """A source's pairs, memory-mapped: a pairs v1 `.npz`, or a Bridge dataset folder (with the
    manifest.json `posebridge generate` writes); or a `synthetic:` generator (its pose bank drawn
    with `seed` when it is the prior). A source without rows is an error unless allowed."""
    if is_synthetic(str(path)):
        return SyntheticSource(SyntheticSpec.parse(str(path)), seed)
    if is_remote(path):  # a dataset folder on object storage (s3://bucket/prefix), read into memory
        pairs = load_dataset_pairs(str(path))
        if len(pairs) == 0 and not allow_empty:
            raise ValueError(f"{path}: holds no pairs (0 rows); nothing to train or evaluate on")
        return pairs
    path = Path(path)
    if path.is_dir():
        if not (path / MANIFEST_NAME).is_file():
            raise FileNotFoundError(
                f"{path}: a folder without {MANIFEST_NAME}; give a pairs .npz file (`posebridge pairs`, "
                f"`posebridge export`) or a dataset folder made by `posebridge generate`"
            )
        pairs = load_dataset_pairs(path, mmap=True)
    elif path.is_file():
        pairs = load_pairs(path, mmap=True)
    else:
        raise FileNotFoundError(f"{path}: no such pairs file or dataset folder")
    if len(pairs) == 0 and not allow_empty:
        raise ValueError(f"{path}: holds no pairs (0 rows); nothing to train or evaluate on")
    return pairs


def source_rows(source: Source) -> int | None:
    """Rows of one pass over a source; None for a synthetic one (endless)."""
    return None if isinstance(source, SyntheticSource) else len(source)


def make_stream(source: Source, seed: tuple[int, ...], rank: int, world: int, block_rows: int, buffer_blocks: int):
    """The source's stream for one rank: a RowStream over its rows, or a new synthetic stream."""
    if isinstance(source, SyntheticSource):
        return source.stream(seed, rank)
    return RowStream(source, seed, rank, world, block_rows, buffer_blocks)


def rows_of(pairs: Pairs, index) -> dict[str, np.ndarray | None]:
    """The training keys of `pairs` at `index` (a slice or integer array), loaded, K and baseline per row."""
    baseline = pairs.baseline_per_sample()
    return {
        "joints_2d": np.asarray(pairs.joints_2d[index]),
        "joints_3d": np.asarray(pairs.joints_3d[index]),
        "K": np.array(pairs.K_per_sample()[index]),
        "joints_2d_right": None if pairs.joints_2d_right is None else np.asarray(pairs.joints_2d_right[index]),
        "baseline_mm": None if baseline is None else np.array(baseline[index]),
    }


def concat_rows(parts: list[dict[str, np.ndarray | None]]) -> dict[str, np.ndarray | None]:
    """Concatenate dicts of arrays with the same keys (a key that is None in the first stays None)."""
    return {k: None if parts[0][k] is None else np.concatenate([p[k] for p in parts]) for k in parts[0]}


class RowStream:
    """An endless, shuffled stream of one source's rows for one rank.

    Blocks of `block_rows` contiguous rows are dealt to the ranks (block i of a pass to rank
    i mod world) in an order shuffled with a rank-independent generator, so ranks never share a
    block; a buffer of `buffer_blocks` blocks is read contiguously and served in shuffled order.
    """

    def __init__(
        self,
        pairs: Pairs,
        seed: tuple[int, ...],
        rank: int = 0,
        world: int = 1,
        block_rows: int = 4096,
        buffer_blocks: int = 8,
    ):
        if len(pairs) == 0:
            raise ValueError("a data source has no rows")
        self.pairs = pairs
        self.rank, self.world = rank, world
        # Every rank gets at least one block, even for a tiny source.
        self.block_rows = max(1, min(block_rows, -(-len(pairs) // world)))
        self.n_blocks = -(-len(pairs) // self.block_rows)
        self.buffer_blocks = buffer_blocks
        self._order_rng = np.random.default_rng(list(seed))  # the same on every rank
        self._row_rng = np.random.default_rng(list(seed) + [rank, 1])
        self._my_blocks: list[int] = []
        self._buffer: dict[str, np.ndarray | None] | None = None
        self._pos = 0

    def _next_blocks(self) -> list[int]:
        """Up to `buffer_blocks` blocks of the current pass (a new pass starts when it is used up)."""
        if not self._my_blocks:
            order = self._order_rng.permutation(self.n_blocks)
            mine = order[self.rank :: self.world] if self.n_blocks >= self.world else order
            self._my_blocks = [int(b) for b in mine]
        taken, self._my_blocks = self._my_blocks[: self.buffer_blocks], self._my_blocks[self.buffer_blocks :]
        return taken

    def _refill(self) -> None:
        parts = [rows_of(self.pairs, slice(b * self.block_rows, (b + 1) * self.block_rows)) for b in self._next_blocks()]
        merged = concat_rows(parts)
        perm = self._row_rng.permutation(len(merged["joints_2d"]))
        self._buffer = {k: None if v is None else v[perm] for k, v in merged.items()}
        self._pos = 0

    def take(self, n: int) -> dict[str, np.ndarray | None]:
        """The next `n` rows."""
        parts = []
        while n > 0:
            if self._buffer is None or self._pos >= len(self._buffer["joints_2d"]):
                self._refill()
            size = len(self._buffer["joints_2d"])
            k = min(n, size - self._pos)
            sl = slice(self._pos, self._pos + k)
            parts.append({key: None if v is None else v[sl] for key, v in self._buffer.items()})
            self._pos += k
            n -= k
        return concat_rows(parts)


def split_batch(batch_size: int, weights: np.ndarray, carry: np.ndarray) -> np.ndarray:
    """Rows per source for one batch: floor(B·w) each, the rest to the sources owed most so far.

    `carry` (the fractional rows each source is owed) is updated in place, so over many batches
    every source gets exactly its share, and every batch sums to `batch_size`.
    """
    exact = batch_size * weights
    counts = np.floor(exact).astype(np.int64)
    carry += exact - counts
    rest = batch_size - int(counts.sum())
    if rest > 0:
        owed = np.argsort(-carry, kind="stable")[:rest]
        counts[owed] += 1
        carry[owed] -= 1.0
    return counts


class MixedBatches:
    """Batches drawn from several sources in proportion to their weights (one epoch's stream).

    `transform(rows, rng)` turns one source's rows into a dict of arrays (features); the batch is
    their concatenation, with `source` (int, per row) added.
    """

    def __init__(
        self,
        sources: list[Source],
        weights: list[float],
        batch_size: int,
        transform: Callable[[dict, np.random.Generator], dict[str, np.ndarray]],
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world: int = 1,
        block_rows: int = 4096,
        buffer_blocks: int = 8,
    ):
        if len(sources) != len(weights) or not sources:
            raise ValueError("give one weight per data source, and at least one source")
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.batch_size = batch_size
        self.transform = transform
        self.streams = [make_stream(p, (seed, epoch, i), rank, world, block_rows, buffer_blocks) for i, p in enumerate(sources)]
        self._carry = np.zeros(len(sources))
        self._rng = np.random.default_rng([seed, epoch, rank, 2])

    def next(self) -> dict[str, np.ndarray]:
        counts = split_batch(self.batch_size, self.weights, self._carry)
        parts = []
        for i, (stream, k) in enumerate(zip(self.streams, counts)):
            if k == 0:
                continue
            feats = self.transform(stream.take(int(k)), self._rng)
            feats["source"] = np.full(int(k), i, dtype=np.int64)
            parts.append(feats)
        return concat_rows(parts)
