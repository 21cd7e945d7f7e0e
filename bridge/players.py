"""Player kinds for `posebridge generate`: how it starts the processes that render and stream frames.

A `PlayerLauncher` turns a `PlayerAssignment` (which frame ids, where to send them) into a
running player and hands back a `PlayerHandle` to watch and stop it; `generate`'s supervisor
knows nothing else about players. The built-in kind starts `python -m generator.player`. Another
kind (Unity through ML-Agents, bridge/launcher.py) registers its class in `PLAYER_KINDS` under
its `--player` name and receives its own command-line options (`--player-option KEY=VALUE`).
"""

from __future__ import annotations

import abc
import ctypes
import dataclasses
import importlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np

from .workplan import format_id_ranges

log = logging.getLogger(__name__)

# --player name -> "module:Class" of a PlayerLauncher subclass.
PLAYER_KINDS: dict[str, str] = {
    "builtin": "bridge.players:BuiltinLauncher",
    "builtin-mlagents": "bridge.launcher:BuiltinMlAgentsLauncher",  # the built-in player on Unity's ML-Agents path
    "unity": "bridge.launcher:UnityLauncher",  # a Unity build of unity_project/ (--unity-exe)
}


@dataclasses.dataclass
class PlayerAssignment:
    """One player process's share of a run."""

    slot: int  # worker slot, 0..workers-1
    attempt: int  # 0 for the first process of the slot, +1 per restart
    run_id: str
    seed: int
    frame_ids: np.ndarray  # int64, ascending
    endpoint: str  # where the player connects (the collector's PULL)
    work_endpoint: str | None = None  # where it leases more frames (bridge/workqueue.py), if its kind can
    curve_server_key: Path | None = None  # the collector's public (or secret) key file
    curve_client_key: Path | None = None  # the player's secret key file

    @property
    def player_id(self) -> str:
        return f"w{self.slot}.{self.attempt}"

    def player_settings(self, config, **transport):
        """The built-in player's `generator.player.PlayerSettings` for this share, rendering
        `config` (a PlayerConfig); `transport` sets send_hwm, linger_ms or send_timeout_s."""
        from generator.player import PlayerSettings

        return PlayerSettings(
            endpoint=self.endpoint,
            run_id=self.run_id,
            player_id=self.player_id,
            seed=self.seed,
            frame_ids=format_id_ranges(self.frame_ids),
            work_endpoint=self.work_endpoint,
            config=config,
            curve_server_key=self.curve_server_key,
            curve_client_key=self.curve_client_key,
            **transport,
        )


class PlayerHandle(abc.ABC):
    """A started player."""

    player_id: str

    @abc.abstractmethod
    def poll(self) -> int | None:
        """The exit code once the player has exited, else None."""

    @abc.abstractmethod
    def terminate(self) -> None:
        """Ask the player to stop (it sends end-of-stream and exits)."""

    @abc.abstractmethod
    def kill(self) -> None:
        """Stop the player now."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds; the exit code, or None if it is still running."""

    def describe(self) -> str:
        return self.player_id

    def log_tail(self, lines: int = 5) -> str:
        return ""


class ProcessHandle(PlayerHandle):
    """A player that is a child process, with its output in a log file."""

    def __init__(self, player_id: str, process: subprocess.Popen, log_path: Path | None = None):
        self.player_id = player_id
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def describe(self) -> str:
        return f"{self.player_id} (pid {self.process.pid}{', log ' + str(self.log_path) if self.log_path else ''})"

    def log_tail(self, lines: int = 5) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class PlayerLauncher(abc.ABC):
    """Starts players of one kind for a run."""

    kind: ClassVar[str]
    # Its players lease units from the run's work queue (PlayerAssignment.work_endpoint); a kind
    # without it gets a fixed list of frame ids per player.
    leases_work: ClassVar[bool] = False

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config, workdir: Path, **options) -> "PlayerLauncher":
        """The launcher for a `GenerateConfig`; `workdir` is for settings files and logs, and
        `options` are this kind's own command-line options (e.g. unity_exe)."""

    @abc.abstractmethod
    def content_config(self) -> dict:
        """What this player kind contributes to the dataset's content hash (JSON-able)."""

    @abc.abstractmethod
    def image_size(self) -> tuple[int, int] | None:
        """The [width, height] every frame must have, or None when it varies."""

    @abc.abstractmethod
    def start(self, assignment: PlayerAssignment) -> PlayerHandle:
        """Start one player for `assignment`."""

    def close(self) -> None:
        """Release what the launcher holds (called once the run ends)."""


def launcher_class(kind: str) -> type[PlayerLauncher]:
    if kind not in PLAYER_KINDS:
        raise ValueError(f"unknown player kind {kind!r}; known: {sorted(PLAYER_KINDS)}")
    module, attr = PLAYER_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), attr)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the parent dies (Linux), so a killed `generate`
    never leaves players behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def source_tree_environment() -> dict:
    """This process's environment with the source tree first on PYTHONPATH, so that a player
    started with `python -m` imports this very tree, whatever its working directory."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def player_transport(transport) -> dict:
    """The built-in player's send settings (PlayerSettings keys) from the run's TransportConfig."""
    return {"send_hwm": transport.send_hwm, "linger_ms": transport.player_linger_ms, "send_timeout_s": transport.send_timeout_s}


def spawn_player_process(command: list[str], player_id: str, log_path: Path, env: dict | None = None) -> ProcessHandle:
    """Start a player command with its output in `log_path`, tied to this process's life."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            env=env,
        )
    return ProcessHandle(player_id, process, log_path)


class BuiltinLauncher(PlayerLauncher):
    """Starts `python -m generator.player` processes, each with a settings file."""

    kind = "builtin"
    leases_work = True

    def __init__(self, config, workdir: Path, *, send_hwm: int = 100, linger_ms: int = 5000, send_timeout_s: float = 120.0, python: str = sys.executable):
        self.config = config  # generator.player.PlayerConfig
        self.workdir = Path(workdir)
        self.send_hwm, self.linger_ms, self.send_timeout_s = send_hwm, linger_ms, send_timeout_s
        self.python = python

    @classmethod
    def from_config(cls, config, workdir: Path, **options) -> "BuiltinLauncher":
        if options:
            raise ValueError(f"the builtin player takes no player options, got {sorted(options)}")
        return cls(config.player, workdir, **player_transport(config.transport))

    def content_config(self) -> dict:
        return self.config.model_dump(mode="json")

    def image_size(self) -> tuple[int, int]:
        return tuple(self.config.scene.image_size)

    def start(self, assignment: PlayerAssignment) -> ProcessHandle:
        settings = assignment.player_settings(self.config, send_hwm=self.send_hwm, linger_ms=self.linger_ms, send_timeout_s=self.send_timeout_s)
        path = self.workdir / f"{assignment.player_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(settings.model_dump_json(indent=1))
        command = [self.python, "-m", "generator.player", "--settings", str(path)]
        handle = spawn_player_process(command, assignment.player_id, self.workdir / f"{assignment.player_id}.log", env=source_tree_environment())
        log.info("started player %s%s", handle.describe(), " leasing frames from the work queue" if assignment.work_endpoint else f" with {len(assignment.frame_ids)} frames")
        return handle
