"""The ML-Agents control plane: players driven through `mlagents_envs.UnityEnvironment`.

Player kinds registered in bridge/players.py `PLAYER_KINDS` (`posebridge generate --player NAME`):
`unity` (a Unity Linux build of unity_project/, `--unity-exe PATH`) and `builtin-mlagents` (the
built-in player, driven exactly like a Unity build). One launch path for both: each player is an
`mlagents_envs.UnityEnvironment` whose gRPC server starts first; the launcher then starts the
player itself with `--mlagents-port` (so it controls the command line exactly: `-batchmode` for
Unity and never `-nographics`, which makes Unity's cameras render nothing). The run config goes
out on the GeneratorConfigChannel in the first `reset()` together with ML-Agents'
EngineConfigurationChannel; the player's status comes back in later `step()`s, which the launcher
keeps going until the player reports done or failed, then closes the environment (the player
quits). Frames go over ZeroMQ to the collector, never through here. Restarts and resuming from the
dataset's state are the generate supervisor's (bridge/generate.py), as for every player kind.

Pitfalls of mlagents-envs 0.28 handled here: after the first handshake message
the constructor waits without a timeout, so a watchdog kills a player that stalls there and breaks
the wait; `close()` always runs in `finally` or the interpreter hangs at exit; a `timeout_wait`
below 10 s makes mlagents spin at full CPU; one message is capped at 4 MiB (the run config checks
its own size).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable, ClassVar, Literal

import numpy as np
from mlagents_envs.environment import UnityEnvironment
from mlagents_envs.exception import UnityException, UnityWorkerInUseException
from mlagents_envs.rpc_communicator import RpcCommunicator
from pydantic import BaseModel, ConfigDict, Field

from .mlagents_channels import EngineSettings, GeneratorConfigChannel, PlayerRunConfig, PoseAssignment, PoseRow
from .players import (
    PlayerAssignment,
    PlayerHandle,
    PlayerLauncher,
    ProcessHandle,
    player_transport,
    source_tree_environment,
    spawn_player_process,
)
from .workplan import format_id_ranges

log = logging.getLogger(__name__)
# mlagents logs "Start training by pressing the Play button in the Unity Editor" for every player.
logging.getLogger("mlagents_envs.environment").setLevel(logging.WARNING)

MIN_TIMEOUT_WAIT_S = 10  # below this mlagents' poll loop spins (timeout_wait // 10 == 0)
EXIT_LAUNCH_FAILED = 70  # a handle's exit code when its player never completed the handshake
DEFAULT_UNITY_POSES = 2000  # about 0.8 MB of the run config at 0.1 mm


def pose_rows(source: str, fps: float, count: int, seed: int, exclude_subjects: list[str] | tuple[str, ...] = ()) -> list[PoseRow]:
    """`count` poses drawn without replacement (seeded) from a pose source, joints rounded to 0.1 mm
    to keep the run config small (it must stay under the 4 MiB gRPC limit)."""
    if count <= 0:
        return []
    from generator.poses import PRIOR, load_pose_source

    bank = load_pose_source(source, seed=seed, fps=fps, prior_size=max(count, 1), exclude_subjects=exclude_subjects)
    rows = np.sort(np.random.default_rng(seed).choice(len(bank), size=min(count, len(bank)), replace=False))
    joints = np.round(bank.joints[rows].astype(np.float64), 1)
    out = []
    for i, r in enumerate(rows.tolist()):
        clip = bank.clips[int(bank.clip_index[r])]
        prior = clip.path == PRIOR
        out.append(PoseRow(joints_mm=joints[i].tolist(), clip=None if prior else clip.name, frame=int(bank.frame_index[r]),
                           subject="" if prior else clip.subject, action="" if prior else clip.action))
    return out


def _kill(player: ProcessHandle | None, timeout_s: float = 5.0) -> None:
    """SIGKILL a player process and reap it."""
    if player is None:
        return
    player.kill()
    if player.wait(timeout_s) is None:
        log.error("player process %d did not die after SIGKILL", player.pid)


class PlayerCommand(BaseModel):
    """How to start one controlled player process."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["builtin", "unity"]
    executable: Path | None = Field(None, description="The Unity Linux player build (kind unity).")
    extra_args: list[str] = Field(default_factory=list, description="Appended to the command line.")

    def model_post_init(self, _context) -> None:
        if self.kind == "unity":
            if self.executable is None:
                raise ValueError("a Unity player needs its executable (--unity-exe PATH)")
            if not (self.executable.is_file() and os.access(self.executable, os.X_OK)):
                raise ValueError(f"{self.executable}: not an executable file (the Linux player build, e.g. posebridge-player.x86_64)")
        if any(a.lower() == "-nographics" for a in self.extra_args):
            raise ValueError("-nographics makes Unity's cameras render nothing; run headless with -batchmode on a GPU or under Xvfb")

    def argv(self, port: int, log_file: Path) -> list[str]:
        if self.kind == "builtin":
            return [sys.executable, "-m", "bridge.mlagents_peer", "--mlagents-port", str(port), *self.extra_args]
        return [str(self.executable), "-batchmode", "-logFile", str(log_file), "--mlagents-port", str(port), *self.extra_args]

    def environment(self) -> dict | None:
        """The built-in player imports this very source tree, whatever the working directory."""
        return source_tree_environment() if self.kind == "builtin" else None


