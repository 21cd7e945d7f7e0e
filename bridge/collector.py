"""The collector: receive protocol messages, validate every frame, and store the good ones.

Each message is checked before anything is stored: part count, header size, UTF-8, JSON and
schema (strict pydantic), the run id and seed, the frame id range, duplicates, the per-player
sequence numbers, the image (length, CRC-32, format and dimensions read from its own header),
the person mask when the frame has one (length, CRC-32, a complete PNG of the image's size,
decoded, values only 0 and 1), and the geometry (K is a pinhole matrix, R a rotation, and the 2D, 3D, world, right-view and
visibility fields agree with one another). A bad message is counted under its reason and
logged; it is never stored, and the collector keeps running.

The hot path receives without copying images (`copy=False`), parses with pydantic's compiled
JSON validator, writes the numbers straight into the open shard's arrays, and leaves disk
writes to the store's writer thread. Person masks are decoded (zlib, which releases the GIL) in
the batched step, spread over a few threads when the process may use more than one core.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import time
import zlib

import numpy as np
import zmq
from pydantic import ValidationError

from generator.camera import in_image, is_pinhole, project_points, right_view_points, world_to_camera
from generator.masks import MaskError, count_mask_pixels
from generator.store import DatasetStore, DuplicateFrame, OpenShard

from .image_probe import ImageProbeError, probe_image, probe_png
from .protocol import (
    CONTROL_PARTS,
    FRAME_PARTS,
    PROTOCOL_MINOR,
    EndOfStream,
    ErrorMessage,
    FrameHeader,
    Heartbeat,
    Hello,
    decode_control,
    describe_validation_error,
    wrong_major,
)
from .transport import PullServer, TransportConfig

log = logging.getLogger(__name__)

# Reject reasons, the keys of CollectorStats.rejects (docs/protocol.md lists them).
REJECT_REASONS = {
    "parts": "wrong number of message parts for its type (a frame's header says whether a mask part follows)",
    "header_size": "header part larger than max_header_bytes",
    "encoding": "header is not UTF-8",
    "json": "header is not valid JSON",
    "version": "protocol major version is not ours",
    "schema": "header does not match the message schema",
    "run_id": "message from another run",
    "seed": "frame drawn with another seed",
    "frame_range": "frame id outside 0..frames-1",
    "seq": "sequence number replayed or reordered",
    "duplicate": "frame id already stored",
    "image_shape": "image shape disagrees with camera.image_size or the run's image size",
    "image_encoding": "image encoding not accepted by this run",
    "image_length": "image part length differs from image.size_bytes",
    "checksum": "image CRC-32 mismatch",
    "image_decode": "image bytes are not a complete image of the stated format and size",
    "mask": "the person mask part is not a 0/1 greyscale PNG of the image's size, or its length or CRC-32 is wrong",
    "camera": "K is not a pinhole matrix or R is not a rotation",
    "geometry": "keypoint fields disagree with each other and the camera",
    "visibility": "visibility disagrees with the keypoint positions",
    "internal": "the collector failed on this message (a bug; logged with a traceback)",
}
LOGGED_PER_REASON = 20  # rejects logged at WARNING per reason; the rest at DEBUG
REJECT_SAMPLES = 50


class Reject(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass
class Expectations:
    """What this run accepts. None means "any"."""

    run_id: str | None
    seed: int | None
    frames: int
    image_size: tuple[int, int] | None = None  # [width, height]
    encodings: tuple[str, ...] = ("jpeg", "png", "raw")
    tolerance_px: float = 0.05  # joints_2d vs projecting joints_3d (plus 1e-5 relative)
    tolerance_mm: float = 1.0  # joints_3d vs R joints_3d_world + t (plus 1e-5 relative)


@dataclasses.dataclass
class PlayerState:
    player_id: str
    kind: str = "?"
    pid: int = 0
    host: str = ""
    frames_planned: int = 0
    next_seq: int = 0
    gaps: int = 0  # messages missing from the sequence
    gap_events: int = 0
    frames_accepted: int = 0
    frames_rejected: int = 0
    frames_sent: int | None = None  # as last reported by a heartbeat or end-of-stream
    fps_reported: float = 0.0
    ended: bool = False
    # Frames the collector had accepted (from all players) when this player's end-of-stream came:
    # the run's frames accepted after it, over the run's total, is how long the others went on.
    ended_at_frame: int | None = None
    failed: str | None = None  # the message of a fatal error
    first_seen: float = 0.0
    last_seen: float = 0.0


@dataclasses.dataclass
class CollectorStats:
    messages: int = 0
    frames_accepted: int = 0
    bytes_received: int = 0
    gaps: int = 0
    rejects: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    reject_samples: list[str] = dataclasses.field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())


class Collector:
    """Validates messages and stores frames into a DatasetStore; `bind()` then `poll()` in a loop."""

    def __init__(self, store: DatasetStore, expect: Expectations, transport: TransportConfig | None = None, context: zmq.Context | None = None,
                 mask_threads: int | None = None):
        """`mask_threads`: threads that decode masks in each batch (None: up to 4, one per core this
        process may use beyond the first; 0: on the receiving thread)."""
        self.store = store
        self.expect = expect
        self.transport = transport or TransportConfig()
        self.context = context
        self.server: PullServer | None = None
        self.stats = CollectorStats()
        self.players: dict[str, PlayerState] = {}
        self._pending: list[_Staged] = []
        if mask_threads is None:
            mask_threads = min(4, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else 0
        self._mask_pool = concurrent.futures.ThreadPoolExecutor(mask_threads, thread_name_prefix="mask-check") if mask_threads > 0 else None
        self._auth_failures = 0

    # -- sockets ---------------------------------------------------------------------------------

    def bind(self) -> list[str]:
        """Bind the PULL socket; returns the endpoints local players connect to."""
        self.server = PullServer(self.transport, self.context)
        return self.server.connect_endpoints()

    def poll(self, timeout_ms: int = 100, max_messages: int = 2000) -> int:
        """Wait up to `timeout_ms` for a message, then handle up to `max_messages` without waiting."""
        sock = self.server.socket
        if not sock.poll(timeout_ms):
            self.server.poll_auth_events()
            return 0
        n = 0
        while n < max_messages:
            try:
                first = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            parts = [first]
            while parts[-1].more:
                parts.append(sock.recv(copy=False))
            self._receive(parts)
            n += 1
        self.flush()
        return n

    def close(self) -> None:
        if self._mask_pool is not None:
            self._mask_pool.shutdown()
            self._mask_pool = None
        if self.server is not None:
            self.server.poll_auth_events()
            self._auth_failures = self.server.auth_failures
            self.server.close()
            self.server = None

    @property
    def auth_failures(self) -> int:
        """Player connections refused by CURVE so far."""
        return self.server.auth_failures if self.server else self._auth_failures

    # -- messages --------------------------------------------------------------------------------

    def handle(self, parts: list) -> bool:
        """Validate and store one message (bytes or zmq.Frame parts); True when it was accepted."""
        staged = self._receive(parts)
        self.flush()
        return staged is not None and (staged is True or staged.accepted)

    def _receive(self, parts: list):
        """All checks of one message except the batched geometry: True for an accepted control
        message, a _Staged frame waiting for `flush()`, or None when rejected."""
        self.stats.messages += 1
        try:
            if len(parts) >= FRAME_PARTS:
                return self._frame(parts)
            if len(parts) == CONTROL_PARTS:
                self._control(_header_bytes(parts[0], self.transport.max_header_bytes))
                return True
            raise Reject("parts", f"{len(parts)} message parts; a frame has {FRAME_PARTS} or {FRAME_PARTS + 1}, a control message {CONTROL_PARTS}")
        except Reject as r:
            self._reject(r.reason, r.detail)
        except Exception as e:  # noqa: BLE001 - a bug must not stop the run; it is counted and shown
            log.exception("collector failed on a message")
            self._reject("internal", f"{type(e).__name__}: {e}")
        return None

    def flush(self) -> None:
        """Run the geometry checks over the staged frames at once, then store or reject each."""
        pending, self._pending = self._pending, []
        mask_problems = self._decode_masks(pending)
        by_shard: dict[int, list[_Staged]] = {}
        for st in pending:
            by_shard.setdefault(id(st.shard), []).append(st)
        for group in by_shard.values():
            shard = group[0].shard
            try:
                problems = check_geometry(shard.arrays, np.array([st.row for st in group]), self.expect)
            except Exception as e:  # noqa: BLE001 - as in _receive
                log.exception("collector failed on the geometry check")
                problems = {i: ("internal", f"{type(e).__name__}: {e}") for i in range(len(group))}
            for i, st in enumerate(group):
                if id(st) in mask_problems:
                    problems.setdefault(i, mask_problems[id(st)])
                if i in problems:
                    self.store.unstage(shard, st.row)
                    st.player.frames_rejected += 1
                    reason, detail = problems[i]
                    self._reject(reason, f"frame {shard.first + st.row}: {detail}")
                    continue
                self.store.accept(shard, st.row, st.header, st.image, st.encoding, st.subject, st.sequence, st.action, mask=st.mask)
                st.accepted = True
                st.player.frames_accepted += 1
                self.stats.frames_accepted += 1

    def _decode_masks(self, pending: list["_Staged"]) -> dict[int, tuple[str, str]]:
        """Decode the staged frames' masks (values 0/1, shape) and record their person pixel counts;
        {id(staged): (reason, detail)} for the masks that fail."""
        staged = [st for st in pending if st.mask is not None]
        if not staged:
            return {}
        def decode(chunk: list[_Staged]) -> list:
            return [_decode_mask(st.mask, st.mask_shape) for st in chunk]

        if self._mask_pool is None or len(staged) < 4:
            results = decode(staged)
        else:  # the pool's threads and this one each take an interleaved share (zlib releases the GIL)
            n = self._mask_pool._max_workers + 1
            chunks = [staged[k::n] for k in range(n)]
            futures = [self._mask_pool.submit(decode, c) for c in chunks[1:]]
            done = [decode(chunks[0]), *(f.result() for f in futures)]
            by_id = {id(st): r for c, rs in zip(chunks, done) for st, r in zip(c, rs)}
            results = [by_id[id(st)] for st in staged]
        problems = {}
        for st, result in zip(staged, results):
            if isinstance(result, str):
                problems[id(st)] = ("mask", f"frame {st.shard.first + st.row}: {result}")
            else:
                st.shard.arrays["mask_pixels"][st.row] = result
        return problems

    def _reject(self, reason: str, detail: str) -> None:
        n = self.stats.rejects[reason] = self.stats.rejects[reason] + 1
        if len(self.stats.reject_samples) < REJECT_SAMPLES:
            self.stats.reject_samples.append(f"{reason}: {detail}")
        log.log(logging.WARNING if n <= LOGGED_PER_REASON else logging.DEBUG, "rejected a message (%s): %s", reason, detail)

    def _parse(self, header: bytes, model):
        try:
            return model.model_validate_json(header) if model is not None else decode_control(header)
        except ValidationError as e:
            errors = e.errors(include_url=False)
            if any(err["type"] == "json_invalid" for err in errors):
                raise Reject("json", describe_validation_error(e)) from None
            major = wrong_major(header)
            if major is not None or any(err.get("loc", ())[:1] == ("protocol",) for err in errors):
                raise Reject("version", f"protocol major version {major if major is not None else '?'}; this collector speaks 1.x") from None
            if model is FrameHeader and any(err.get("loc") == ("type",) for err in errors):
                raise Reject("parts", "a control message (type != 'frame') was sent with 2 parts") from None
            raise Reject("schema", describe_validation_error(e)) from None

    def _track(self, msg) -> PlayerState:
        """Run-id check and per-player sequence tracking, for every parsed message."""
        if self.expect.run_id is not None and msg.run_id != self.expect.run_id:
            raise Reject("run_id", f"run id {msg.run_id!r}; this run is {self.expect.run_id!r}")
        now = time.monotonic()
        p = self.players.get(msg.player_id)
        if p is None:
            p = self.players[msg.player_id] = PlayerState(msg.player_id, first_seen=now)
        p.last_seen = now
        if msg.seq < p.next_seq:
            if isinstance(msg, Hello) and msg.seq == 0:
                log.warning("player %s said hello again: it restarted with the same id", msg.player_id)
            else:
                raise Reject("seq", f"player {msg.player_id}: seq {msg.seq} after {p.next_seq - 1} (replayed or reordered)")
        elif msg.seq > p.next_seq:
            missing = msg.seq - p.next_seq
            p.gaps += missing
            self.stats.gaps += missing
            p.gap_events += 1
            log.log(logging.WARNING if p.gap_events <= LOGGED_PER_REASON else logging.DEBUG,
                    "player %s: %d message(s) missing before seq %d", msg.player_id, missing, msg.seq)
        p.next_seq = msg.seq + 1
        return p

    def _control(self, header: bytes) -> None:
        msg = self._parse(header, None)
        p = self._track(msg)
        if isinstance(msg, Hello):
            p.kind, p.pid, p.host, p.frames_planned = msg.player_kind, msg.pid, msg.host, msg.frames_planned
            log.info("player %s (%s, pid %d on %s) plans %d frames", msg.player_id, msg.player_kind, msg.pid, msg.host, msg.frames_planned)
        elif isinstance(msg, Heartbeat):
            p.frames_sent, p.frames_planned, p.fps_reported = msg.frames_sent, msg.frames_planned, msg.fps
        elif isinstance(msg, EndOfStream):
            self.flush()  # its frames, received just before, count as accepted or rejected now
            p.ended, p.frames_sent, p.ended_at_frame = True, msg.frames_sent, self.stats.frames_accepted
            if msg.frames_sent != p.frames_accepted:
                log.info("player %s sent %d frames, %d accepted", msg.player_id, msg.frames_sent, p.frames_accepted)
        elif isinstance(msg, ErrorMessage):
            log.log(logging.ERROR if msg.fatal else logging.WARNING, "player %s reports %s: %s", msg.player_id, msg.code, msg.message)
            if msg.fatal:
                p.failed = f"{msg.code}: {msg.message}"

    def _frame(self, parts: list) -> "_Staged":
        header = _header_bytes(parts[0], self.transport.max_header_bytes)
        h: FrameHeader = self._parse(header, FrameHeader)
        _check_part_count(h, len(parts))  # before the sequence number counts, as for any malformed message
        p = self._track(h)
        try:
            return self._stage_frame(h, header, parts[1], parts[2] if h.mask is not None else None, p)
        except Reject:
            p.frames_rejected += 1
            raise

    def _stage_frame(self, h: FrameHeader, header: bytes, image_part, mask_part, player: PlayerState) -> "_Staged":
        expect = self.expect
        if expect.seed is not None and h.seed != expect.seed:
            raise Reject("seed", f"frame {h.frame_id}: seed {h.seed}; this run uses {expect.seed}")
        if h.frame_id >= expect.frames:
            raise Reject("frame_range", f"frame id {h.frame_id} outside 0..{expect.frames - 1}")
        info = h.image
        width, height = h.camera.image_size
        if (info.shape[1], info.shape[0]) != (width, height):
            raise Reject("image_shape", f"frame {h.frame_id}: image shape {list(info.shape)} but camera.image_size {[width, height]}")
        if expect.image_size is not None and (width, height) != tuple(expect.image_size):
            raise Reject("image_shape", f"frame {h.frame_id}: {width}x{height}; this run renders {expect.image_size[0]}x{expect.image_size[1]}")
        if info.encoding not in expect.encodings:
            raise Reject("image_encoding", f"frame {h.frame_id}: encoding {info.encoding}; this run accepts {list(expect.encodings)}")
        image = _buffer(image_part)
        if image.nbytes != info.size_bytes:
            raise Reject("image_length", f"frame {h.frame_id}: image part has {image.nbytes} bytes, header says {info.size_bytes}")
        self.stats.bytes_received += image.nbytes + len(header)
        crc = zlib.crc32(image)
        if crc != info.crc32:
            raise Reject("checksum", f"frame {h.frame_id}: image CRC-32 {crc} != {info.crc32}")
        try:
            probe_image(info.encoding, image, info.shape)
        except ImageProbeError as e:
            raise Reject("image_decode", f"frame {h.frame_id}: {e}") from None
        if mask_part is not None:
            _check_mask_part(h, mask_part)  # its length, CRC-32 and PNG structure; decoded in flush()
            self.stats.bytes_received += _buffer(mask_part).nbytes

        try:
            shard, row = self.store.stage(h.frame_id)
        except DuplicateFrame as e:
            raise Reject("duplicate", str(e)) from None
        a = shard.arrays
        for key, value in header_arrays(h).items():
            a[key][row] = value
        a["image_crc32"][row] = crc
        if mask_part is not None:
            a["mask_crc32"][row] = h.mask.crc32
        names = header_strings(h)
        staged = _Staged(shard, row, header, image_part, info.encoding, *names, player, mask=mask_part, mask_shape=(height, width))
        self._pending.append(staged)
        return staged


def header_arrays(h: FrameHeader) -> dict:
    """The per-frame arrays of a shard's .npz that a frame header determines (store.FRAME_ARRAYS;
    the store adds the ids, offsets and checksums). bridge.dataset_report.verify_dataset compares
    stored shards against it."""
    cam = h.camera
    return {
        "K": cam.K, "R": cam.R, "t": cam.t, "image_size": cam.image_size,
        "joints_2d": h.joints_2d, "joints_3d": h.joints_3d, "joints_3d_world": h.joints_3d_world,
        "joints_2d_right": h.joints_2d_right, "visibility": h.visibility, "baseline_mm": h.baseline_mm,
        "source_frame": h.source.frame if h.source.kind == "clip" else -1,
    }  # fmt: skip


def header_strings(h: FrameHeader) -> tuple[str, str, str]:
    """(subject, sequence, action) of a frame: the clip's, or "prior" for prior poses."""
    src = h.source
    return (src.subject, src.clip, src.action) if src.kind == "clip" else ("prior", "prior", "prior")


