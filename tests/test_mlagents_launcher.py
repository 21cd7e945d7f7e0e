"""The ML-Agents control plane end to end: real gRPC, real player processes, real sockets.

mlagents_envs.UnityEnvironment on one side, the Unity side of the communicator (bridge/mlagents_peer.py)
on the other; the built-in player launched on the Unity player's launch path; a watchdog for the
handshake wait mlagents leaves unbounded; restarts after SIGKILL; no process left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mlagents_envs.environment import UnityEnvironment

from bridge.generate import RUN_DIR, GenerateConfig, run_generate
from bridge.launcher import BuiltinMlAgentsLauncher, LaunchError, LaunchSettings, PlayerCommand, UnityLauncher, free_port, open_environment
from bridge.mlagents_channels import (
    CONFIG_CHANNEL_ID,
    MAX_ASSIGNMENT_BYTES,
    EngineSettings,
    GeneratorConfigChannel,
    PlayerRunConfig,
    PoseAssignment,
    PoseRow,
)
from bridge.mlagents_peer import ControlSession
from generator.store import load_dataset_arrays

ROOT = Path(__file__).resolve().parents[1]
CS_CHANNEL = ROOT / "unity_project/Packages/com.posebridge.player/Runtime/GeneratorConfigChannel.cs"


def _run_config(**kw) -> PlayerRunConfig:
    base = dict(run_id="run-1", player_id="w0.0", worker_id=0, seed=5, endpoint="tcp://127.0.0.1:5999", frames="0-9,20-29")
    base.update(kw)
    return PlayerRunConfig(**base)


def _children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (read from /proc, no psutil)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _step_until(env, condition, timeout_s: float = 60) -> None:
    """Step the environment until `condition()` holds; fail after a generous `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {timeout_s} s"
        env.step()


def test_channel_guid_is_shared_with_csharp():
    m = re.search(r'ChannelGuid = "([0-9a-f-]{36})"', CS_CHANNEL.read_text())
    assert m is not None and m.group(1) == str(CONFIG_CHANNEL_ID)


def test_builtin_players_get_the_runs_transport_settings_through_either_launch_path(tmp_path):
    """The side channel carries the same PlayerSettings a directly started built-in player gets."""
    from bridge.players import BuiltinLauncher, PlayerAssignment
    from generator.player import PlayerSettings

    cfg = GenerateConfig.model_validate({"transport": {"send_hwm": 7, "player_linger_ms": 123, "send_timeout_s": 9.5}})
    share = PlayerAssignment(slot=0, attempt=0, run_id="r1", seed=3, frame_ids=np.arange(10), endpoint="tcp://127.0.0.1:5999")
    direct = BuiltinLauncher.from_config(cfg, tmp_path)
    via_mlagents = BuiltinMlAgentsLauncher.from_config(cfg, tmp_path)
    sent = PlayerSettings.model_validate(via_mlagents.run_config(share).player)
    expected = share.player_settings(direct.config, send_hwm=direct.send_hwm, linger_ms=direct.linger_ms, send_timeout_s=direct.send_timeout_s)
    assert (sent.send_hwm, sent.linger_ms, sent.send_timeout_s) == (7, 123, 9.5)
    assert sent == expected


@pytest.mark.timeout(150)
def test_peer_and_environment_exchange_config_engine_settings_and_status():
    """A real UnityEnvironment (the launcher's side) against the peer (the player's side), in-process."""
    port = free_port()
    session = ControlSession(port, interval_s=0.02, connect_timeout_s=20).start()
    config = GeneratorConfigChannel()
    engine = EngineSettings(width=320, height=240, quality_level=2, time_scale=1.0, target_frame_rate=-1).channel()
    env = UnityEnvironment(file_name=None, base_port=port, side_channels=[config, engine], timeout_wait=20)
    try:
        sent = _run_config(poses=PoseAssignment(source="bundled", rows=[PoseRow(joints_mm=[(1.0, 2.0, 3.0)] * 17, clip="walk", frame=4)]))
        config.send_assignment(sent)
        env.reset()
        assert session.wait_assignment(60) == sent
        assert session.engine == {"width": 320, "height": 240, "quality_level": 2, "time_scale": 1.0, "target_frame_rate": -1}
        session.report("running", frames_planned=20)
        _step_until(env, lambda: config.status is not None and config.status.state == "running")
        assert config.status.player_id == "w0.0" and config.status.frames_planned == 20
        session.report("done", frames_sent=20, frames_planned=20)
        _step_until(env, lambda: config.status.state == "done")
        assert config.status.frames_sent == 20
        assert not config.bad_messages
    finally:
        env.close()
    assert session.wait_closed(60) and session.closed_by_launcher
    session.close()


def test_run_config_is_checked_and_bounded():
    with pytest.raises(ValueError, match="frame ids"):
        _run_config(frames="0-9,x")
    with pytest.raises(ValueError, match="endpoint"):
        _run_config(endpoint="localhost:5555")
    rows = [PoseRow(joints_mm=[(1234.5678901, -2345.6789012, 987.65432109)] * 17)] * 6000
    big = _run_config(poses=PoseAssignment(rows=rows))
    with pytest.raises(ValueError, match=r"MiB.*4 MiB.*poses.rows"):
        big.to_bytes()
    assert len(_run_config().to_bytes()) < MAX_ASSIGNMENT_BYTES


def test_unity_command_line_is_batchmode_and_never_nographics(tmp_path):
    exe = tmp_path / "posebridge-player.x86_64"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    argv = PlayerCommand(kind="unity", executable=exe).argv(5011, tmp_path / "player.log")
    assert argv[0] == str(exe) and "-batchmode" in argv and "-nographics" not in argv
    assert argv[argv.index("--mlagents-port") + 1] == "5011"
    with pytest.raises(ValueError, match="-nographics makes Unity's cameras render nothing"):
        PlayerCommand(kind="unity", executable=exe, extra_args=["-nographics"])
    with pytest.raises(ValueError, match="not an executable file"):
        PlayerCommand(kind="unity", executable=tmp_path / "missing.x86_64")
    cfg = GenerateConfig()
    with pytest.raises(ValueError, match="--unity-exe"):
        UnityLauncher.from_config(cfg, tmp_path)
    launcher = UnityLauncher.from_config(cfg, tmp_path, unity_exe=str(exe), quality_level="3")
    assert launcher.settings.engine.quality_level == 3 and launcher.command.executable == exe
    # mlagents-envs itself would add -nographics whenever no_graphics is set; the launcher never
    # lets it build the command line (file_name stays None).
    assert "-nographics" in UnityEnvironment._executable_args(type("E", (), {"_no_graphics": True, "_port": 1, "_additional_args": [], "_log_folder": None, "_worker_id": 0})())


@pytest.mark.timeout(120)
def test_watchdog_kills_a_player_that_stalls_after_the_first_message(tmp_path, monkeypatch):
    """mlagents waits forever for the second handshake message; the launcher's watchdog does not."""
    stall = tmp_path / "stall.py"
    stall.write_text(
        "import sys, time\n"
        "from bridge.mlagents_peer import UnityPeer\n"
        "from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto\n"
        "from mlagents_envs.communicator_objects.header_pb2 import HeaderProto\n"
        "peer = UnityPeer(int(sys.argv[1]))\n"
        "init = UnityMessageProto(header=HeaderProto(status=200))\n"
        "init.unity_output.rl_initialization_output.communication_version = '1.5.0'\n"
        "init.unity_output.rl_initialization_output.capabilities.baseRLCapabilities = True\n"
        "peer._call(init, 20, wait_for_ready=True)\n"
        "print('sent the first message, now stalling', flush=True)\n"
        "time.sleep(600)\n"
    )
    monkeypatch.setattr(PlayerCommand, "argv", lambda self, port, log_file: [sys.executable, str(stall), str(port)])
    started: list = []
    settings = LaunchSettings(handshake_timeout_s=10, step_timeout_s=10, close_timeout_s=2)
    # Without the watchdog this call never returns (the test's timeout would end it).
    with pytest.raises(LaunchError, match="stalled in the handshake"):
        open_environment(PlayerCommand(kind="builtin"), settings, [GeneratorConfigChannel()], log_file=tmp_path / "p.log", on_player=started.append)
    assert "now stalling" in (tmp_path / "p.log").read_text()
    assert len(started) == 1 and started[0].poll() is not None and not _alive(started[0].pid)


@pytest.mark.timeout(300)
def test_generate_through_mlagents_with_a_killed_player(tmp_path):
    """Two built-in players on the Unity launch path: config over the side channel, frames over
    ZeroMQ into the store, one player SIGKILLed mid-run and restarted for its missing frames, and
    nothing left running at the end."""
    frames = 600
    # Children that earlier tests left to this process (multiprocessing's resource tracker or
    # forkserver, started once per process) are not this run's.
    earlier_children = set(_children(os.getpid()))
    cfg = GenerateConfig.model_validate(
        {"frames": frames, "workers": 2, "seed": 11, "shard_size": 100, "max_restarts": 2,
         "player": {"scene": {"image_size": [48, 48]}, "pose_source": "bundled"}}
    )
    out = tmp_path / "ds"
    launcher = BuiltinMlAgentsLauncher.from_config(cfg, out / RUN_DIR, handshake_timeout_s="30", step_timeout_s="10")
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = run_generate(cfg, out, launcher, show_progress=False)
        except BaseException as e:  # noqa: BLE001 - reported by the assertions below
            result["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    # The victim: the player of frames 0-99 (shard 0), once it has its config and runs.
    deadline = time.monotonic() + 120
    killed = None
    while killed is None:
        assert worker.is_alive(), f"generate ended before a player ran: {result}"
        assert time.monotonic() < deadline, "no player reported running"
        for h in list(launcher.handles):
            st = h.status
            if st is not None and st.state == "running" and h.process is not None and 0 in h.run_config.frame_ids():
                killed = h
        time.sleep(0.02)
    assert len(killed.run_config.frame_ids()) > 100  # it has frames beyond shard 0 to send
    # Run it in 5 ms slices, stopped in between, until shard 0 is stored: it is then stopped (alive,
    # with more frames to go) when it is killed, however loaded the machine is.
    pid = killed.process.pid
    os.kill(pid, signal.SIGSTOP)
    while not (out / "shard-000000.tar").exists():
        assert time.monotonic() < deadline, f"{killed.player_id} stored no shard"
        assert killed.process.poll() is None, f"{killed.player_id} ended within one 5 ms slice"
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.001)
    assert killed.process.poll() is None
    os.kill(pid, signal.SIGKILL)
    worker.join(timeout=150)
    assert not worker.is_alive(), "generate did not finish"
    assert "error" not in result, result.get("error")
    summary = result["summary"]
    assert killed.poll() == -signal.SIGKILL
    assert summary.complete and summary.frames_stored == frames and summary.players_restarted >= 1
    restarted = [h for h in launcher.handles if h.player_id.startswith(killed.player_id.rsplit(".", 1)[0]) and h is not killed]
    assert restarted and all(h.status is not None and h.status.state == "done" for h in restarted)
    # Exactly N frames, each once, with the run's seed; the restarted player sent only what was missing.
    arrays = load_dataset_arrays(out, keys=("frame_id",))
    ids = np.sort(arrays["frame_id"])
    assert np.array_equal(ids, np.arange(frames))
    assert sum(len(h.run_config.frame_ids()) for h in restarted) < frames
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["config"]["player_kind"] == "builtin-mlagents"
    # Clean shutdown: every player process reaped, none left as our child.
    for h in launcher.handles:
        assert h.poll() is not None and not _alive(h.process.pid)
    assert set(_children(os.getpid())) - earlier_children == set()
