"""Collector ingest rate: receive + validate + durably write, on one core.

A sender process (pinned to another core when there is one) pre-builds N distinct valid frames
(a ~2.7 KB header, a ~19 KB 256x256 JPEG and, as the built-in player sends them, a person-mask
PNG each) and pushes them as fast as it can. The timed section runs from the first frame
received to the last shard fsynced and renamed. In the same run, the same sender pushes the same
payloads to a bare pyzmq PULL loop that only receives, and the script prints both rates and their
ratio. --no-masks sends two-part frames (protocol 1.0 style) instead.

    python bench/bridge.py [--frames 30000] [--shard-size 1000] [--no-masks]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.collector import Collector, Expectations  # noqa: E402
from bridge.synthetic import encode_image, synthetic_frame, synthetic_image, synthetic_mask  # noqa: E402
from generator.masks import encode_mask_png  # noqa: E402
from bridge.transport import TransportConfig  # noqa: E402
from generator.store import DatasetStore  # noqa: E402

RUN_ID = "bench"
SEED = 7
SIZE = (256, 256)


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and core < os.cpu_count():
        os.sched_setaffinity(0, {core})


def _sender(endpoint: str, frames: int, masks: bool, ready, go, core: int) -> None:
    _pin(core)
    rng = np.random.default_rng(SEED)
    images = [encode_image(synthetic_image(rng, *SIZE, noise=9.0), "jpeg") for _ in range(8)]
    mask_pngs = [encode_mask_png(synthetic_mask(rng, *SIZE)) if masks else None for _ in range(8)]
    messages = [
        synthetic_frame(rng, run_id=RUN_ID, player_id="bench-0", seq=i, frame_id=i, seed=SEED, image=images[i % 8], image_size=SIZE,
                        mask=mask_pngs[i % 8])
        for i in range(frames)
    ]
    ready.put(tuple(float(np.mean([len(m[k]) if k < len(m) else 0 for m in messages])) for k in range(3)))
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 1000)
    sock.connect(endpoint)
    for _ in range(2):  # once for the collector, once for the bare receiver
        go.get()
        for m in messages:
            sock.send_multipart(m, copy=False)
    sock.close(linger=-1)
    ctx.term()


def bench_collector(sock_endpoint_queue, frames: int, shard_size: int, folder: Path, go) -> float:
    store = DatasetStore.open(folder, {"bench": True}, frames=frames, shard_size=shard_size, run_id=RUN_ID)
    collector = Collector(store, Expectations(run_id=RUN_ID, seed=SEED, frames=frames, image_size=SIZE), TransportConfig(endpoints=["tcp://127.0.0.1:*"]))
    endpoint = collector.bind()[0]
    sock_endpoint_queue.put(endpoint)
    go.put(1)
    while collector.stats.messages == 0:
        collector.poll(1000)
    t0 = time.perf_counter()
    while collector.stats.messages < frames:
        collector.poll(1000)
    store.close()
    elapsed = time.perf_counter() - t0
    collector.close()
    if collector.stats.frames_accepted != frames or not store.complete:
        raise SystemExit(f"ingest lost frames: {collector.stats.frames_accepted}/{frames} accepted, rejects {dict(collector.stats.rejects)}")
    return (frames - 1) / elapsed


def bench_bare(endpoint: str, frames: int, go) -> float:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.PULL)
    sock.setsockopt(zmq.RCVHWM, 1000)
    sock.bind(endpoint)
    go.put(1)
    sock.recv_multipart(copy=False)
    t0 = time.perf_counter()
    for _ in range(frames - 1):
        sock.recv_multipart(copy=False)
    elapsed = time.perf_counter() - t0
    sock.close(linger=0)
    return (frames - 1) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30000)
    ap.add_argument("--shard-size", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=None, help="where the dataset is written (default: a temp folder)")
    ap.add_argument("--no-masks", action="store_true", help="send frames without a person mask")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    _pin(0)
    spawn = mp.get_context("spawn")
    ready, go, endpoints = spawn.Queue(), spawn.Queue(), spawn.Queue()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        # The collector binds first so the sender can connect to its port.
        result: dict[str, float] = {}
        t = threading.Thread(target=lambda: result.setdefault("ingest", bench_collector(endpoints, args.frames, args.shard_size, Path(tmp) / "ds", go)))
        t.start()
        endpoint = endpoints.get()
        sender = spawn.Process(target=_sender, args=(endpoint, args.frames, not args.no_masks, ready, go, 1 % cores))
        sender.start()
        header_bytes, image_bytes, mask_bytes = ready.get()
        t.join()
        bare = bench_bare(endpoint, args.frames, go)  # the collector's socket is closed; rebind its port
        sender.join()
    ingest = result["ingest"]
    masks = f"mask PNG {mask_bytes / 1024:.2f} KB" if mask_bytes else "no masks"
    print(f"frames: {args.frames}, header {header_bytes / 1024:.2f} KB, JPEG {image_bytes / 1024:.1f} KB, {masks}, shards of {args.shard_size}")
    print(f"collector ingest (receive + validate + durable write), 1 core: {ingest:,.0f} frames/s "
          f"({ingest * (header_bytes + image_bytes + mask_bytes) / 1e6:,.0f} MB/s)")
    print(f"bare pyzmq PUSH/PULL, same payloads:                          {bare:,.0f} frames/s")
    print(f"ratio ingest / bare: {ingest / bare:.2f}")


if __name__ == "__main__":
    main()
