"""Why frames go over ZeroMQ: the same 256x256 JPEG frames through an ML-Agents side channel and
through posebridge's ZeroMQ path, in one run.

A sender process builds distinct protocol frames (`[header, image]`, a ~2.5 KB header and a ~20 KB
256x256 JPEG each, bridge.synthetic) and sends them twice:

1. as the Unity side of the ML-Agents communicator (bridge.mlagents_peer.UnityPeer), one frame per
   step as a side-channel record, to `mlagents_envs.UnityEnvironment` with a RawBytesChannel that
   steps until it has every frame (how images travel when a side channel carries them, ML-Agents
   #5085);
2. over bridge.transport: PlayerChannel (PUSH, back-pressure) to PullServer (PULL), the path the
   players use.

Each rate is timed from the first frame received to the last; the script prints both and the ratio.

    python bench/control.py [--frames 1500] [--zmq-frames 20000]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZE = (256, 256)
DISTINCT = 200
BENCH_CHANNEL = uuid.UUID("3c0e5f0a-8f57-4b8e-9a53-6a1d2e0b7c11")


def make_frames(n: int) -> list[list[bytes]]:
    """`n` distinct valid frames around distinct JPEGs (seeded, so both paths send the same bytes)."""
    from bridge.synthetic import encode_image, synthetic_frame, synthetic_image

    rng = np.random.default_rng(3)
    frames = []
    for i in range(n):
        image = encode_image(synthetic_image(rng, *SIZE), "jpeg")
        frames.append(synthetic_frame(rng, run_id="bench", player_id="p", seq=i, frame_id=i, seed=3, image=image, image_size=SIZE))
    return frames


def side_channel_sender(port: int, count: int) -> None:
    """The player side: handshake, then one frame per exchange until the launcher closes."""
    from bridge.mlagents_peer import UnityPeer

    frames = make_frames(DISTINCT)
    peer = UnityPeer(port)
    peer.handshake(60)
    for i in range(count):
        header, image = frames[i % DISTINCT]
        payload = len(header).to_bytes(4, "little") + header + image
        if peer.exchange([(BENCH_CHANNEL, payload)]) is None:
            return
    while peer.exchange([]) is not None:  # idle until Python closes
        pass
    peer.close()


def zmq_sender(endpoint: str, count: int) -> None:
    from bridge.transport import PlayerChannel

    frames = make_frames(DISTINCT)
    channel = PlayerChannel(endpoint, "bench", "p")
    try:
        for i in range(count):
            channel.send(frames[i % DISTINCT])
    finally:
        channel.close()


def _timed_rate(receive: Callable[[], list[int]], count: int) -> tuple[float, float]:
    """(frames/s, MB/s) of `count` frames; `receive()` waits for the next batch and gives each frame's size."""
    received = nbytes = 0
    t0 = None
    while received < count:
        for size in receive():
            if t0 is None:
                t0 = time.perf_counter()
            received += 1
            nbytes += size
    elapsed = time.perf_counter() - t0
    # The first frame starts the clock, so count-1 frames fill the timed interval.
    return (received - 1) / elapsed, nbytes / elapsed / 1e6


def _reap(sender: mp.Process) -> None:
    sender.join(timeout=10)
    if sender.is_alive():
        sender.kill()


def bench_side_channel(count: int) -> tuple[float, float]:
    """(frames/s, MB/s) of frames carried in ML-Agents side-channel messages."""
    from mlagents_envs.environment import UnityEnvironment
    from mlagents_envs.side_channel.raw_bytes_channel import RawBytesChannel

    from bridge.launcher import free_port

    port = free_port()
    channel = RawBytesChannel(BENCH_CHANNEL)
    sender = mp.get_context("spawn").Process(target=side_channel_sender, args=(port, count), daemon=True)
    sender.start()
    env = UnityEnvironment(file_name=None, base_port=port, side_channels=[channel], timeout_wait=60)

    def receive() -> list[int]:
        env.step()
        return [len(msg) for msg in channel.get_and_clear_received_messages()]

    try:
        env.reset()
        return _timed_rate(receive, count)
    finally:
        env.close()
        _reap(sender)


def bench_zmq(count: int) -> tuple[float, float]:
    """(frames/s, MB/s) of the same frames over PlayerChannel -> PullServer."""
    from bridge.transport import PullServer, TransportConfig

    server = PullServer(TransportConfig())
    sender = mp.get_context("spawn").Process(target=zmq_sender, args=(server.connect_endpoints()[0], count), daemon=True)
    sender.start()

    def receive() -> list[int]:
        return [sum(len(p.buffer) for p in server.socket.recv_multipart(copy=False))]

    try:
        return _timed_rate(receive, count)
    finally:
        server.close()
        _reap(sender)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1500, help="frames through the side channel")
    ap.add_argument("--zmq-frames", type=int, default=20000, help="frames through ZeroMQ (it is much faster)")
    args = ap.parse_args(argv)
    frames = make_frames(DISTINCT)
    size = np.mean([len(h) + len(i) for h, i in frames]) / 1024
    print(f"frames: {DISTINCT} distinct 256x256 JPEG protocol frames, {size:.1f} KiB on average (header + image)")
    sc_fps, sc_mbs = bench_side_channel(args.frames)
    print(f"ML-Agents side channel (1 frame per step): {sc_fps:9.1f} frames/s  {sc_mbs:7.1f} MB/s  ({args.frames} frames)")
    zmq_fps, zmq_mbs = bench_zmq(args.zmq_frames)
    print(f"ZeroMQ PUSH/PULL (bridge.transport):        {zmq_fps:9.1f} frames/s  {zmq_mbs:7.1f} MB/s  ({args.zmq_frames} frames)")
    print(f"ratio ZeroMQ / side channel: {zmq_fps / sc_fps:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
