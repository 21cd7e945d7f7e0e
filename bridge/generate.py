"""`posebridge generate`: a collector, a dataset store and W player processes, supervised.

The run's frame ids are 0..N-1 and each frame is a function of (config, seed, frame_id), so the
store knows which ids are missing; those are cut into small units (bridge.workplan) that players
lease one at a time from a work queue (bridge/workqueue.py), so all players finish within about
one unit of each other; player kinds that take a fixed list get the units dealt round-robin. The
supervisor watches every player: one that exits, crashes or goes silent is replaced by a new
process, and exactly its ids that have not arrived are rendered again (by whichever player leases
them next), up to `max_restarts` times per slot. The run ends when every frame is committed, with
exactly N frames whatever was killed on the way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import re
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from generator.config_file import load_config
from generator.errors import UserError
from generator.player import PlayerConfig
from generator.skeleton import SKELETON_NAME
from generator.storage import is_remote
from generator.store import DEFAULT_SHARD_SIZE, DatasetStore

from .collector import Collector, Expectations
from .players import PlayerAssignment, PlayerHandle, PlayerLauncher
from .protocol import ID_PATTERN, PROTOCOL_MAJOR
from .transport import TransportConfig, generate_keys
from .workplan import split_work
from .workqueue import WorkQueue, WorkServer

log = logging.getLogger(__name__)

RUN_DIR = ".run"  # player settings, logs and ephemeral keys, inside the dataset folder


class GenerateConfig(BaseModel):
    """A generate run (the YAML given to `--config`; command-line flags override its keys)."""

    model_config = ConfigDict(extra="forbid")

    frames: int = Field(1000, ge=1)
    seed: int = Field(0, ge=0)
    workers: int = Field(2, ge=0)  # 0: start no players, wait for remote ones
    shard_size: int = Field(DEFAULT_SHARD_SIZE, ge=1)
    player: PlayerConfig = Field(default_factory=PlayerConfig)
    transport: TransportConfig = Field(default_factory=TransportConfig)
    max_restarts: int = Field(3, ge=0)  # per worker slot
    startup_timeout_s: float = Field(120.0, gt=0)  # a player's first message must come within this
    stall_timeout_s: float = Field(60.0, gt=0)  # then silence longer than this is a stall


class GenerateError(UserError, RuntimeError):
    """The run cannot finish (a player keeps failing, bad config, ...); the message says why."""


def load_generate_config(path: str | Path | None, overrides: dict) -> GenerateConfig:
    """A config from an optional YAML/JSON file with dotted-key `overrides` applied (None skipped)."""
    return load_config(GenerateConfig, path, overrides, what="generate config")


@dataclasses.dataclass
class GenerateSummary:
    folder: Path | str  # a local folder, or the dataset's URL
    run_id: str
    frames: int  # the target N
    frames_before: int  # committed before this run
    frames_stored: int  # committed now
    elapsed_s: float
    rejects: dict[str, int]
    gaps: int
    players_started: int
    players_restarted: int
    auth_failures: int
    complete: bool
    quarantined: list[str] = dataclasses.field(default_factory=list)  # damaged shards moved aside and rendered again
    frames_per_player: dict[str, int] = dataclasses.field(default_factory=dict)  # accepted this run, by player id
    # Frames stored after the first player ran out of work and ended: the others' tail. Over
    # frames_new, it is the share of the run during which some player was idle.
    frames_after_first_end: int | None = None

    @property
    def frames_new(self) -> int:
        return self.frames_stored - self.frames_before

    @property
    def fps(self) -> float:
        return self.frames_new / self.elapsed_s if self.elapsed_s > 0 else 0.0


@dataclasses.dataclass
class _Slot:
    index: int
    frame_ids: np.ndarray  # a fixed list; empty for a player that leases from the queue
    handle: PlayerHandle | None = None
    attempt: int = 0
    started_at: float = 0.0
    done: bool = False


class Supervisor:
    """Starts players for the missing frames and replaces any that exit before their frames arrived."""

    def __init__(self, launcher: PlayerLauncher, collector: Collector, config: GenerateConfig, run_id: str, endpoint: str, curve_keys: tuple | None):
        self.launcher = launcher
        self.collector = collector
        self.store = collector.store
        self.config = config
        self.run_id = run_id
        self.endpoint = endpoint
        self.curve_keys = curve_keys or (None, None)
        self.slots: list[_Slot] = []
        self.started = 0
        self.restarted = 0
        self.queue: WorkQueue | None = None
        self.work_server: WorkServer | None = None

    def start(self, missing: np.ndarray, workers: int) -> None:
        if workers == 0:  # players started elsewhere
            return
        if self.launcher.leases_work:
            self.queue = WorkQueue(missing, workers, self.config.shard_size)
            self.work_server = WorkServer(self.queue, self.run_id)
            shares = [np.zeros(0, np.int64)] * min(workers, len(missing))
        else:
            shares = [ids for ids in split_work(missing, workers, self.config.shard_size) if len(ids)]
        for i, ids in enumerate(shares):
            slot = _Slot(i, ids)
            self.slots.append(slot)
            self._launch(slot)

    def _launch(self, slot: _Slot) -> None:
        assignment = PlayerAssignment(
            slot=slot.index,
            attempt=slot.attempt,
            run_id=self.run_id,
            seed=self.config.seed,
            frame_ids=slot.frame_ids,
            endpoint=self.endpoint,
            work_endpoint=self.work_server.endpoint if self.work_server else None,
            curve_server_key=self.curve_keys[0],
            curve_client_key=self.curve_keys[1],
        )
        slot.handle = self.launcher.start(assignment)
        slot.started_at = time.monotonic()
        self.started += 1

    def check(self) -> None:
        """Replace exited or silent players whose frames have not all arrived."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.done or slot.handle is None:
                continue
            code = slot.handle.poll()
            if code is None:
                self._watch_stall(slot, now)
                continue
            self._drain()
            ids = slot.frame_ids if self.queue is None else self.queue.leased(slot.handle.player_id)
            unfinished = ids[~self.store.received[ids]]
            # A player that failed before leasing anything (a bad config) holds no frames, but the
            # queue still does: it is restarted like any failed player (and fails the run after
            # max_restarts), never counted as done while frames remain.
            if len(unfinished) == 0 and (code == 0 or self.queue is None or self.store.received.all()):
                slot.done = True
                slot.handle = None
                continue
            self._restart(slot, unfinished, code)

    def _watch_stall(self, slot: _Slot, now: float) -> None:
        state = self.collector.players.get(slot.handle.player_id)
        if state is None:
            if now - slot.started_at > self.config.startup_timeout_s:
                log.warning("player %s sent nothing in %.0f s; killing it", slot.handle.describe(), self.config.startup_timeout_s)
                slot.handle.kill()
        elif now - state.last_seen > self.config.stall_timeout_s:
            log.warning("player %s silent for %.0f s; killing it", slot.handle.describe(), now - state.last_seen)
            slot.handle.kill()

    def _drain(self, limit_s: float = 2.0) -> None:
        """Take in what a dead player sent before it died, so it is not rendered twice."""
        deadline = time.monotonic() + limit_s
        while self.collector.poll(timeout_ms=50) and time.monotonic() < deadline:
            pass

    def _restart(self, slot: _Slot, unfinished: np.ndarray, code: int) -> None:
        state = self.collector.players.get(slot.handle.player_id)
        reason = f"exit code {code}" + (f", {state.failed}" if state is not None and state.failed else "")
        tail = slot.handle.log_tail()
        if slot.attempt >= self.config.max_restarts:
            raise GenerateError(
                f"player slot {slot.index} failed {slot.attempt + 1} times (last: {slot.handle.describe()}, {reason}); "
                f"{len(unfinished)} of its frames are missing" + (f"\nlast log lines:\n{tail}" if tail else "")
            )
        log.warning("player %s ended (%s) with %d frames missing; restarting them", slot.handle.describe(), reason, len(unfinished))
        slot.attempt += 1
        if self.queue is not None:
            self.queue.give_back(unfinished)  # for whichever player leases next
        else:
            slot.frame_ids = unfinished
        self.restarted += 1
        self._launch(slot)

    def stop_all(self, grace_s: float = 5.0) -> None:
        if self.work_server is not None:
            self.work_server.close()
            self.work_server = None
        handles = [s.handle for s in self.slots if s.handle is not None]
        for h in handles:
            h.terminate()
        deadline = time.monotonic() + grace_s
        for h in handles:
            if h.wait(max(0.0, deadline - time.monotonic())) is None:
                log.warning("player %s did not stop in %.0f s; killing it", h.describe(), grace_s)
                h.kill()
                h.wait(5.0)


