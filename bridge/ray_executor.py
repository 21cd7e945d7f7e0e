"""`posebridge generate --executor ray`: players as Ray actors, one collector per node.

The run is the local one spread over a Ray cluster; the frame-id plan, the wire protocol and the
store's guarantees do not change, so the same seed and config give the same dataset whatever the
executor and however many nodes:

- **One collector per node** (a `CollectorActor`, pinned to its node, `num_cpus=0`): it binds a
  ZeroMQ PULL socket on the node's loopback, validates every frame as the local collector does,
  and commits shards straight to the dataset URL (generator/store.py; on object storage each
  collector writes its own shards and run record, so they never overwrite each other). Player to
  collector traffic never leaves a node. A dataset on a local path gets one collector, on the
  driver's node, and its players are placed on that node.
- **Players are actors** (`PlayerActor`): the built-in player renders in the actor's process
  (`num_cpus=1`); other kinds (Unity through ML-Agents) start their player process per unit
  from the actor and ask for `num_gpus` (`--ray-gpus-per-player`).
- **Work in small units from the driver's queue** (bridge/workqueue.py), with one rule more than
  locally: a shard's frames all go to one node, since its collector commits it whole; the first
  unit of a shard binds it to the node of the actor that took it.
- **Failures.** An actor that dies has the ids of its unit that did not reach the collector put
  back at the front of the queue, and is replaced (up to `max_restarts` per slot). A collector
  that dies (a lost node) takes its open shards with it: every uncommitted shard bound to its
  node is unbound and its missing ids queued again. A killed driver leaves only committed shards
  (and, on object storage, uncommitted objects without a record); a rerun resumes.
- **Exact counts.** A shard is committed once, by the collector of the node it is bound to;
  frames that arrive twice (a unit requeued while its frames were still in flight) are rejected
  as duplicates.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from generator.storage import is_remote

from .workplan import split_units, unit_size

log = logging.getLogger(__name__)

RAY_NAMESPACE = "posebridge"


def _ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - the extra is installed in the dev environment
        raise ImportError("--executor ray needs Ray: pip install 'posebridge[cluster]'") from e
    return ray


# ------------------------------------------------------------------------------------------------
# the queue: units with a node per shard


class ShardAffinityQueue:
    """Units of frame ids in id order; a shard's units all go to the node its first unit went to."""

    def __init__(self, ids: np.ndarray, workers: int, shard_size: int):
        self.shard_size = shard_size
        self.unit = unit_size(len(ids), workers, shard_size)
        self._units: collections.deque[np.ndarray] = collections.deque(split_units(ids, self.unit, shard_size))
        self.node_of_shard: dict[int, str] = {}

    def take(self, node: str) -> np.ndarray | None:
        """The first queued unit whose shard is free or bound to `node` (binding it), else None."""
        for i, unit in enumerate(self._units):
            shard = int(unit[0]) // self.shard_size
            bound = self.node_of_shard.get(shard)
            if bound is None or bound == node:
                self.node_of_shard[shard] = node
                del self._units[i]
                return unit
        return None

    def give_back(self, ids: np.ndarray) -> None:
        """Ids leased but not delivered go back to the front, in id order (their binding stays)."""
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        for unit in reversed(split_units(ids, self.unit, self.shard_size)):
            self._units.appendleft(unit)

    def unbind_node(self, node: str) -> list[int]:
        """Forget a lost node's shards (another node may take them); returns those shards."""
        shards = [s for s, n in self.node_of_shard.items() if n == node]
        for s in shards:
            del self.node_of_shard[s]
        return shards

    def queued(self) -> int:
        return int(sum(len(u) for u in self._units))

    def queued_ids(self) -> np.ndarray:
        return np.concatenate(list(self._units)) if self._units else np.zeros(0, np.int64)

    def __bool__(self) -> bool:
        return bool(self._units)


# ------------------------------------------------------------------------------------------------
# actors (plain classes; made remote with the resources of the run in `_actor_classes`)


