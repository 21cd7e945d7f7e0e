"""Splitting the missing frame ids of a run among players, and writing id lists compactly.

Work goes out in units of consecutive ids that never straddle a shard, dealt round-robin, so
each player fills one shard at a time and about `workers` shards are open at once (the store
keeps open shards in memory until they are complete).
"""

from __future__ import annotations

import numpy as np


def split_work(ids: np.ndarray, workers: int, shard_size: int) -> list[np.ndarray]:
    """Divide sorted frame ids among `workers` players (some lists may be empty)."""
    ids = np.asarray(ids, dtype=np.int64)
    if workers < 1:
        raise ValueError("workers must be >= 1")
    if len(ids) == 0:
        return [ids[:0] for _ in range(workers)]
    unit = max(1, min(shard_size, -(-len(ids) // workers)))
    # A new unit starts at each shard boundary and every `unit` ids within a shard.
    shard = ids // shard_size
    new_shard = np.r_[True, shard[1:] != shard[:-1]]
    shard_start = np.maximum.accumulate(np.where(new_shard, np.arange(len(ids)), 0))
    starts = np.flatnonzero(new_shard | ((np.arange(len(ids)) - shard_start) % unit == 0))
    units = np.split(ids, starts[1:])
    out = [[] for _ in range(workers)]
    for i, u in enumerate(units):
        out[i % workers].append(u)
    return [np.concatenate(u) if u else ids[:0] for u in out]


def format_id_ranges(ids: np.ndarray) -> str:
    """Sorted unique ids as "0-99,120,200-299"."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return ""
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts = np.r_[ids[0], ids[breaks + 1]]
    ends = np.r_[ids[breaks], ids[-1]]
    return ",".join(str(s) if s == e else f"{s}-{e}" for s, e in zip(starts.tolist(), ends.tolist()))


def parse_id_ranges(spec: str) -> np.ndarray:
    """"0-99,120,200-299" -> sorted unique int64 ids; ValueError naming the bad item."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        lo, sep, hi = item.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"frame ids: {item!r} is not N or N-M") from None
        if a < 0 or b < a:
            raise ValueError(f"frame ids: {item!r} must be non-negative with N <= M")
        out.append(np.arange(a, b + 1, dtype=np.int64))
    if not out:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(out))
