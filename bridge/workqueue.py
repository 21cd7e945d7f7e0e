"""Work in small units from a queue, so no player idles while another still has a long list.

The run's missing frame ids are cut into units of consecutive ids (never straddling a shard, so
shards fill in id order and only a few are open at once) and queued in id order. A player leases
one unit at a time and asks for the next when it has sent the last frame of the one before, so
fast players take more units and all players finish within about one unit of each other. What a
frame looks like depends only on (config, seed, frame id), so who renders which unit changes
nothing in the dataset.

When a player dies, the ids it leased that have not arrived go back to the front of the queue
(`give_back`), for whichever player asks next.

The local built-in players lease over a ZeroMQ REQ/REP pair on the loopback (`WorkServer` in the
`generate` process, `lease_units` in the player); the Ray executor leases from the same queue in
its driver (bridge/ray_executor.py).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np
import zmq

from .workplan import format_id_ranges, parse_id_ranges, split_units, unit_size

log = logging.getLogger(__name__)

class WorkQueue:
    """Units of frame ids handed out in id order; thread-safe (the server thread leases, the
    supervisor gives back)."""

    def __init__(self, ids: np.ndarray, workers: int, shard_size: int, unit: int | None = None):
        self.shard_size = shard_size
        self.unit = unit or unit_size(len(ids), workers, shard_size)
        self._units: collections.deque[np.ndarray] = collections.deque(split_units(ids, self.unit, shard_size))
        self._lock = threading.Lock()
        self.leases: dict[str, list[np.ndarray]] = {}  # lessee -> every unit it was given

    def take(self, lessee: str) -> np.ndarray | None:
        """The next unit for `lessee` (recorded as its lease), or None when the queue is empty."""
        with self._lock:
            if not self._units:
                return None
            unit = self._units.popleft()
            self.leases.setdefault(lessee, []).append(unit)
            return unit

    def leased(self, lessee: str) -> np.ndarray:
        """Every id `lessee` was given, ascending."""
        with self._lock:
            units = self.leases.get(lessee, [])
            return np.sort(np.concatenate(units)) if units else np.zeros(0, np.int64)

    def give_back(self, ids: np.ndarray) -> None:
        """Put ids that were leased but not delivered back at the front of the queue (in id order)."""
        ids = np.sort(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0:
            return
        with self._lock:
            for unit in reversed(split_units(ids, self.unit, self.shard_size)):
                self._units.appendleft(unit)

    def remaining(self) -> int:
        """Ids still queued (not leased)."""
        with self._lock:
            return int(sum(len(u) for u in self._units))

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._units)


class WorkServer:
    """Answers the local players' lease requests from a WorkQueue, on a thread of its own.

    Request: JSON {"run_id", "player_id"}; reply: JSON {"frame_ids": "0-99"} ("" when the queue is
    empty). Bound on the loopback: only players on this machine lease this way.
    """

    def __init__(self, queue: WorkQueue, run_id: str, context: zmq.Context | None = None, endpoint: str = "tcp://127.0.0.1:*"):
        self.queue = queue
        self.run_id = run_id
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="work-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.socket.poll(100):
                continue
            try:
                request = json.loads(self.socket.recv())
                player = str(request["player_id"])
                if request.get("run_id") != self.run_id:
                    raise ValueError(f"run id {request.get('run_id')!r} is not this run's")
                unit = self.queue.take(player)
                reply = {"frame_ids": "" if unit is None else format_id_ranges(unit)}
            except (ValueError, KeyError, TypeError) as e:
                log.warning("bad work request: %s", e)
                reply = {"frame_ids": "", "error": str(e)}
            self.socket.send(json.dumps(reply).encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close(linger=0)


class WorkServerGone(RuntimeError):
    """The work server did not answer a lease request in time."""


def lease_units(endpoint: str, run_id: str, player_id: str, timeout_s: float = 120.0, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """The units a player leases from a WorkServer, one request per unit, until the queue is empty
    (or `stop` is set). Raises WorkServerGone when a reply does not come within `timeout_s`."""
    context = zmq.Context()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        while stop is None or not stop.is_set():
            sock.send(json.dumps({"run_id": run_id, "player_id": player_id}).encode())
            deadline = time.monotonic() + timeout_s
            while not sock.poll(250):
                if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                    if stop is not None and stop.is_set():
                        return
                    raise WorkServerGone(f"{player_id}: no answer from the work server {endpoint} in {timeout_s:.0f} s")
            reply = json.loads(sock.recv())
            ids = parse_id_ranges(reply.get("frame_ids", ""))
            if len(ids) == 0:
                return
            yield ids
    finally:
        sock.close(linger=0)
        context.term()