class CollectorActor:
    """One node's collector: the store on the dataset URL, a PULL socket on the loopback, and a
    thread that polls it."""

    def __init__(self, out: str, content: dict, frames: int, shard_size: int, run_id: str, seed: int, image_size, transport: dict | None, storage_env: dict):
        os.environ.update(storage_env)
        from bridge.collector import Collector, Expectations
        from bridge.transport import TransportConfig
        from generator.store import DatasetStore

        self.store = DatasetStore.open(out, content, frames, shard_size, run_id=run_id)
        self.initial = int(self.store.committed.sum())  # committed before this run (as this collector saw it)
        expect = Expectations(run_id=run_id.rsplit("@", 1)[0], seed=seed, frames=frames, image_size=tuple(image_size) if image_size else None)
        self.collector = Collector(self.store, expect, TransportConfig(**(transport or {})))
        self.endpoint = self.collector.bind()[0]
        self._stop = threading.Event()
        self._error: str | None = None
        self._thread = threading.Thread(target=self._loop, name="collector", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.collector.poll(timeout_ms=50)
            except Exception as e:  # noqa: BLE001 - reported through status()
                self._error = f"{type(e).__name__}: {e}"
                log.error("collector failed: %s", self._error)
                return

    def info(self) -> dict:
        import ray

        return {"endpoint": self.endpoint, "node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}

    def received(self, ids: list[int]) -> list[bool]:
        """Which of `ids` arrived here (committed, queued for commit, or in an open shard)."""
        return self.store.received[np.asarray(ids, dtype=np.int64)].tolist()

    def status(self) -> dict:
        c = self.collector
        return {
            "committed": int(self.store.committed.sum()),
            "committed_new": int(self.store.committed.sum()) - self.initial,
            "received": int(self.store.received.sum()),
            "accepted": c.stats.frames_accepted,
            "rejects": dict(c.stats.rejects),
            "players": {pid: p.frames_accepted for pid, p in c.players.items()},
            "error": self._error,
        }

    def close(self, status: str = "complete") -> dict:
        """Stop polling, commit what is full, write the run record; the final status()."""
        self._stop.set()
        self._thread.join()
        self.collector.flush()
        self.store.update_run(rejects=dict(self.collector.stats.rejects), reject_samples=self.collector.stats.reject_samples, gaps=self.collector.stats.gaps)
        self.collector.close()
        error = None
        try:
            self.store.close(status)
        except Exception as e:  # noqa: BLE001 - returned to the driver, which raises it
            error = str(e)
        out = self.status()
        out["error"] = out["error"] or error
        out["committed_ids"] = np.flatnonzero(self.store.committed).tolist()
        return out


class PlayerActor:
    """One player slot's actor: the built-in player in this process (kind builtin), or a player
    process started per unit by the kind's launcher (Unity). `connect(endpoint)` once placed (to
    its node's collector), then `render(ids)` per unit."""

    def __init__(self, kind: str, config_json: str, seed: int, run_id: str, player_id: str, options: dict, storage_env: dict):
        os.environ.update(storage_env)
        from bridge.generate import GenerateConfig

        self.kind, self.seed, self.run_id, self.player_id = kind, seed, run_id, player_id
        self.config = GenerateConfig.model_validate_json(config_json)
        self.options = options
        self.sent = 0
        self._units = 0
        self.channel = self.endpoint = None
        if kind == "builtin":
            from generator.player import FrameProducer

            self.producer = FrameProducer(self.config.player, seed)
        else:
            from bridge.players import launcher_class

            self.workdir = Path(tempfile.mkdtemp(prefix=f"posebridge-{player_id}-"))
            self.launcher = launcher_class(kind).from_config(self.config, self.workdir, **options)

    def node(self) -> str:
        return _current_node()

    def connect(self, endpoint: str) -> None:
        self.endpoint = endpoint
        if self.kind == "builtin":
            from bridge.players import player_transport
            from bridge.transport import PlayerChannel

            t = player_transport(self.config.transport)
            self.channel = PlayerChannel(endpoint, self.run_id, self.player_id, send_hwm=t["send_hwm"], linger_ms=t["linger_ms"], send_timeout_s=t["send_timeout_s"])
            self.channel.send_hello("builtin", self.producer.capabilities(), 0, _versions())

    def render(self, frame_ids: list[int]) -> int:
        """Render and send these frames; returns how many were sent."""
        ids = np.asarray(frame_ids, dtype=np.int64)
        if self.kind == "builtin":
            for fid in ids.tolist():
                self.channel.send(self.producer.message(fid, self.run_id, self.player_id, self.channel.take_seq()))
                self.sent += 1
            return len(ids)
        return self._render_process(ids)

    def _render_process(self, ids: np.ndarray) -> int:
        from bridge.players import PlayerAssignment

        assignment = PlayerAssignment(slot=0, attempt=self._units, run_id=self.run_id, seed=self.seed, frame_ids=ids, endpoint=self.endpoint)
        self._units += 1
        handle = self.launcher.start(assignment)
        while handle.poll() is None:
            time.sleep(0.2)
        if handle.poll() != 0:
            raise RuntimeError(f"player process for {len(ids)} frames exited with {handle.poll()}: {handle.log_tail()}")
        self.sent += len(ids)
        return len(ids)

    def close(self) -> int:
        if self.kind == "builtin":
            if self.channel is not None:
                self.channel.send_end(self.sent)
                self.channel.close()
            self.producer.close()
        else:
            self.launcher.close()
        return self.sent


def _versions() -> dict:
    from generator.player import versions

    return versions()


# ------------------------------------------------------------------------------------------------
# the driver


@dataclasses.dataclass
class _Slot:
    index: int
    attempt: int = 0
    actor: object = None
    node: str = ""
    unit: np.ndarray | None = None
    future: object = None

    @property
    def player_id(self) -> str:
        return f"r{self.index}.{self.attempt}"


@dataclasses.dataclass
class RaySummary:
    frames: int
    frames_before: int
    frames_stored: int
    elapsed_s: float
    players_started: int
    players_restarted: int
    collectors: int
    frames_per_player: dict[str, int]
    rejects: dict[str, int]
    complete: bool


def _storage_env() -> dict:
    """The AWS variables a collector on another node needs to reach the dataset URL."""
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


def plan_missing(out: str, content: dict, frames: int, shard_size: int) -> np.ndarray:
    """The frame ids the dataset at `out` lacks, read-only (the collectors' open does the rest:
    creating the manifest, moving damaged shards aside). A config mismatch is refused here."""
    from generator.storage import open_storage
    from generator.store import DatasetStore, StoreError, scan_dataset

    storage = open_storage(out)
    if not storage.exists("manifest.json"):
        DatasetStore._load_or_create_manifest(storage, content, frames, shard_size)  # refuses a foreign folder
        return np.arange(frames, dtype=np.int64)
    manifest = DatasetStore._load_or_create_manifest(storage, content, frames, shard_size)
    scan = scan_dataset(storage, manifest=manifest, keep=())
    if scan.misfit:
        raise StoreError(scan.misfit)
    return np.flatnonzero(~scan.committed).astype(np.int64)


def run_generate_ray(
    config,
    out: str | Path,
    player: str = "builtin",
    options: dict | None = None,
    *,
    run_id: str | None = None,
    ray_address: str | None = None,
    gpus_per_player: float = 0.0,
    on_start=None,
) -> RaySummary:
    """Generate (or finish) the dataset at `out` with players as Ray actors; see the module doc.

    Connects to `ray_address` ("auto", "HOST:PORT") unless this process already joined a
    cluster (ray.init beforehand); with neither, Ray starts a local one. `on_start(state)` is
    called once the actors run, with the slots, collectors and queue (tests kill actors there).
    """
    ray = _ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from generator.storage import open_storage
    from generator.store import scan_dataset

    from .generate import GenerateError, content_config, new_run_id
    from .players import launcher_class

    options = options or {}
    run_id = run_id or new_run_id()
    out = str(out) if is_remote(out) else str(Path(out).resolve())
    local_dataset = not is_remote(out)
    launcher = launcher_class(player).from_config(config, Path(tempfile.mkdtemp(prefix="posebridge-driver-")), **options)
    content, image_size = content_config(config, launcher), launcher.image_size()
    launcher.close()
    missing = plan_missing(out, content, config.frames, config.shard_size)
    frames_before = config.frames - len(missing)
    started = time.monotonic()
    if len(missing) == 0:
        log.info("%s already holds all %d frames", out, config.frames)
        return RaySummary(config.frames, frames_before, config.frames, 0.0, 0, 0, 0, {}, {}, True)
    if not ray.is_initialized():
        ray.init(address=ray_address, namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False)

    Collector = ray.remote(num_cpus=0)(CollectorActor)
    Player = ray.remote(max_restarts=0, max_task_retries=0, **({"num_gpus": gpus_per_player} if gpus_per_player else {"num_cpus": 1}))(PlayerActor)
    here = ray.get_runtime_context().get_node_id()
    transport = config.transport.model_dump(mode="json", exclude={"curve"})
    transport["endpoints"] = ["tcp://127.0.0.1:*"]  # players dial their own node's collector
    storage_env = _storage_env()
    collectors: dict[str, object] = {}
    endpoints: dict[str, str] = {}

    def collector_for(node: str) -> str:
        """The endpoint of `node`'s collector, started on first use."""
        if node not in collectors:
            actor = Collector.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                out, content, config.frames, config.shard_size, f"{run_id}@{node[:12]}", config.seed, image_size, transport, storage_env
            )
            endpoints[node] = ray.get(actor.info.remote())["endpoint"]
            collectors[node] = actor
        return endpoints[node]

    config_json = config.model_dump_json()
    queue = ShardAffinityQueue(missing, max(1, config.workers), config.shard_size)
    slots = [_Slot(i) for i in range(max(1, min(config.workers, len(missing))))]
    counts = {"started": 0, "restarted": 0, "nodes_lost": 0, "lost_committed": 0}
    strategy = NodeAffinitySchedulingStrategy(here, soft=False) if local_dataset else "DEFAULT"

    def start(*starting: _Slot) -> None:
        """New actors for the slots, built at once; once placed, each connects to its node's collector."""
        for slot in starting:
            slot.actor = Player.options(name=f"{run_id}-{slot.player_id}", namespace=RAY_NAMESPACE, scheduling_strategy=strategy).remote(
                player, config_json, config.seed, run_id, slot.player_id, options, storage_env
            )
            slot.unit = slot.future = None
            counts["started"] += 1
        for slot, node in zip(starting, ray.get([slot.actor.node.remote() for slot in starting])):
            slot.node = node
        ray.get([slot.actor.connect.remote(collector_for(slot.node)) for slot in starting])

    def dispatch(slot: _Slot) -> None:
        if slot.future is None:
            unit = queue.take(slot.node)
            if unit is not None:
                slot.unit, slot.future = unit, slot.actor.render.remote(unit.tolist())

    def committed_now() -> np.ndarray:
        """bool (frames,): in a shard committed to the dataset (a scan of what is stored)."""
        return scan_dataset(open_storage(out), keep=()).committed

    def finished() -> bool:
        """No collector lost: their counts are exact. After a loss the counts may include its
        shards twice, so the dataset itself is asked (every missing id committed)."""
        return counts["nodes_lost"] == 0 or bool(committed_now()[missing].all())

    def lose_node(node: str, error: BaseException) -> None:
        """A collector died: what it committed stays; every other frame of the shards bound to its
        node is queued again (for any node), and that node's players are replaced."""
        log.warning("the collector of node %s died (%s): its uncommitted shards are rendered again", node[:12], type(error).__name__)
        collectors.pop(node)
        endpoints.pop(node)
        counts["nodes_lost"] += 1
        done = committed_now()
        live = sum(ray.get(c.status.remote())["committed_new"] for c in collectors.values())
        counts["lost_committed"] = int(done[missing].sum()) - live  # what the dead collectors committed
        queued = queue.queued_ids()
        for shard in queue.unbind_node(node):
            first, count = shard * config.shard_size, min(config.shard_size, config.frames - shard * config.shard_size)
            ids = np.arange(first, first + count)
            queue.give_back(ids[~done[ids] & ~np.isin(ids, queued)])
        for slot in slots:
            if slot.node == node:
                try:
                    ray.kill(slot.actor)
                except Exception:  # noqa: BLE001 - already gone with its node
                    pass
                slot.attempt += 1
                counts["restarted"] += 1
                start(slot)

    state = {"slots": slots, "collectors": collectors, "queue": queue, "run_id": run_id, "lose_node": lose_node}
    status = "failed"
    try:
        start(*slots)
        if on_start is not None:
            on_start(state)
        for slot in slots:
            dispatch(slot)
        last_progress, last_received = time.monotonic(), -1
        while True:
            futures = {s.future: s for s in slots if s.future is not None}
            if futures:
                # The first to finish gets its next unit at once (waiting for all would idle it).
                done, rest = ray.wait(list(futures), num_returns=1, timeout=0.25)
                if done and rest:
                    done += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                for ref in done:
                    slot = futures[ref]
                    try:
                        ray.get(ref)
                        slot.future = slot.unit = None
                    except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as e:
                        counts["restarted"] += 1
                        _recover(ray, slot, collectors, queue, e)
                        if slot.attempt >= config.max_restarts:
                            raise GenerateError(f"player slot {slot.index} failed {slot.attempt + 1} times (last: {type(e).__name__}: {str(e)[:300]})") from e
                        slot.attempt += 1
                        start(slot)
            else:
                time.sleep(0.1)
            for slot in slots:
                dispatch(slot)
            statuses = {}
            for node, actor in list(collectors.items()):
                try:
                    statuses[node] = ray.get(actor.status.remote())
                except ray.exceptions.RayActorError as e:  # a lost node (or its collector): its open shards are gone
                    lose_node(node, e)
            errors = [st["error"] for st in statuses.values() if st["error"]]
            if errors:
                raise GenerateError(f"{out}: a collector failed: {errors[0]}")
            if not statuses:
                continue
            if sum(st["committed_new"] for st in statuses.values()) + counts["lost_committed"] >= len(missing) and finished():
                status = "complete"
                break
            received = sum(st["received"] for st in statuses.values())
            if received != last_received:
                last_received, last_progress = received, time.monotonic()
            idle = all(s.future is None for s in slots)
            if idle and not queue and time.monotonic() - last_progress > 10.0:
                lost = _missing_ids(ray, collectors, committed_now(), missing)
                log.warning("%d frames never arrived (lost with a player); rendering them again", len(lost))
                queue.give_back(lost)
                last_progress = time.monotonic()
    except KeyboardInterrupt:
        status = "stopped"
        log.warning("stopped; committed shards are kept and a rerun with the same arguments resumes")
    finally:
        finals = _shut_down(ray, slots, collectors, status)
    errors = [f["error"] for f in finals if f.get("error")]
    if errors:
        raise GenerateError(f"{out}: {errors[0]}")
    scan = scan_dataset(open_storage(out), keep=())
    per_player: dict[str, int] = {}
    rejects: dict[str, int] = {}
    for f in finals:
        per_player.update(f["players"])
        for k, v in f["rejects"].items():
            rejects[k] = rejects.get(k, 0) + v
    return RaySummary(
        frames=config.frames,
        frames_before=frames_before,
        frames_stored=scan.frames_stored,
        elapsed_s=time.monotonic() - started,
        players_started=counts["started"],
        players_restarted=counts["restarted"],
        collectors=len(collectors),
        frames_per_player=per_player,
        rejects=rejects,
        complete=scan.complete,
    )


def _shut_down(ray, slots: list[_Slot], collectors: dict, status: str) -> list[dict]:
    """End the players (end-of-stream), then the collectors (commit what is full, write their
    run records); the collectors' final status."""
    for slot in slots:
        if slot.actor is not None:
            try:
                ray.get(slot.actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor
                pass
            ray.kill(slot.actor)
    finals = []
    for actor in collectors.values():
        try:
            finals.append(ray.get(actor.close.remote(status), timeout=300))
        except Exception as e:  # noqa: BLE001 - a lost node: its open shards are gone, a rerun renders them
            finals.append({"error": f"a collector was lost ({type(e).__name__})", "players": {}, "rejects": {}})
        ray.kill(actor)
    return finals


def print_ray_summary(console, out, s: RaySummary) -> None:
    """The end-of-run table of `posebridge generate --executor ray`."""
    from rich.table import Table

    t = Table(title=f"posebridge generate --executor ray: {out}", show_header=False)
    t.add_row("frames stored", f"{s.frames_stored} / {s.frames}" + (" (complete)" if s.complete else " (incomplete: rerun to resume)"))
    made = s.frames_stored - s.frames_before
    t.add_row("made this run", f"{made} in {s.elapsed_s:.1f} s ({made / s.elapsed_s if s.elapsed_s else 0:.1f} frames/s)")
    t.add_row("players", f"{s.players_started} actors started, {s.players_restarted} replaced; {s.collectors} collector(s)")
    t.add_row("frames per player", ", ".join(f"{k} {v}" for k, v in sorted(s.frames_per_player.items())) or "-")
    t.add_row("rejected messages", ", ".join(f"{k} {v}" for k, v in sorted(s.rejects.items())) or "0")
    console.print(t)


def _current_node() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def _recover(ray, slot: _Slot, collectors: dict, queue: ShardAffinityQueue, error: BaseException) -> None:
    """A player actor died: its unit's ids that did not reach the node's collector go back."""
    log.warning("player %s died (%s); its unfinished frames go back to the queue", slot.player_id, type(error).__name__)
    if slot.unit is None:
        return
    time.sleep(0.2)  # let what it sent before it died reach the collector
    collector = collectors.get(slot.node)
    try:
        arrived = np.asarray(ray.get(collector.received.remote(slot.unit.tolist())), dtype=bool) if collector else np.zeros(len(slot.unit), bool)
    except ray.exceptions.RayActorError:
        return  # its node's collector is gone too: lose_node queues the node's shards again
    queue.give_back(slot.unit[~arrived])


def _missing_ids(ray, collectors: dict, committed: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Of `ids`, those neither committed nor received by a live collector."""
    arrived = committed[ids].copy()
    for c in collectors.values():
        arrived |= np.asarray(ray.get(c.received.remote(ids.tolist())), dtype=bool)
    return ids[~arrived]