class LaunchSettings(BaseModel):
    """Timeouts and engine settings of controlled players."""

    model_config = ConfigDict(extra="forbid")

    handshake_timeout_s: float = Field(60.0, ge=MIN_TIMEOUT_WAIT_S, description="Player start to completed handshake (Unity may need tens of seconds).")
    step_timeout_s: float = Field(15.0, ge=MIN_TIMEOUT_WAIT_S, description="Longest silence between two exchanges before a player counts as hung.")
    close_timeout_s: float = Field(15.0, gt=0, description="Wait for a player to exit after close() before killing it.")
    engine: EngineSettings = Field(default_factory=EngineSettings)


def free_port() -> int:
    """A TCP port nobody listens on now (for a player's gRPC server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LaunchError(RuntimeError):
    """A player could not be started or did not complete the handshake."""


@dataclasses.dataclass
class _Handles:
    """What a ManagedEnvironment made before its constructor returned (for the watchdog)."""

    communicator: RpcCommunicator | None = None
    player: ProcessHandle | None = None
    on_player: Callable[[ProcessHandle], None] | None = None


class ManagedEnvironment(UnityEnvironment):
    """A UnityEnvironment that starts its player itself, right after its gRPC server is listening.

    `UnityEnvironment(file_name=None)` only waits for a player; `file_name=...` would start it with
    mlagents' own command line. Overriding `_get_communicator` (called after `self._process = None`
    and before the handshake) lets the launcher start any player with any command line, while
    mlagents still polls that process during every exchange and reaps it in `close()`.
    """

    def __init__(self, argv: list[str], log_file: Path, port: int, handles: _Handles, *, seed: int, timeout_wait: int, side_channels: list, env: dict | None = None):
        self._pb_argv = argv
        self._pb_log_file = log_file
        self._pb_handles = handles
        self._pb_env = env
        super().__init__(file_name=None, worker_id=0, base_port=port, seed=seed, timeout_wait=timeout_wait, side_channels=side_channels)

    def _get_communicator(self, worker_id, base_port, timeout_wait):
        communicator = RpcCommunicator(worker_id, base_port, timeout_wait)
        self._pb_handles.communicator = communicator
        # Started like every player (bridge.players): output to its log, killed if we die.
        player = spawn_player_process(self._pb_argv, "", self._pb_log_file, env=self._pb_env)
        self._process = player.process  # mlagents polls it in every exchange and reaps it in close()
        self._pb_handles.player = player
        if self._pb_handles.on_player is not None:
            self._pb_handles.on_player(player)
        return communicator


def _abandon(handles: _Handles) -> None:
    """Tear down a half-built environment: the process, then the gRPC server."""
    _kill(handles.player)
    comm = handles.communicator
    if comm is not None and comm.is_open:
        comm.is_open = False
        comm.server.stop(None)
        comm.unity_to_external.parent_conn.close()


def close_environment(env: ManagedEnvironment, timeout_s: float) -> None:
    """`close()` (status 400 tells the player to quit), wait for the process, kill it if it lingers."""
    player = env._pb_handles.player
    try:
        env._close(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - a broken pipe from a dead player must not skip the kill below
        log.debug("closing the environment raised", exc_info=True)
    _kill(player)


def open_environment(
    command: PlayerCommand, settings: LaunchSettings, channels: list, *, log_file: Path, seed: int = 0,
    on_player: Callable[[ProcessHandle], None] | None = None,
) -> ManagedEnvironment:
    """Start one player and complete the handshake, or raise LaunchError with nothing left running.

    `on_player(handle)` is called as soon as the process exists (so the caller can kill it). The
    watchdog covers the wait mlagents leaves unbounded (the second handshake message): it kills the
    player and closes the pipe mlagents blocks on, which turns the wait into an exception.
    """
    for _ in range(5):
        port = free_port()
        handles = _Handles(on_player=on_player)
        finished, fired = threading.Event(), threading.Event()

        def watchdog() -> None:
            # mlagents bounds the wait for the first message by the same timeout; this bounds the second.
            if finished.wait(settings.handshake_timeout_s):
                return
            fired.set()
            log.error("player on port %d: no handshake within %.0f s, killing it", port, settings.handshake_timeout_s)
            _kill(handles.player)
            if handles.communicator is not None:
                handles.communicator.unity_to_external.child_conn.close()

        threading.Thread(target=watchdog, name=f"handshake-watchdog-{port}", daemon=True).start()
        argv = command.argv(port, log_file)
        try:
            env = ManagedEnvironment(argv, log_file, port, handles, seed=seed, timeout_wait=int(settings.handshake_timeout_s),
                                     side_channels=channels, env=command.environment())
        except UnityWorkerInUseException:
            finished.set()
            _abandon(handles)
            continue  # the free port was taken between the check and the bind: pick another
        except (UnityException, OSError, EOFError) as e:
            finished.set()
            _abandon(handles)
            why = "stalled in the handshake (watchdog)" if fired.is_set() else f"{type(e).__name__}: {e}"
            raise LaunchError(f"player {' '.join(argv)!r} failed to start: {why}; see {log_file}") from e
        finished.set()
        if fired.is_set():  # the watchdog fired just as the handshake completed
            close_environment(env, settings.close_timeout_s)
            raise LaunchError(f"player on port {port} stalled in the handshake (watchdog); see {log_file}")
        # Hang detection for steps: mlagents polls the process every timeout_wait // 10 s.
        handles.communicator.timeout_wait = int(settings.step_timeout_s)
        return env
    raise LaunchError("no free port for the player's gRPC server after 5 tries")


class MlAgentsHandle(PlayerHandle):
    """A controlled player: a thread starts it, hands it its config over the side channel, keeps
    the exchanges going until it reports done or failed, and closes the environment (the player
    then quits). The exit code is the process's, or EXIT_LAUNCH_FAILED when it never came up."""

    def __init__(self, player_id: str, command: PlayerCommand, settings: LaunchSettings, run_config: PlayerRunConfig, log_file: Path):
        self.player_id = player_id
        self.command = command
        self.settings = settings
        self.run_config = run_config
        self.log_file = log_file
        self.status = None  # the last PlayerStatus
        self.error = ""
        self._player: ProcessHandle | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mlagents-{player_id}", daemon=True)
        self._thread.start()

    @property
    def process(self) -> subprocess.Popen | None:
        return self._player.process if self._player is not None else None

    def _set_player(self, player: ProcessHandle) -> None:
        self._player = player  # known before the handshake completes, so kill() works from then on

    def _run(self) -> None:
        config = GeneratorConfigChannel()
        engine = self.settings.engine.channel()
        env = None
        try:
            env = open_environment(self.command, self.settings, [config, engine], log_file=self.log_file,
                                   seed=self.run_config.seed, on_player=self._set_player)
            config.send_assignment(self.run_config)
            env.reset()  # carries the run config and the engine settings
            while not self._stop.is_set():
                env.step()
                st = config.status
                if st is None:
                    continue
                self.status = st
                if st.state in ("done", "failed"):
                    if st.state == "failed":
                        self.error = f"{st.code}: {st.message}"
                        log.error("player %s failed: %s", self.player_id, self.error)
                    break
        except LaunchError as e:
            self.error = str(e)
            log.error("%s", e)
        except (UnityException, OSError, EOFError) as e:
            self.error = f"stopped responding: {type(e).__name__}: {e}"
            log.warning("player %s %s", self.player_id, self.error)
        finally:
            if env is not None:
                close_environment(env, self.settings.close_timeout_s)
            _kill(self._player)
            self._done.set()

    def poll(self) -> int | None:
        if not self._done.is_set():
            return None
        code = self._player.poll() if self._player is not None else None
        return EXIT_LAUNCH_FAILED if code is None else code

    def wait(self, timeout: float) -> int | None:
        self._done.wait(timeout)
        return self.poll()

    def terminate(self) -> None:
        """Closes the environment at the next exchange; the player then finishes and exits."""
        self._stop.set()

    def kill(self) -> None:
        self._stop.set()
        if self._player is not None:
            self._player.kill()

    def describe(self) -> str:
        pid = f"pid {self._player.pid}" if self._player is not None else "not started"
        return f"{self.player_id} ({self.command.kind} via ML-Agents, {pid}, log {self.log_file})" + (f": {self.error}" if self.error else "")

    def log_tail(self, lines: int = 5) -> str:
        return self._player.log_tail(lines) if self._player is not None else ""


