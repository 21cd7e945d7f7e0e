"""`generate --executor ray` and `train` under Ray Train, on one in-process local Ray cluster shared
by the module (2 CPUs): the same dataset as the local executor, a killed actor's work reassigned,
an interrupted run resumed with exact counts, and a TorchTrainer run that is the torchrun run."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torch

from bridge.dataset_report import verify_dataset
from bridge.generate import load_generate_config, run_generate
from bridge.players import BuiltinLauncher
from bridge.ray_executor import run_generate_ray
from generator.store import load_dataset_arrays, read_manifest

RUN = {"frames": 96, "seed": 4, "workers": 2, "shard_size": 16, "player.scene.image_size": [32, 32], "player.scene.body_model": "mannequin"}
KEYS = ("frame_id", "joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right", "visibility", "K", "R", "t", "image_crc32", "mask_crc32", "mask_pixels")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """One local cluster for the module (start-up ~7 s): its files under pytest's tmp, no token auth."""
    import ray

    os.environ["RAY_TMPDIR"] = str(tmp_path_factory.mktemp("ray"))
    os.environ["RAY_AUTH_MODE"] = "disabled"
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="posebridge", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "ds"
    config = load_generate_config(None, RUN)
    summary = run_generate(config, out, BuiltinLauncher.from_config(config, out / ".run"), show_progress=False)
    assert summary.complete
    return load_dataset_arrays(out, KEYS)


def _assert_same(a: dict, b: dict) -> None:
    for key in KEYS:
        assert a[key].tobytes() == b[key].tobytes(), key


@pytest.mark.timeout(240)
def test_two_ray_actors_make_the_dataset_the_local_executor_makes(ray_cluster, local_reference, tmp_path):
    out = tmp_path / "ray"
    summary = run_generate_ray(load_generate_config(None, RUN), out)
    assert summary.complete and summary.frames_stored == 96 and summary.collectors == 1 and summary.players_restarted == 0
    assert sorted(summary.frames_per_player) == ["r0.0", "r1.0"] and sum(summary.frames_per_player.values()) == 96
    _assert_same(load_dataset_arrays(out, KEYS), local_reference)
    assert verify_dataset(out) == (96, [])
    assert run_generate_ray(load_generate_config(None, RUN), out).players_started == 0  # nothing left: no actor started


@pytest.mark.timeout(240)
def test_ray_collectors_write_straight_to_s3(ray_cluster, local_reference, tmp_path, monkeypatch):
    from s3_support import SeaweedS3

    with SeaweedS3(tmp_path / "weed") as s3:
        for k, v in s3.env.items():
            monkeypatch.setenv(k, v)  # the driver passes the AWS variables on to the actors
        url = s3.url("ray/ds")
        summary = run_generate_ray(load_generate_config(None, RUN), url)
        assert summary.complete and summary.frames_stored == 96 and summary.collectors == 1
        manifest = read_manifest(url)
        assert len(manifest.shards) == 6 and [r.status for r in manifest.runs] == ["complete"]
        _assert_same(load_dataset_arrays(url, KEYS), local_reference)


@pytest.mark.timeout(300)
def test_a_killed_actor_is_replaced_and_an_interrupted_run_resumes_with_exact_counts(ray_cluster, local_reference, tmp_path):
    ray = ray_cluster
    out = tmp_path / "ray"
    config = load_generate_config(None, RUN)
    killed = {}

    def kill_when_rendering(state) -> None:
        """Kill slot 0's actor once frames of the unit it renders reach the collector."""

        def watch() -> None:
            slot = state["slots"][0]
            collector = next(iter(state["collectors"].values()))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                unit = slot.unit
                if unit is not None and any(ray.get(collector.received.remote(unit.tolist()))):
                    killed["unit"] = unit
                    ray.kill(slot.actor, no_restart=True)
                    return
                time.sleep(0.005)

        threading.Thread(target=watch, daemon=True).start()

    summary = run_generate_ray(config, out, on_start=kill_when_rendering)
    assert "unit" in killed, "slot 0 was never caught rendering"
    assert summary.players_restarted >= 1 and "r0.1" in summary.frames_per_player
    assert summary.complete and summary.frames_stored == 96
    assert sum(summary.frames_per_player.values()) == 96 + summary.rejects.get("duplicate", 0)
    _assert_same(load_dataset_arrays(out, KEYS), local_reference)

    # A run stopped part-way (the driver interrupted after its first shards) leaves whole shards;
    # the rerun renders exactly the rest.
    out = tmp_path / "stopped"

    def interrupt_after_two_shards(state) -> None:
        """Stop handing out work once 32 frames are out, wait for the first two shards to commit,
        then interrupt. The leases are taken in the driver's main thread, so the interrupt lands
        there, before the run can finish, however fast the players are."""
        queue, collector = state["queue"], next(iter(state["collectors"].values()))
        take, handed = queue.take, [0]

        def gated_take(node):
            if handed[0] >= 32:
                deadline = time.monotonic() + 60
                while ray.get(collector.status.remote())["committed_new"] < 32 and time.monotonic() < deadline:
                    time.sleep(0.01)
                raise KeyboardInterrupt
            unit = take(node)
            handed[0] += 0 if unit is None else len(unit)
            return unit

        queue.take = gated_take

    first = run_generate_ray(config, out, on_start=interrupt_after_two_shards)
    assert not first.complete and 32 <= first.frames_stored < 96 and first.frames_stored % 16 == 0
    second = run_generate_ray(config, out)
    assert second.frames_before == first.frames_stored and second.complete and second.frames_stored == 96
    ids = load_dataset_arrays(out, ("frame_id",))["frame_id"]
    assert ids.tolist() == list(range(96))  # exact: every frame once
    _assert_same(load_dataset_arrays(out, KEYS), local_reference)
    assert [r.status for r in read_manifest(out).runs] == ["stopped", "complete"]
    assert verify_dataset(out) == (96, [])


