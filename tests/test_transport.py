"""ZeroMQ transport over real sockets and processes: back-pressure, limits, CURVE, shutdown."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zmq
from click.testing import CliRunner
from zmq.utils.monitor import recv_monitor_message

from bridge.protocol import Capabilities, EndOfStream, Hello, encode_message
from bridge.transport import CurveConfig, PlayerChannel, SendTimeout, TransportConfig, generate_keys, local_endpoint
from posebridge import main as cli_main

from bridge_support import RUN_ID, SEED, frame_fields, frame_message, image_bytes, open_collector

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def _sender(endpoint: str, frame_ids: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge.synthetic", "--endpoint", endpoint, "--run-id", RUN_ID, "--player-id", "s0",
         "--seed", str(SEED), "--frame-ids", frame_ids, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _poll_until(collector, condition, timeout_s: float = 60) -> None:
    """Poll the collector until `condition()` holds; fail (naming it) after a generous `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s: {condition.__doc__ or condition}"
        collector.poll(timeout_ms=50)


def _await_socket_event(monitor: zmq.Socket, event: int, timeout_s: float = 60) -> None:
    """Read a socket monitor until `event` happens (events before it are passed over)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert time.monotonic() < deadline, f"socket event {zmq.Event(event).name} did not happen within {timeout_s} s"
        if monitor.poll(100) and recv_monitor_message(monitor)["event"] == event:
            return


@pytest.mark.timeout(240)
def test_a_paused_collector_applies_back_pressure_and_loses_nothing(tmp_path, rng):
    frames = 1500
    size = (128, 128)
    transport = TransportConfig(receive_hwm=20)
    collector = open_collector(tmp_path / "ds", frames=frames, shard_size=500, transport=transport, image_size=size)
    endpoint = collector.bind()[0]
    fields, img = frame_fields(rng, size), image_bytes(rng, size=size)
    # The player: a real PUSH socket in a thread. A SendTimeout (no progress for send_timeout_s)
    # is the event "blocked by back-pressure"; the player then goes on trying the same message.
    channel = PlayerChannel(endpoint, RUN_ID, "s0", send_timeout_s=0.5)
    blocked = threading.Event()
    queued = [0]  # frames handed to the socket
    blocked_after: list[int] = []

    def send(parts) -> None:
        while True:
            try:
                return channel.send(parts)
            except SendTimeout:
                if not blocked.is_set():
                    blocked_after.append(queued[0])
                    blocked.set()

    def play() -> None:
        caps = Capabilities(encodings=["jpeg"], visibility="none", right_view=True, max_image_size=size)
        send([encode_message(Hello.build(run_id=RUN_ID, player_id="s0", seq=channel.take_seq(), player_kind="builtin", versions={}, capabilities=caps,
                                         frames_planned=frames, pid=0, host="test"))])
        for i in range(frames):
            send(frame_message(fields, img, frame_id=i, seq=channel.take_seq(), player_id="s0"))
            queued[0] += 1
        send([encode_message(EndOfStream.build(run_id=RUN_ID, player_id="s0", seq=channel.take_seq(), frames_sent=frames))])

    player = threading.Thread(target=play, daemon=True)
    player.start()
    try:
        # Take the hello, then stop reading: the player must block with frames left, not drop them.
        _poll_until(collector, lambda: collector.stats.messages > 0)
        deadline = time.monotonic() + 120
        while not blocked.wait(0.1):
            assert player.is_alive(), "the player finished while nobody was reading: messages were buffered or dropped"
            assert time.monotonic() < deadline, "the player neither blocked nor finished"
        assert player.is_alive() and blocked_after[0] < frames, "the player blocked only after queueing every frame"
        log.info("the player blocked after queueing %d of %d frames", blocked_after[0], frames)
        _poll_until(collector, lambda: collector.stats.frames_accepted == frames and "s0" in collector.players and collector.players["s0"].ended, 120)
        player.join(60)
        assert not player.is_alive()
    finally:
        channel.close(linger_ms=0)
        collector.close()
        collector.store.close()
    assert collector.stats.frames_accepted == frames and collector.stats.rejected == 0
    assert collector.stats.gaps == 0 and collector.players["s0"].frames_sent == frames
    assert collector.store.complete


@pytest.mark.timeout(120)
def test_oversized_messages_are_cut_off_and_counted_as_a_gap(tmp_path, rng):
    transport = TransportConfig(max_message_bytes=32 << 10, max_header_bytes=16 << 10)
    collector = open_collector(tmp_path / "ds", frames=8, shard_size=8, transport=transport)
    endpoint = collector.bind()[0]
    fields, img = frame_fields(rng), image_bytes(rng)
    channel = PlayerChannel(endpoint, RUN_ID, "p0", linger_ms=2000)
    monitor = channel.socket.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
    try:
        channel.send(frame_message(fields, img, frame_id=0, seq=channel.take_seq()))
        big = rng.bytes(64 << 10)
        channel.send(frame_message(fields, big, frame_id=1, seq=channel.take_seq()))  # over ZMQ_MAXMSGSIZE
        # The collector drops that connection; the player reconnects before it sends on.
        _poll_until(collector, lambda: collector.stats.frames_accepted >= 1)
        _await_socket_event(monitor, zmq.EVENT_DISCONNECTED)
        _await_socket_event(monitor, zmq.EVENT_CONNECTED)
        channel.send([b" " * (20 << 10) + frame_message(fields, img, frame_id=2, seq=channel.take_seq())[0], img])  # header limit
        channel.send(frame_message(fields, img, frame_id=3, seq=channel.take_seq()))
        _poll_until(collector, lambda: collector.stats.frames_accepted >= 2)
    finally:
        channel.socket.disable_monitor()
        monitor.close(linger=0)
        channel.close()
        collector.close()
    assert collector.store.received.nonzero()[0].tolist() == [0, 3]
    assert collector.stats.rejects == {"header_size": 1}
    assert collector.stats.gaps == 2  # seq 1 never arrived; seq 2 was rejected before its seq was read
    collector.store.close()


@pytest.mark.timeout(60)
def test_a_player_gives_up_when_nobody_receives():
    ctx = zmq.Context()
    try:
        channel = PlayerChannel("tcp://127.0.0.1:1", RUN_ID, "p0", send_hwm=1, send_timeout_s=0.6, linger_ms=0, context=ctx)
        queued = 0
        with pytest.raises(SendTimeout, match="p0: no progress sending to tcp://127.0.0.1:1 for 1 s"):
            for _ in range(5):
                channel.send([b"x"])
                queued += 1
        assert queued == 1  # the high-water mark of 1 is full, the next send gives up instead of hanging
        channel.close()
    finally:
        ctx.term()


@pytest.mark.timeout(60)
def test_player_processes_exit_cleanly_when_the_collector_is_gone(tmp_path):
    # Nothing listens on this endpoint: the player blocks, times out after 1 s and exits non-zero.
    sender = _sender("tcp://127.0.0.1:1", "0-4000", "--send-timeout", "1")
    try:
        code = sender.wait(50)
    finally:
        sender.kill()
    assert code == 3
    assert b"SendTimeout: s0: no progress sending to tcp://127.0.0.1:1 for 1 s" in sender.stdout.read()


@pytest.mark.timeout(60)
def test_curve_rejects_unauthenticated_and_unknown_players(tmp_path, rng):
    keys = tmp_path / "keys"
    _, server_secret = generate_keys(keys, "collector")
    allowed = tmp_path / "allowed"
    good_public, good_secret = generate_keys(allowed, "good-player")
    _, unknown_secret = generate_keys(tmp_path / "others", "unknown-player")
    server_public = keys / "collector.key"
    transport = TransportConfig(curve=CurveConfig(server_secret_key=server_secret, authorized_keys=allowed))
    collector = open_collector(tmp_path / "ds", frames=8, shard_size=8, transport=transport)
    endpoint = collector.bind()[0]
    fields, img = frame_fields(rng), image_bytes(rng)
    # A refused player's send blocks (it has no connection to queue on) until its timeout.
    quick = {"linger_ms": 0, "send_timeout_s": 1.0}
    channels = {
        "plain": PlayerChannel(endpoint, RUN_ID, "plain", **quick),
        "unknown": PlayerChannel(endpoint, RUN_ID, "unknown", curve_server_key=server_public, curve_client_key=unknown_secret, **quick),
        "good": PlayerChannel(endpoint, RUN_ID, "good", curve_server_key=server_public, curve_client_key=good_secret, **quick),
    }
    try:
        for i, ch in enumerate(channels.values()):
            try:
                ch.send(frame_message(fields, img, frame_id=i, seq=ch.take_seq(), player_id=ch.player_id))
            except SendTimeout:
                assert ch.player_id != "good"
        _poll_until(collector, lambda: collector.stats.frames_accepted >= 1 and collector.auth_failures >= 2)
        # Both refused players were turned away at the handshake: close them, dropping what they
        # queued, then let the good player send once more and wait for that frame.
        for name in ("plain", "unknown"):
            channels[name].close(linger_ms=0)
        good = channels["good"]
        good.send(frame_message(fields, img, frame_id=3, seq=good.take_seq(), player_id="good"))
        _poll_until(collector, lambda: collector.stats.frames_accepted >= 2)
    finally:
        for ch in channels.values():
            if not ch.socket.closed:
                ch.close(linger_ms=0)
        collector.close()
    assert set(collector.players) == {"good"}
    assert collector.store.received.nonzero()[0].tolist() == [2, 3]
    assert collector.auth_failures >= 2
    collector.store.close()
    with pytest.raises(ValueError, match="holds no secret key"):
        PlayerChannel(endpoint, RUN_ID, "p", curve_server_key=server_public, curve_client_key=good_public)


def test_keys_command_and_endpoint_helpers(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli_main, ["keys", "--out", str(tmp_path), "--name", "host1"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "host1.key").is_file() and (tmp_path / "host1.key_secret").stat().st_mode & 0o077 == 0
    again = runner.invoke(cli_main, ["keys", "--out", str(tmp_path), "--name", "host1"])
    assert again.exit_code == 1 and "exists" in again.output
    assert local_endpoint("tcp://0.0.0.0:5557") == "tcp://127.0.0.1:5557"
    assert local_endpoint("tcp://10.0.0.2:5557") == "tcp://10.0.0.2:5557"
    with pytest.raises(ValueError, match="endpoint"):
        TransportConfig(endpoints=["localhost:5557"])
