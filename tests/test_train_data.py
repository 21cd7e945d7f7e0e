"""Data sources, weighted mixing and the streaming loader."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from generator.camera import project_points
from generator.pairs_io import Pairs, save_pairs
from train.data import DataSpec, MixedBatches, RowStream, open_source, rows_of, split_batch

from train_support import make_pairs


def _indexed_pairs(n: int, tag: float = 0.0) -> Pairs:
    """Pairs whose joints_2d[i, 0, 0] is i (+ tag), so tests can see which rows came out (one real
    pose 3 m away, its 2D the projection except for that tag)."""
    pose = make_pairs(np.random.default_rng(0), 1).joints_3d[0]
    j3 = np.repeat(pose[None] - pose[0] + [0.0, 0.0, 3000.0], n, axis=0).astype(np.float32)
    K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]], np.float32)
    j2 = project_points(j3, K).astype(np.float32)
    j2[:, 0, 0] = np.arange(n) + tag
    return Pairs(joints_2d=j2, joints_3d=j3, K=K, image_size=np.array([100, 100], np.int32))


def _ids(rows) -> np.ndarray:
    return rows["joints_2d"][:, 0, 0]


def _memory_mapped(a) -> bool:
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def _identity(rows, rng):
    return {"id": _ids(rows)}


def test_data_spec_parsing():
    assert DataSpec.parse("a/b.npz") == DataSpec("a/b.npz", 1.0)
    assert DataSpec.parse("a/b.npz:0.25") == DataSpec("a/b.npz", 0.25)
    assert DataSpec.parse("C:/odd:name.npz") == DataSpec("C:/odd:name.npz", 1.0)  # a non-number tail is path
    with pytest.raises(ValueError, match="weight '-1' must be a positive number"):
        DataSpec.parse("x.npz:-1")
    with pytest.raises(FileNotFoundError, match="no such pairs file or dataset folder"):
        open_source("/nonexistent/file.npz")


def test_split_batch_is_exact_per_batch_and_in_the_long_run():
    w = np.array([0.5, 0.3, 0.2])
    carry = np.zeros(3)
    totals = np.zeros(3, np.int64)
    for _ in range(1000):
        counts = split_batch(7, w, carry)
        assert counts.sum() == 7 and np.all(counts >= np.floor(7 * w))
        totals += counts
    np.testing.assert_allclose(totals / totals.sum(), w, atol=1e-3)


def test_mixed_batches_follow_the_weights(tmp_path):
    a, b = _indexed_pairs(500, 0.0), _indexed_pairs(300, 10_000.0)
    batches = MixedBatches([a, b], [3.0, 1.0], 64, _identity, seed=1)
    for _ in range(20):
        batch = batches.next()
        assert len(batch["id"]) == 64
        assert (batch["source"] == 0).sum() == 48 and (batch["source"] == 1).sum() == 16
        assert np.all((batch["id"] >= 10_000) == (batch["source"] == 1))


def test_stream_visits_every_row_once_per_pass_with_bounded_memory(tmp_path):
    path = save_pairs(tmp_path / "big.npz", _indexed_pairs(10_000))
    source = open_source(path)
    assert _memory_mapped(source.joints_2d)  # streamed from disk, not loaded
    stream = RowStream(source, (0, 0, 0), block_rows=256, buffer_blocks=4)
    seen = np.concatenate([_ids(stream.take(333)) for _ in range(31)])[:10_000]
    assert sorted(seen.tolist()) == list(range(10_000))  # one pass: every row exactly once
    assert len(stream._buffer["joints_2d"]) <= 4 * 256  # never more than the buffer in memory
    assert np.abs(np.diff(seen[:1024])).mean() > 50  # shuffled, not read in order


def test_ranks_read_disjoint_blocks_and_seeds_repeat():
    src = _indexed_pairs(4000)
    r0 = _ids(RowStream(src, (5, 2, 0), rank=0, world=2, block_rows=100, buffer_blocks=5).take(2000))
    r1 = _ids(RowStream(src, (5, 2, 0), rank=1, world=2, block_rows=100, buffer_blocks=5).take(2000))
    assert not set(r0.tolist()) & set(r1.tolist())
    assert len(set(r0.tolist()) | set(r1.tolist())) == 4000
    again = _ids(RowStream(src, (5, 2, 0), rank=0, world=2, block_rows=100, buffer_blocks=5).take(2000))
    np.testing.assert_array_equal(r0, again)
    other_epoch = _ids(RowStream(src, (5, 3, 0), rank=0, world=2, block_rows=100, buffer_blocks=5).take(2000))
    assert not np.array_equal(r0, other_epoch)
    # A source smaller than the number of ranks still feeds every rank.
    tiny = _indexed_pairs(1)
    assert len(_ids(RowStream(tiny, (0,), rank=1, world=2).take(3))) == 3


def test_rows_broadcast_shared_keys(rng, tmp_path):
    pairs = make_pairs(rng, 40, right_baseline_mm=500.0, shared_K=True)
    path = save_pairs(tmp_path / "shared.npz", pairs)
    source = open_source(path)
    assert source.K.shape == (3, 3) and source.baseline_mm.shape == ()
    rows = rows_of(source, np.array([3, 1, 7]))
    assert rows["K"].shape == (3, 3, 3) and rows["baseline_mm"].tolist() == [500.0] * 3
    np.testing.assert_array_equal(rows["joints_2d_right"], pairs.joints_2d_right[[3, 1, 7]])
    assert rows_of(source, slice(38, 50))["K"].shape == (2, 3, 3)


def test_bridge_dataset_folder_is_a_source(rng, tmp_path):
    import io

    from PIL import Image

    from generator.store import DatasetStore

    pairs = make_pairs(rng, 30, right_baseline_mm=500.0)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 120, 200)).save(buf, format="JPEG")
    folder = tmp_path / "dataset"
    with DatasetStore.open(folder, config={"test": 1}, frames=30, shard_size=8) as store:
        for i in range(30):
            shard, row = store.stage(i)
            for key in ("joints_2d", "joints_3d", "K", "image_size", "joints_2d_right"):
                shard.arrays[key][row] = getattr(pairs, key)[i]
            shard.arrays["baseline_mm"][row] = 500.0
            shard.arrays["visibility"][row] = 2
            store.accept(shard, row, b"{}", buf.getvalue(), "jpeg", "s", "q", str(pairs.action[i]))
    source = open_source(folder)
    assert len(source) == 30
    np.testing.assert_array_equal(source.joints_3d, pairs.joints_3d)
    rows = RowStream(source, (0,), block_rows=7).take(30)
    np.testing.assert_array_equal(np.sort(rows["joints_2d"][:, 0, 0]), np.sort(pairs.joints_2d[:, 0, 0]))
    assert rows["joints_2d_right"] is not None and np.all(rows["baseline_mm"] == 500.0)
