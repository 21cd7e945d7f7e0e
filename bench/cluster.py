"""Scale-out figures: a 2-player run on a local Ray cluster against `--executor local`, shard
writes to S3 (SeaweedFS on 127.0.0.1) against the local disk, and what 10M frames would need.

1. The same generate run (default config: the human body, 256², JPEG + mask) made in this
   process by two local player processes and by two Ray actors on an in-process local cluster,
   alternating, after one small untimed run of each (the cluster's start-up is not timed; actor
   start-up is, as process start-up is locally).
   Prints frames/s of both and the ratio, and checks the two datasets hold the same keypoints.
2. Real shards of that dataset (.tar and .npz bytes) written again and again through the store's
   storage layer: `LocalStorage.write` (temporary name, fsync, rename, folder fsync) against
   `ObjectStorage.write` (one PUT to SeaweedFS). MB/s of each and the ratio.
3. A worked estimate for 10M frames at 256² on N nodes, from the measured bytes per frame and
   per-player rate.

    python bench/cluster.py [--frames 600] [--repeats 3] [--players-per-node 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2, help="generate runs per executor, alternating (best of)")
    parser.add_argument("--repeats", type=int, default=5, help="shard writes: rounds over the shards")
    parser.add_argument("--players-per-node", type=int, default=8, help="the estimate's players on one node")
    parser.add_argument("--body", default="human", choices=["human", "mannequin"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from bridge.generate import load_generate_config, run_generate
    from bridge.players import BuiltinLauncher
    from bridge.ray_executor import run_generate_ray
    from generator.storage import LocalStorage, ObjectStorage
    from generator.store import load_dataset_arrays, read_manifest
    from s3_support import SeaweedS3

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        tmp = Path(tmp)
        os.environ["RAY_TMPDIR"] = str(tmp / "ray")
        (tmp / "ray").mkdir()
        config = load_generate_config(None, {"frames": args.frames, "seed": 1, "workers": 2, "player.scene.body_model": args.body})

        # 1. the same run, local processes vs Ray actors, alternating
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        times: dict[str, list[float]] = {"local": [], "ray": []}
        per: dict[str, dict] = {}
        # One small untimed run of each first: process, shader-cache and Ray worker warm-up are
        # paid once, by neither timed run.
        warm = config.model_copy(update={"frames": 64})
        run_generate(warm, tmp / "warm-local", BuiltinLauncher.from_config(warm, tmp / "warm-local" / ".run"), show_progress=False)
        run_generate_ray(warm, tmp / "warm-ray")
        for round_ in range(args.rounds):
            local = tmp / f"local{round_}"
            t = time.perf_counter()
            s_local = run_generate(config, local, BuiltinLauncher.from_config(config, local / ".run"), show_progress=False)
            times["local"].append(time.perf_counter() - t)
            t = time.perf_counter()
            s_ray = run_generate_ray(config, tmp / f"ray{round_}")
            times["ray"].append(time.perf_counter() - t)
            assert s_local.complete and s_ray.complete
            per = {"local": s_local.frames_per_player, "ray": s_ray.frames_per_player}
        ray.shutdown()
        keys = ("frame_id", "joints_2d", "joints_3d", "image_crc32")
        a, b = load_dataset_arrays(local, keys), load_dataset_arrays(tmp / "ray0", keys)
        same = all(a[k].tobytes() == b[k].tobytes() for k in keys)
        t_local, t_ray = min(times["local"]), min(times["ray"])
        print(f"\n1. {args.frames} frames, 2 players, {config.player.scene.image_size[0]}² {args.body}, JPEG + mask (start-up included), best of {args.rounds}")
        print(f"   --executor local: {t_local:6.1f} s  {args.frames / t_local:6.1f} frames/s   runs {[round(x, 1) for x in times['local']]} s, per player {per['local']}")
        print(f"   --executor ray:   {t_ray:6.1f} s  {args.frames / t_ray:6.1f} frames/s   runs {[round(x, 1) for x in times['ray']]} s, per player {per['ray']}")
        print(f"   ray / local (frames/s): {t_local / t_ray:.2f}; same keypoints and images: {same}")

        # 2. shard writes: local disk vs S3
        manifest = read_manifest(local)
        shard_bytes = sum(r.tar_bytes + (local / f"{r.name}.npz").stat().st_size for r in manifest.shards)
        frame_bytes = shard_bytes / manifest.frames_stored
        blobs = [(f"{r.name}.{ext}", (local / f"{r.name}.{ext}").read_bytes()) for r in manifest.shards for ext in ("npz", "tar")]
        total = sum(len(b) for _, b in blobs) * args.repeats

        def write_all(storage) -> float:
            t = time.perf_counter()
            for round_ in range(args.repeats):
                for name, data in blobs:
                    storage.write(f"r{round_}/{name}", data)
            return time.perf_counter() - t

        t_disk = write_all(LocalStorage(tmp / "disk"))
        with SeaweedS3(tmp / "weed") as s3:
            t_s3 = write_all(ObjectStorage(s3.url("bench"), {"endpoint_url": s3.endpoint, "key": "AK", "secret": "SK"}))
        print(f"\n2. shard writes: {len(blobs) * args.repeats} objects, {total / 1e6:.0f} MB ({len(manifest.shards)} shards' .tar and .npz, {args.repeats} rounds)")
        print(f"   local disk (tmp + fsync + rename): {total / t_disk / 1e6:7.1f} MB/s")
        print(f"   SeaweedFS on 127.0.0.1 (one PUT):  {total / t_s3 / 1e6:7.1f} MB/s   S3 / disk {t_disk / t_s3:.2f}")

        # 3. the estimate
        per_player = args.frames / t_local / 2
        node_fps = per_player * args.players_per_node
        target = 10_000_000
        print(f"\n3. 10M frames at 256²: {frame_bytes / 1e3:.1f} KB/frame stored (tar: JPEG + mask PNG + JSON header; npz: keypoints)")
        print(f"   per player (measured here, built-in on CPU, 2 players on 2 cores): {per_player:.1f} frames/s;"
              f" a node with {args.players_per_node} players: {node_fps:.0f} frames/s")
        print(f"   dataset: {target * frame_bytes / 1e9:.0f} GB; per node: {node_fps * frame_bytes * 3600 / 1e9:.1f} GB/h written"
              f" ({node_fps * frame_bytes * 8 / 1e6:.1f} Mbit/s to storage; player->collector traffic stays in the node)")
        for nodes in (1, 4, 16, 64):
            fps = node_fps * nodes
            print(f"   {nodes:3d} nodes: {fps:8.0f} frames/s, {target / fps / 3600:6.2f} h, {fps * frame_bytes * 3600 / 1e9:7.1f} GB/h into storage")


if __name__ == "__main__":
    main()