@dataclasses.dataclass
class _Staged:
    """A frame that passed every per-message check, waiting for the batched geometry check."""

    shard: OpenShard
    row: int
    header: bytes
    image: object
    encoding: str
    subject: str
    sequence: str
    action: str
    player: PlayerState
    mask: object = None  # the mask part (bytes or zmq.Frame), None when the frame has none
    mask_shape: tuple[int, int] = (0, 0)  # (height, width) it must decode to
    accepted: bool = False


def _buffer(part) -> memoryview:
    return part.buffer if isinstance(part, zmq.Frame) else memoryview(part)


def _check_part_count(h: FrameHeader, n: int) -> None:
    """The parts a frame header announces: 2, or 3 with a mask. More are allowed only from a newer
    minor (parts it added, unknown here, are ignored); fewer, or unannounced extras, are refused."""
    expected = h.parts
    if n == expected or (n > expected and h.minor > PROTOCOL_MINOR):
        return
    what = "with a mask" if h.mask is not None else "without a mask"
    raise Reject("parts", f"frame {h.frame_id}: {n} message parts; a protocol {h.protocol} frame {what} has {expected}")


def _check_mask_part(h: FrameHeader, part) -> None:
    """The checks of a frame's mask part that need no decoding: shape, length, CRC-32, PNG structure."""
    info, width, height = h.mask, *h.camera.image_size
    data = _buffer(part)
    where = f"frame {h.frame_id}"
    if tuple(info.shape) != (height, width):
        raise Reject("mask", f"{where}: mask shape {list(info.shape)} but the image is {height}x{width} (rows x columns)")
    if data.nbytes != info.size_bytes:
        raise Reject("mask", f"{where}: mask part has {data.nbytes} bytes, header says {info.size_bytes}")
    crc = zlib.crc32(data)
    if crc != info.crc32:
        raise Reject("mask", f"{where}: mask CRC-32 {crc} != {info.crc32}")
    try:
        probe_png(data)  # signature, IHDR, chunk chain, IEND
    except ImageProbeError as e:
        raise Reject("mask", f"{where}: {e}") from None