@pytest.mark.timeout(240)
def test_a_lost_collector_loses_only_its_open_shards(ray_cluster, local_reference, tmp_path):
    """The node's collector dies mid-run (as with a lost node): what it committed stays, its open
    shards are rendered again through a new collector, and the dataset is the same, exactly."""
    ray = ray_cluster
    out = tmp_path / "ray"
    killed = {}

    def kill_collector(state) -> None:
        def watch() -> None:
            node, collector = next(iter(state["collectors"].items()))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                st = ray.get(collector.status.remote())
                if st["committed_new"] >= 16 and st["received"] > st["committed"]:  # a shard stored, another open
                    killed["status"] = st
                    ray.kill(collector, no_restart=True)
                    return
                time.sleep(0.005)

        threading.Thread(target=watch, daemon=True).start()

    summary = run_generate_ray(load_generate_config(None, RUN), out, on_start=kill_collector)
    assert "status" in killed, "the collector was never caught with an open shard"
    assert summary.complete and summary.frames_stored == 96 and summary.players_restarted >= 2  # both players were on that node
    assert load_dataset_arrays(out, ("frame_id",))["frame_id"].tolist() == list(range(96))
    _assert_same(load_dataset_arrays(out, KEYS), local_reference)
    assert verify_dataset(out) == (96, [])


@pytest.mark.timeout(300)
def test_ray_train_trains_the_model_torchrun_trains(ray_cluster, tmp_path):
    """The same config under TorchTrainer (2 gloo workers) and under 2 torchrun-style ranks: the
    same checkpoint, bit for bit (one code path: each worker runs train_run)."""
    import torch.multiprocessing as mp

    from generator.pairs_io import save_pairs
    from train.checkpoint import load_checkpoint
    from train.config import TrainConfig
    from train.ray_train import train_on_ray
    from train_support import ddp_rank, free_port, make_pairs

    save_pairs(tmp_path / "a.npz", make_pairs(np.random.default_rng(11), 400, right_baseline_mm=500.0))
    cfg = TrainConfig(data=[f"{tmp_path}/a.npz:0.75", "synthetic:prior?prior_size=500:0.25"], model="stereo",
                      net={"width": 32, "blocks": 1, "dropout": 0.0}, epochs=2, steps_per_epoch=3, batch_size=64,
                      block_rows=50, buffer_blocks=2, threads=1, stats_samples=400)  # fmt: skip
    metrics = train_on_ray(cfg, tmp_path / "ray-run", 2)
    assert metrics["world_size"] == 2 and metrics["steps"] == 6
    states = tmp_path / "states"
    states.mkdir()
    mp.spawn(ddp_rank, args=(2, free_port(), cfg.model_dump_json(), str(tmp_path / "ddp-run"), str(states)), nprocs=2, join=True)
    ray_state, ddp_state = load_checkpoint(tmp_path / "ray-run").model_state, load_checkpoint(tmp_path / "ddp-run").model_state
    assert ray_state.keys() == ddp_state.keys()
    for k in ray_state:
        assert torch.equal(ray_state[k], ddp_state[k]), k