class MlAgentsLauncher(PlayerLauncher):
    """Players driven through the ML-Agents communicator (the `unity` and `builtin-mlagents` kinds)."""

    kind: ClassVar[str] = ""
    player_kind: ClassVar[Literal["builtin", "unity"]] = "builtin"

    def __init__(self, config, workdir: Path, command: PlayerCommand, settings: LaunchSettings | None = None,
                 poses: PoseAssignment | None = None, transport: dict | None = None):
        self.config = config  # generator.player.PlayerConfig
        self.transport = transport or {}  # the built-in player's send settings (players.player_transport)
        self.workdir = Path(workdir)
        self.command = command
        self.settings = settings or LaunchSettings(
            engine=EngineSettings(width=config.scene.image_size[0], height=config.scene.image_size[1])
        )
        self.poses = poses or PoseAssignment(source=config.pose_source, fps=config.pose_fps)
        self.handles: list[MlAgentsHandle] = []

    @classmethod
    def from_config(cls, config, workdir: Path, **options) -> "MlAgentsLauncher":
        """Options (--player-option KEY=VALUE, or --unity-exe): unity_exe, args (extra player
        command line, space separated), handshake_timeout_s, step_timeout_s, quality_level, poses
        (how many poses of the pose source a Unity player gets; 0: its own AnimationClips)."""
        options = dict(options)
        exe = options.pop("unity_exe", None) or options.pop("exe", None)
        if cls.player_kind == "unity" and not exe:
            raise ValueError("the unity player needs its Linux build: --unity-exe PATH")
        if cls.player_kind == "builtin" and exe:
            raise ValueError("unity_exe is an option of --player unity")
        player = config.player
        quality = options.pop("quality_level", None)
        settings = LaunchSettings(
            handshake_timeout_s=float(options.pop("handshake_timeout_s", 60.0 if cls.player_kind == "builtin" else 120.0)),
            step_timeout_s=float(options.pop("step_timeout_s", 15.0)),
            engine=EngineSettings(width=player.scene.image_size[0], height=player.scene.image_size[1],
                                  quality_level=int(quality) if quality is not None else None),
        )
        args = str(options.pop("args", "")).split()
        # A Unity player poses its rig by joints sent from Python (poses=N of the run's pose source),
        # or with poses=0 by the AnimationClips built into it.
        n_poses = int(options.pop("poses", DEFAULT_UNITY_POSES if cls.player_kind == "unity" else 0))
        if options:
            raise ValueError(f"unknown options for the {cls.kind} player: {sorted(options)}")
        command = PlayerCommand(kind=cls.player_kind, executable=Path(exe) if exe else None, extra_args=args)
        poses = PoseAssignment(source=player.pose_source, fps=player.pose_fps, rows=pose_rows(player.pose_source, player.pose_fps, n_poses, config.seed, player.pose_exclude_subjects))
        return cls(player, workdir, command, settings, poses, player_transport(config.transport))

    def run_config(self, assignment: PlayerAssignment) -> PlayerRunConfig:
        """What goes over the side channel: the assignment, the scene, and (for the built-in player)
        its complete PlayerSettings, so it runs exactly as when started directly."""
        frames = format_id_ranges(assignment.frame_ids)
        player: dict = {}
        if self.command.kind == "builtin":
            player = json.loads(assignment.player_settings(self.config, **self.transport).model_dump_json())
        elif assignment.curve_server_key is not None:
            raise ValueError("the Unity player does not speak CURVE yet; run it on a trusted network without --curve-secret-key")
        return PlayerRunConfig(
            run_id=assignment.run_id,
            player_id=assignment.player_id,
            worker_id=assignment.slot,
            seed=assignment.seed,
            endpoint=assignment.endpoint,
            frames=frames,
            encoding=self.config.encoding,
            jpeg_quality=self.config.jpeg_quality,
            scene=self.config.scene.model_dump(mode="json"),
            poses=self.poses,
            player=player,
        )

    def start(self, assignment: PlayerAssignment) -> "MlAgentsHandle":
        log_file = self.workdir / f"{assignment.player_id}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handle = MlAgentsHandle(assignment.player_id, self.command, self.settings, self.run_config(assignment), log_file)
        self.handles.append(handle)
        log.info("started player %s with %d frames", handle.describe(), len(assignment.frame_ids))
        return handle

    def content_config(self) -> dict:
        if self.command.kind == "builtin":  # the same frames as the directly started built-in player
            return self.config.model_dump(mode="json")
        poses = {"source": self.poses.source, "fps": self.poses.fps, "rows": len(self.poses.rows)}  # rows follow from the seed
        return {"scene": self.config.scene.model_dump(mode="json"), "poses": poses,
                "encoding": self.config.encoding, "jpeg_quality": self.config.jpeg_quality}

    def image_size(self) -> tuple[int, int]:
        return tuple(self.config.scene.image_size)

    def close(self) -> None:
        """Stops every player still running: close its environment, kill what lingers."""
        for h in self.handles:
            h.terminate()
        for h in self.handles:
            if h.wait(self.settings.close_timeout_s + self.settings.step_timeout_s) is None:
                h.kill()
                h.wait(5.0)


class BuiltinMlAgentsLauncher(MlAgentsLauncher):
    """`--player builtin-mlagents`: the built-in player on the Unity player's launch path."""

    kind = "builtin-mlagents"
    player_kind = "builtin"


class UnityLauncher(MlAgentsLauncher):
    """`--player unity --unity-exe PATH`: a Unity Linux build of unity_project/."""

    kind = "unity"
    player_kind = "unity"
