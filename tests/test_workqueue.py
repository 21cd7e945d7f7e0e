"""Balanced work: frame ids in small units from a queue, leased by the players over ZeroMQ; counts
per player come from the collector's records, the output is the same as with fixed lists."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from bridge.generate import load_generate_config, run_generate
from bridge.players import BuiltinLauncher
from bridge.workplan import split_units, split_work, unit_size
from bridge.workqueue import WorkQueue, WorkServer, lease_units
from generator.store import load_dataset_arrays

KEYS = ("frame_id", "joints_2d", "joints_3d", "joints_3d_world", "visibility", "K", "R", "t")


def test_units_stay_inside_shards_and_fixed_lists_are_balanced():
    ids = np.arange(3000)
    assert unit_size(3000, 2, 1000) == 94  # 16+ units per player
    units = split_units(ids, 94, 1000)
    assert all(len(u) <= 94 and len(set((u // 1000).tolist())) == 1 for u in units)
    np.testing.assert_array_equal(np.concatenate(units), ids)
    # The 2000/1000 split of whole shards is gone: shares differ by at most one unit.
    shares = split_work(ids, 2, 1000)
    assert sorted(len(s) for s in shares) == [1470, 1530] and abs(len(shares[0]) - len(shares[1])) <= 94
    assert np.array_equal(np.sort(np.concatenate(shares)), ids)
    # Gappy ids (a resumed run) too, and a tiny run gives every player something.
    gappy = np.r_[5:17, 40:41, 100:160]
    assert np.array_equal(np.sort(np.concatenate(split_work(gappy, 3, 16))), gappy)
    assert [len(s) for s in split_work(np.arange(3), 3, 1000)] == [1, 1, 1]


def test_queue_leases_in_order_and_takes_back_what_a_dead_player_left():
    q = WorkQueue(np.arange(100), workers=2, shard_size=40, unit=15)
    a, b = q.take("a"), q.take("b")
    np.testing.assert_array_equal(a, np.arange(15))
    np.testing.assert_array_equal(b, np.arange(15, 30))
    c = q.take("a")
    np.testing.assert_array_equal(c, np.arange(30, 40))  # cut at the shard boundary
    np.testing.assert_array_equal(q.leased("a"), np.r_[0:15, 30:40])
    q.give_back(np.r_[20:30])  # b died after 5 frames: the rest is next in line, for anyone
    np.testing.assert_array_equal(q.take("a"), np.arange(20, 30))
    rest = []
    while (u := q.take("c")) is not None:
        rest.append(u)
    np.testing.assert_array_equal(np.concatenate(rest), np.arange(40, 100))
    assert q.take("a") is None and q.remaining() == 0


def test_players_lease_over_zeromq_until_the_queue_is_empty():
    q = WorkQueue(np.arange(50), workers=2, shard_size=100, unit=7)
    server = WorkServer(q, "run-1")
    try:
        got: dict[str, list] = {"p0": [], "p1": []}

        def player(name: str) -> None:
            for unit in lease_units(server.endpoint, "run-1", name, timeout_s=10):
                got[name].append(unit)

        threads = [threading.Thread(target=player, args=(n,)) for n in got]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        leased = np.sort(np.concatenate([u for units in got.values() for u in units]))
        np.testing.assert_array_equal(leased, np.arange(50))  # every id once, nothing twice
        for name, units in got.items():
            np.testing.assert_array_equal(q.leased(name), np.sort(np.concatenate(units)) if units else np.zeros(0))
        assert list(lease_units(server.endpoint, "another-run", "p2", timeout_s=10)) == []  # refused, not served
    finally:
        server.close()


class FixedListLauncher(BuiltinLauncher):
    """The built-in players, each given a fixed list of ids (the path of kinds that cannot lease)."""

    leases_work = False


RUN = {"frames": 3000, "seed": 4, "workers": 2, "player.scene.image_size": [32, 32], "player.scene.body_model": "mannequin", "player.mask": False}


@pytest.mark.timeout(240)
def test_two_players_share_3000_frames_evenly_and_the_output_is_unchanged(tmp_path):
    config = load_generate_config(None, RUN)
    assert config.shard_size == 1000  # the case that used to split 2000 / 1000
    out = tmp_path / "queue"
    summary = run_generate(config, out, BuiltinLauncher.from_config(config, tmp_path / "run-q"), show_progress=False)
    assert summary.complete and summary.frames_stored == 3000 and summary.players_restarted == 0
    counts = summary.frames_per_player  # from the collector's records
    assert sorted(counts) == ["w0.0", "w1.0"] and sum(counts.values()) == 3000 and min(counts.values()) >= 94
    # Both finish within 10 % of each other: once the first player found the queue empty and ended,
    # the other had about the unit it was rendering left (94 frames, 3 % of the run; whole shards of
    # 1000 split 2000 / 1000 left it a third). Counted in frames, in the collector's order of
    # arrival, so a loaded machine or a slow start changes who renders more, not this bound.
    assert summary.frames_after_first_end <= 0.1 * 3000, (summary.frames_after_first_end, counts)

    print("frames per player", counts, "frames after the first end", summary.frames_after_first_end)

    # Fixed lists (kinds that cannot lease) give the same frames: the first shard, bytes compared.
    fixed = tmp_path / "fixed"
    config = load_generate_config(None, {**RUN, "frames": 1000})
    summary = run_generate(config, fixed, FixedListLauncher.from_config(config, tmp_path / "run-f"), show_progress=False)
    assert summary.complete and sorted(summary.frames_per_player.values()) == [488, 512]
    a, b = load_dataset_arrays(out, KEYS), load_dataset_arrays(fixed, KEYS)
    for key in KEYS:
        assert a[key][:1000].tobytes() == b[key].tobytes(), key  # the same frames, the same keypoint bytes