def _decode_mask(part, shape: tuple[int, int]) -> int | str:
    """The mask's person pixel count, or why it is not a 0/1 greyscale PNG of `shape`."""
    try:
        return count_mask_pixels(_buffer(part), shape)
    except MaskError as e:
        return str(e)


def _header_bytes(part, limit: int) -> bytes:
    data = part.bytes if isinstance(part, zmq.Frame) else bytes(part)
    if len(data) > limit:
        raise Reject("header_size", f"header part of {len(data)} bytes exceeds the limit of {limit}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Reject("encoding", f"header is not UTF-8 ({e.reason} at byte {e.start})") from None
    return data


_I3 = np.eye(3, dtype=np.float32)


def check_geometry(a: dict[str, np.ndarray], rows: np.ndarray, expect: Expectations) -> dict[int, tuple[str, str]]:
    """Check staged rows of a shard's arrays at once: K is a pinhole matrix, R a rotation, and
    joints_3d, joints_2d, joints_2d_right and visibility agree with joints_3d_world and the camera.

    Returns {index into rows: (reason, detail)} for the rows that fail.
    """
    K, R, t = a["K"][rows], a["R"][rows], a["t"][rows]
    j3, jw, j2, jr = a["joints_3d"][rows], a["joints_3d_world"][rows], a["joints_2d"][rows], a["joints_2d_right"][rows]
    vis, size, baseline = a["visibility"][rows], a["image_size"][rows], a["baseline_mm"][rows]
    problems: dict[int, tuple[str, str]] = {}

    def flag(bad: np.ndarray, reason: str, detail) -> None:
        for i in np.flatnonzero(bad).tolist():
            problems.setdefault(i, (reason, detail(i)))

    flag(~is_pinhole(K), "camera", lambda i: "K is not a pinhole matrix [[fx,s,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0")
    rotation = (np.abs(R @ R.transpose(0, 2, 1) - _I3).max(axis=(1, 2)) <= 1e-4) & (np.linalg.det(R) > 0)
    flag(~rotation, "camera", lambda i: "R is not a rotation (orthonormal, det +1)")

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        err_mm = np.abs(world_to_camera(jw, R, t) - j3)
        flag((err_mm > expect.tolerance_mm + 1e-5 * np.abs(j3)).any(axis=(1, 2)), "geometry",
             lambda i: f"joints_3d != R joints_3d_world + t (off by up to {err_mm[i].max():.3g} mm)")
        z = j3[..., 2]
        front = z > 1.0
        for name, pts, expected in (
            ("joints_2d", j2, project_points(j3, K)),
            ("joints_2d_right", jr, project_points(right_view_points(j3, baseline), K)),
        ):
            err_px = np.where(front[..., None], np.abs(expected - pts), 0.0)
            bad = (err_px > expect.tolerance_px + 1e-5 * np.abs(pts)).any(axis=(1, 2))
            flag(bad, "geometry", lambda i, e=err_px, n=name: f"{n} is not the projection of joints_3d (off by up to {np.nanmax(e[i]):.3g} px)")
    # One pixel of slack either way: float32 rounding may move a joint across the border.
    inside_loose = in_image(j2 + 1.0, size + 2, z)
    inside_tight = in_image(j2 - 1.0, size - 2, z)
    bad = ((vis > 0) & ~inside_loose).any(axis=1) | ((vis == 0) & inside_tight).any(axis=1)
    flag(bad, "visibility", lambda i: f"visibility {vis[i].tolist()} disagrees with which joints are in the image")
    return problems