def content_config(config: GenerateConfig, launcher: PlayerLauncher) -> dict:
    """What determines the dataset's content, hashed into its manifest (frames and workers do not)."""
    return {
        "seed": config.seed,
        "shard_size": config.shard_size,
        "player_kind": launcher.kind,
        "player": launcher.content_config(),
        "protocol_major": PROTOCOL_MAJOR,
        "skeleton": SKELETON_NAME,
    }


def _curve_for_local_players(config: GenerateConfig, run_dir: Path) -> tuple[TransportConfig, tuple | None]:
    """With CURVE on, an ephemeral key pair for local players, authorized next to the user's keys."""
    curve = config.transport.curve
    if curve is None:
        return config.transport, None
    keys = run_dir / "curve"
    public, secret = generate_keys(keys, "local-player")
    transport = config.transport
    if curve.authorized_keys is not None:
        merged = keys / "authorized"
        merged.mkdir()
        for key in Path(curve.authorized_keys).glob("*.key"):
            shutil.copy(key, merged / key.name)
        shutil.copy(public, merged / "local-player.key")
        transport = transport.model_copy(update={"curve": curve.model_copy(update={"authorized_keys": merged})})
    return transport, (curve.server_secret_key, secret)


class _Progress:
    """The rich progress display: overall frames/s, rejects, and one line per player."""

    def __init__(self, console: Console, total: int, done: int):
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.overall = self.progress.add_task("frames", total=total, completed=done, rate="")
        self.players: dict[str, tuple[int, int, float]] = {}  # id -> (task, count at last rate sample, time)
        self.last = 0.0
        self.start = time.monotonic()
        self.start_done = done

    def update(self, collector: Collector, store: DatasetStore, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        done = int(store.received.sum())
        rate = (done - self.start_done) / max(now - self.start, 1e-9)
        rejects = collector.stats.rejected
        label = "frames" + (f" [red]rejects {rejects}[/]" if rejects else "") + (f" [yellow]gaps {collector.stats.gaps}[/]" if collector.stats.gaps else "")
        self.progress.update(self.overall, completed=done, description=label, rate=f"{rate:7.1f} fps")
        for pid, p in collector.players.items():
            if pid not in self.players:
                task = self.progress.add_task(f"  {pid}", total=p.frames_planned or None, rate="")
                self.players[pid] = (task, 0, now)
            task, n0, t0 = self.players[pid]
            fps = (p.frames_accepted - n0) / (now - t0) if now - t0 >= 1.0 else None
            if fps is not None:
                self.players[pid] = (task, p.frames_accepted, now)
            state = " ended" if p.ended else (" failed" if p.failed else "")
            fields = {"rate": f"{fps:7.1f} fps{state}"} if fps is not None else {}
            self.progress.update(task, completed=p.frames_accepted, total=p.frames_planned or None, **fields)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()


def run_dir_for(out: str | Path) -> Path:
    """Where a run keeps its player settings, logs and ephemeral keys: DIR/.run in a local dataset
    folder; for a dataset on object storage, a local temporary folder named after its URL."""
    if is_remote(out):
        digest = hashlib.sha256(str(out).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / "posebridge-runs" / digest
    return Path(out) / RUN_DIR


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def run_generate(
    config: GenerateConfig,
    out: str | Path,
    launcher: PlayerLauncher,
    *,
    run_id: str | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
    on_start: Callable[[Supervisor], None] | None = None,
) -> GenerateSummary:
    """Generate (or finish) the dataset in `out`; returns the run's summary.

    An existing `out` made with the same content config is resumed (its damaged shards are moved
    aside and rendered again); one made with another config is refused unless `overwrite`, which
    replaces it. `run_id` defaults to a fresh one; give it when players started elsewhere
    (workers=0) must know it in advance. Raises GenerateError when players keep failing,
    StoreError when `out` cannot be used. The store's manifest records the run either way.
    `on_start(supervisor)` is called once the players are started (tests watch the leases).
    """
    out = str(out) if is_remote(out) else Path(out)
    console = console or Console(stderr=True)
    run_id = run_id or new_run_id()
    if not re.match(ID_PATTERN, run_id):
        raise GenerateError(f"run id {run_id!r} must match {ID_PATTERN}")
    store = DatasetStore.open(out, content_config(config, launcher), config.frames, config.shard_size, run_id=run_id, overwrite=overwrite)
    frames_before = int(store.committed.sum())
    started = time.monotonic()
    status = "failed"
    collector = supervisor = None
    auth_failures = 0
    previous_sigterm = _on_sigterm(_raise_keyboard_interrupt)
    try:
        missing = store.missing_frame_ids()
        if len(missing) == 0:
            status = "complete"
            log.info("%s already holds all %d frames", out, config.frames)
        else:
            run_dir = run_dir_for(out)
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            transport, curve_keys = _curve_for_local_players(config, run_dir)
            expect = Expectations(run_id=run_id, seed=config.seed, frames=config.frames, image_size=launcher.image_size())
            collector = Collector(store, expect, transport)
            endpoints = collector.bind()
            supervisor = Supervisor(launcher, collector, config, run_id, endpoints[0], curve_keys)
            log.info("run %s: %d of %d frames to make with %d player(s); collector at %s", run_id, len(missing), config.frames, config.workers, ", ".join(endpoints))
            if config.workers == 0:
                console.print(f"waiting for players: run id [bold]{run_id}[/], seed {config.seed}, endpoint(s) {', '.join(collector.server.endpoints)}")
            supervisor.start(missing, config.workers)
            if on_start is not None:
                on_start(supervisor)
            with _Progress(console, config.frames, frames_before) if show_progress else contextlib.nullcontext() as progress:
                while store.received.sum() < config.frames:  # poll() leaves no frame waiting for its check
                    collector.poll(timeout_ms=100)
                    supervisor.check()
                    if progress:
                        progress.update(collector, store)
                if progress:
                    progress.update(collector, store, force=True)
            status = "complete"
    except KeyboardInterrupt:
        status = "stopped"
        log.warning("stopped; committed shards are kept and a rerun with the same arguments resumes")
    finally:
        if previous_sigterm is not None:
            _on_sigterm(previous_sigterm)
        if supervisor is not None:
            supervisor.stop_all()
        if collector is not None:
            collector.flush()
            auth_failures = collector.auth_failures
            store.update_run(
                rejects=dict(collector.stats.rejects),
                reject_samples=collector.stats.reject_samples,
                gaps=collector.stats.gaps,
                players_started=supervisor.started if supervisor else 0,
                players_restarted=supervisor.restarted if supervisor else 0,
                auth_failures=auth_failures,
            )
            collector.close()
        launcher.close()
        store.close(status)
    stats = collector.stats if collector is not None else None
    return GenerateSummary(
        folder=out,
        run_id=run_id,
        frames=config.frames,
        frames_before=frames_before,
        frames_stored=int(store.committed.sum()),
        elapsed_s=time.monotonic() - started,
        rejects=dict(stats.rejects) if stats else {},
        gaps=stats.gaps if stats else 0,
        players_started=supervisor.started if supervisor else 0,
        players_restarted=supervisor.restarted if supervisor else 0,
        auth_failures=auth_failures,
        complete=store.complete,
        quarantined=list(store.run.quarantined),
        frames_per_player={pid: p.frames_accepted for pid, p in collector.players.items()} if collector is not None else {},
        frames_after_first_end=_frames_after_first_end(collector),
    )


def _frames_after_first_end(collector: Collector | None) -> int | None:
    """Frames accepted after the first player that ended normally (end-of-stream, not failed)."""
    if collector is None:
        return None
    ends = [p.ended_at_frame for p in collector.players.values() if p.ended_at_frame is not None and not p.failed]
    return collector.stats.frames_accepted - min(ends) if ends else None


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _on_sigterm(handler):
    """Install a SIGTERM handler (main thread only); returns the previous one."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def print_generate_summary(console: Console, s: GenerateSummary) -> None:
    """The end-of-run table of `posebridge generate`."""
    t = Table(title=f"posebridge generate: {s.folder}", show_header=False)
    t.add_row("run", s.run_id)
    for problem in s.quarantined:
        t.add_row("[yellow]rendered again[/]", escape(problem))
    t.add_row("frames stored", f"{s.frames_stored} / {s.frames}" + (" (complete)" if s.complete else " (incomplete: rerun to resume)"))
    t.add_row("made this run", f"{s.frames_new} in {s.elapsed_s:.1f} s ({s.fps:.1f} frames/s)")
    t.add_row("players", f"{s.players_started} started, {s.players_restarted} restarted")
    t.add_row("rejected messages", ", ".join(f"{k} {v}" for k, v in sorted(s.rejects.items())) or "0")
    t.add_row("sequence gaps", str(s.gaps))
    if s.auth_failures:
        t.add_row("rejected connections", str(s.auth_failures))
    console.print(t)
