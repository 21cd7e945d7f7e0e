"""Cutting the missing frame ids of a run into units, and writing id lists compactly.

Work goes out in small units of consecutive ids that never straddle a shard, in id order, so the
players fill the shards in order and only a few are open at once (the store keeps open shards in
memory until they are complete). Players that lease from a queue (bridge/workqueue.py) take the
units one at a time; players given a fixed list (`split_work`) get them dealt round-robin, so their
shares differ by at most one unit.
"""

from __future__ import annotations

import numpy as np


UNITS_PER_WORKER = 16  # at least this many units per player: the last unit is at most 1/16 of a share
MAX_UNIT = 250  # frames; about a second of a built-in player's work at 256²


def unit_size(n_ids: int, workers: int, shard_size: int) -> int:
    """Frames per unit: small enough that every player gets many, never more than a shard."""
    return max(1, min(shard_size, MAX_UNIT, -(-n_ids // (max(1, workers) * UNITS_PER_WORKER))))


def split_units(ids: np.ndarray, unit: int, shard_size: int) -> list[np.ndarray]:
    """Sorted ids cut into runs of at most `unit` ids, a new run at every shard boundary."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    shard = ids // shard_size
    new_shard = np.r_[True, shard[1:] != shard[:-1]]
    shard_start = np.maximum.accumulate(np.where(new_shard, np.arange(len(ids)), 0))
    starts = np.flatnonzero(new_shard | ((np.arange(len(ids)) - shard_start) % unit == 0))
    return np.split(ids, starts[1:])


def split_work(ids: np.ndarray, workers: int, shard_size: int) -> list[np.ndarray]:
    """Divide sorted frame ids among `workers` players with fixed lists (some may be empty): small
    units dealt round-robin, so the shares differ by at most one unit."""
    ids = np.asarray(ids, dtype=np.int64)
    if workers < 1:
        raise ValueError("workers must be >= 1")
    out: list[list[np.ndarray]] = [[] for _ in range(workers)]
    for i, u in enumerate(split_units(ids, unit_size(len(ids), workers, shard_size), shard_size)):
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
