"""The dataset folder: WebDataset tar shards, their keypoints as arrays, and a manifest.

Layout (docs/conventions.md, "Dataset folder"):

    DIR/manifest.json              run config, its hash, counts, shard list, run history
    DIR/shard-000000.tar           {key}.json (the frame header as received) + {key}.jpg|png|npy
    DIR/shard-000000.npz           the shard's keypoints: pairs v1 keys + frame_id and extras
    DIR/pairs.npz                  all keypoints in frame-id order (written when the set is complete)

Frame ids run 0..N-1; shard k holds exactly frame ids [k*S, min((k+1)*S, N)) in increasing order,
so the folder's content depends on (config, seed, N, S) only, never on which player rendered
what or in which order frames arrived.

Commits are atomic: a shard is assembled in memory, written to a hidden temporary name,
fsynced, and renamed into place, its .npz first and then its .tar (the commit point), and the
folder is fsynced. A reader never sees a partial shard; a killed writer leaves at most
temporary files, which the next open removes. Resuming scans the committed shards and reports
the frame ids still missing. Commits run on a writer thread so that receiving never waits for
the disk (a bounded queue applies back-pressure when the disk is slower than the players).
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import hashlib
import io
import json
import logging
import os
import queue
import re
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .pairs_io import Pairs, _fsync_dir, read_pairs_arrays, save_pairs, validate_pairs
from .skeleton import NUM_JOINTS

log = logging.getLogger(__name__)

STORE_FORMAT = "posebridge-dataset"
STORE_VERSION = 1
MANIFEST_NAME = "manifest.json"
PAIRS_CACHE_NAME = "pairs.npz"
LOCK_NAME = ".lock"
DEFAULT_SHARD_SIZE = 1000
IMAGE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "raw": "npy"}
_SHARD_RE = re.compile(r"^shard-(\d{6,})\.(tar|npz)$")
_IOV_MAX = 1024

# Per-frame arrays of a shard's .npz: name -> (dtype, shape of one frame).
FRAME_ARRAYS: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
    "frame_id": (np.dtype(np.int64), ()),
    "joints_2d": (np.dtype(np.float32), (NUM_JOINTS, 2)),
    "joints_3d": (np.dtype(np.float32), (NUM_JOINTS, 3)),
    "joints_3d_world": (np.dtype(np.float32), (NUM_JOINTS, 3)),
    "joints_2d_right": (np.dtype(np.float32), (NUM_JOINTS, 2)),
    "visibility": (np.dtype(np.uint8), (NUM_JOINTS,)),
    "K": (np.dtype(np.float32), (3, 3)),
    "image_size": (np.dtype(np.int32), (2,)),
    "R": (np.dtype(np.float32), (3, 3)),
    "t": (np.dtype(np.float32), (3,)),
    "baseline_mm": (np.dtype(np.float32), ()),
    "source_frame": (np.dtype(np.int64), ()),  # frame within the clip, -1 for the prior
    "image_crc32": (np.dtype(np.uint32), ()),
    "image_offset": (np.dtype(np.int64), ()),  # byte offset of the image data inside the shard's tar
    "image_bytes": (np.dtype(np.int64), ()),
}
FRAME_STRINGS = ("subject", "sequence", "action", "image_ext")


class StoreError(RuntimeError):
    """The dataset folder cannot be used as asked; the message names the folder and the fix."""


class DuplicateFrame(StoreError):
    """The frame id is already stored or buffered."""


# ------------------------------------------------------------------------------------------------
# manifest


class ShardRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # "shard-000000" (+ .tar / .npz)
    first_frame: int
    count: int
    tar_bytes: int


class RunRecord(BaseModel):
    """One invocation of `posebridge generate` on this folder."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    started: str
    finished: str | None = None
    status: Literal["running", "complete", "stopped", "interrupted", "failed"] = "running"
    frames_stored: int = 0
    rejects: dict[str, int] = Field(default_factory=dict)  # reason -> count
    reject_samples: list[str] = Field(default_factory=list)  # the first few reasons, verbatim
    gaps: int = 0  # messages missing from the players' sequence numbers
    players_started: int = 0
    players_restarted: int = 0
    auth_failures: int = 0


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["posebridge-dataset"] = STORE_FORMAT
    format_version: int = STORE_VERSION
    posebridge_version: str
    created: str
    config: dict[str, Any]  # what determines the content (seed, scene, image size, shard size, ...)
    config_hash: str
    frames: int  # the target N: frame ids 0..N-1
    shard_size: int
    frames_stored: int = 0
    complete: bool = False
    shards: list[ShardRecord] = Field(default_factory=list)
    runs: list[RunRecord] = Field(default_factory=list)


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of a content config."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def config_differences(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every leaf that differs (dotted keys)."""
    a, b = _flatten(json.loads(json.dumps(old, default=str))), _flatten(json.loads(json.dumps(new, default=str)))
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _posebridge_version() -> str:
    try:
        from importlib.metadata import version

        return version("posebridge")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "unknown"


def read_manifest(folder: str | Path) -> Manifest:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise StoreError(f"{folder}: no {MANIFEST_NAME}; not a posebridge dataset folder")
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except ValueError as e:
        raise StoreError(f"{path}: unreadable manifest ({e})") from e


def atomic_write(path: Path, data: bytes | list) -> None:
    """Write bytes (or a list of buffers) to a hidden temporary name, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, [data] if isinstance(data, (bytes, bytearray, memoryview)) else data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_all(fd: int, buffers: list) -> None:
    for start in range(0, len(buffers), _IOV_MAX):
        chunk = [memoryview(b).cast("B") for b in buffers[start : start + _IOV_MAX]]
        total = sum(len(b) for b in chunk)
        written = os.writev(fd, chunk)
        if written < total:  # short write (rare on regular files): finish it the slow way
            rest = b"".join(bytes(b) for b in chunk)[written:]
            while rest:
                rest = rest[os.write(fd, rest) :]


# ------------------------------------------------------------------------------------------------
# tar members (POSIX ustar), written directly so a shard is one writev of prebuilt buffers


def _tar_header(name: str, size: int, mtime: int) -> bytes:
    h = bytearray(512)
    raw = name.encode()
    if len(raw) > 100:
        raise ValueError(f"tar member name too long: {name}")
    h[0 : len(raw)] = raw
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"%011o\0" % mtime
    h[148:156] = b" " * 8
    h[156:157] = b"0"
    h[257:265] = b"ustar\x0000"
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def _tar_padding(size: int) -> bytes:
    return b"\0" * (-size % 512)


def frame_key(frame_id: int) -> str:
    """The WebDataset key of a frame: its id, zero-padded to 9 digits."""
    return f"{int(frame_id):09d}"


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


# ------------------------------------------------------------------------------------------------
# the plan: which frame ids each shard holds


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    frames: int
    shard_size: int

    @property
    def shard_count(self) -> int:
        return -(-self.frames // self.shard_size)

    def bounds(self, index: int) -> tuple[int, int]:
        """(first frame id, count) of shard `index`."""
        first = index * self.shard_size
        return first, min(self.shard_size, self.frames - first)

    def shard_of(self, frame_id: int) -> int:
        return frame_id // self.shard_size


class OpenShard:
    """A shard being filled: preallocated arrays (one row per planned frame) and the tar members."""

    def __init__(self, index: int, first: int, count: int):
        self.index = index
        self.first = first
        self.count = count
        self.arrays = {k: np.zeros((count, *shape), dtype=dt) for k, (dt, shape) in FRAME_ARRAYS.items()}
        self.arrays["frame_id"][:] = np.arange(first, first + count)
        self.arrays["source_frame"][:] = -1
        self.strings: dict[str, list[str]] = {k: [""] * count for k in FRAME_STRINGS}
        self.headers: list[bytes | None] = [None] * count
        self.images: list[Any] = [None] * count  # bytes or zmq.Frame (received without copying)
        self.n_filled = 0

    @property
    def complete(self) -> bool:
        return self.n_filled == self.count


# ------------------------------------------------------------------------------------------------
# the store


class DatasetStore:
    """Writes frames into a dataset folder, resuming from what is committed there.

    `open()` creates or resumes the folder (and takes its lock); `stage()` gives the open shard
    and row a frame goes to, the caller fills `shard.arrays[key][row]`, and `accept()` marks it
    stored. A shard is committed as soon as its last frame is accepted.
    """

    def __init__(self, folder: Path, manifest: Manifest, committed: np.ndarray, lock_fd: int, run_id: str):
        self.folder = folder
        self.manifest = manifest
        self.plan = ShardPlan(manifest.frames, manifest.shard_size)
        self.committed = committed  # bool (N,): in a committed shard
        self.received = committed.copy()  # bool (N,): committed, queued for commit, or in an open shard
        self.open_shards: dict[int, OpenShard] = {}
        self.run = RunRecord(run_id=run_id, started=_now())
        manifest.runs.append(self.run)
        self._lock_fd = lock_fd
        self._manifest_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._writer_error: BaseException | None = None
        self._writer = threading.Thread(target=self._writer_loop, name="shard-writer", daemon=True)
        self._writer.start()
        self._closed = False
        self._write_manifest()

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, config: dict, frames: int, shard_size: int = DEFAULT_SHARD_SIZE, run_id: str = "run") -> "DatasetStore":
        """Create `folder`, or resume it when its manifest has the same content config.

        Raises StoreError when the folder was made with a different config, holds shards that
        do not fit the plan for `frames`, is locked by another writer, or is not a dataset folder.
        """
        folder = Path(folder)
        if frames < 1 or shard_size < 1:
            raise StoreError(f"{folder}: frames ({frames}) and shard size ({shard_size}) must be positive")
        folder.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(folder)
        try:
            manifest = cls._load_or_create_manifest(folder, config, frames, shard_size)
            committed, shards = _scan(folder, ShardPlan(frames, shard_size))
            manifest.shards = shards
            manifest.frames_stored = int(committed.sum())
            manifest.complete = bool(committed.all())
            for run in manifest.runs:
                if run.status == "running":
                    run.status = "interrupted"
            return cls(folder, manifest, committed, lock_fd, run_id)
        except BaseException:
            os.close(lock_fd)
            raise

    @staticmethod
    def _load_or_create_manifest(folder: Path, config: dict, frames: int, shard_size: int) -> Manifest:
        digest = config_hash(config)
        path = folder / MANIFEST_NAME
        if path.exists():
            manifest = read_manifest(folder)
            if manifest.format_version != STORE_VERSION:
                raise StoreError(f"{folder}: dataset format version {manifest.format_version}; this posebridge writes {STORE_VERSION}")
            if manifest.config_hash != digest:
                diff = config_differences(manifest.config, config)
                raise StoreError(
                    f"{folder} was generated with a different configuration, so its frames would not match; "
                    f"use the same arguments to resume, or a new --out folder. Differences (stored -> requested): "
                    + "; ".join(diff[:12])
                )
            if manifest.shard_size != shard_size:
                raise StoreError(f"{folder}: shard size {manifest.shard_size} is stored; requested {shard_size}")
            manifest.frames = frames
            return manifest
        leftovers = [p.name for p in folder.iterdir() if not p.name.startswith(".")]
        if any(_SHARD_RE.match(n) for n in leftovers):
            raise StoreError(f"{folder}: holds shards but no {MANIFEST_NAME}; restore the manifest or use a new folder")
        if leftovers:
            raise StoreError(f"{folder}: not empty and not a posebridge dataset folder ({', '.join(sorted(leftovers)[:5])}); use a new folder")
        return Manifest(
            posebridge_version=_posebridge_version(),
            created=_now(),
            config=config,
            config_hash=digest,
            frames=frames,
            shard_size=shard_size,
        )

    # -- frames ----------------------------------------------------------------------------------

    def missing_frame_ids(self) -> np.ndarray:
        """Frame ids not yet received (neither committed nor buffered), ascending."""
        return np.flatnonzero(~self.received)

    @property
    def complete(self) -> bool:
        return bool(self.committed.all())

    def stage(self, frame_id: int) -> tuple[OpenShard, int]:
        """Reserve `frame_id`: the open shard and row it goes to; DuplicateFrame if it is taken.

        The caller fills `shard.arrays[key][row]`, then calls `accept()` or, when a later check
        fails, `unstage()`.
        """
        self._raise_writer_error()
        if self.received[frame_id]:
            raise DuplicateFrame(f"frame {frame_id} is already stored")
        index = self.plan.shard_of(frame_id)
        shard = self.open_shards.get(index)
        if shard is None:
            first, count = self.plan.bounds(index)
            shard = self.open_shards[index] = OpenShard(index, first, count)
        self.received[frame_id] = True
        return shard, frame_id - shard.first

    def unstage(self, shard: OpenShard, row: int) -> None:
        """Release a staged row that failed a check."""
        self.received[shard.first + row] = False

    def accept(self, shard: OpenShard, row: int, header: bytes, image, encoding: str, subject: str, sequence: str, action: str) -> None:
        """Mark a staged row stored (its arrays must be filled); commits the shard when it is full."""
        shard.headers[row] = header
        shard.images[row] = image
        s = shard.strings
        s["subject"][row] = subject
        s["sequence"][row] = sequence
        s["action"][row] = action
        s["image_ext"][row] = IMAGE_EXTENSIONS[encoding]
        shard.n_filled += 1
        self.run.frames_stored += 1
        if shard.complete:
            del self.open_shards[shard.index]
            self._queue.put(shard)  # blocks while two shards wait for the disk: back-pressure

    def discard_open_shards(self) -> int:
        """Drop the frames of shards that are not complete (they are not committed); returns how many."""
        n = 0
        for shard in self.open_shards.values():
            self.received[shard.first : shard.first + shard.count] = False
            n += shard.n_filled
        self.open_shards.clear()
        self.run.frames_stored -= n
        return n

    # -- committing ------------------------------------------------------------------------------

    def _writer_loop(self) -> None:
        while True:
            shard = self._queue.get()
            if shard is None:
                return
            try:
                if self._writer_error is None:
                    self._commit(shard)
            except BaseException as e:  # noqa: BLE001 - reported to the receiving thread
                log.error("cannot commit %s: %s", shard_name(shard.index), e)
                self._writer_error = e

    def _raise_writer_error(self) -> None:
        if self._writer_error is not None:
            raise StoreError(f"{self.folder}: writing a shard failed: {self._writer_error}") from self._writer_error

    def _commit(self, shard: OpenShard) -> None:
        name = shard_name(shard.index)
        mtime = int(time.time())
        buffers: list = []
        offset = 0
        for row in range(shard.count):
            key = frame_key(shard.first + row)
            header = shard.headers[row]
            image = shard.images[row]
            ext = shard.strings["image_ext"][row]
            if ext == "npy":  # raw pixels become a .npy that WebDataset and numpy decode as is
                image = _npy_bytes(image, shard.arrays["image_size"][row])
            hlen, ilen = len(header), memoryview(image).nbytes
            hpad, ipad = _tar_padding(hlen), _tar_padding(ilen)
            buffers += [_tar_header(f"{key}.json", hlen, mtime), header, hpad, _tar_header(f"{key}.{ext}", ilen, mtime), image, ipad]
            shard.arrays["image_offset"][row] = offset + 512 + hlen + len(hpad) + 512
            shard.arrays["image_bytes"][row] = ilen
            offset += 512 + hlen + len(hpad) + 512 + ilen + len(ipad)
        buffers.append(b"\0" * 1024)  # end-of-archive
        tar_bytes = offset + 1024

        arrays = dict(shard.arrays)
        for k, values in shard.strings.items():
            arrays[k] = np.array(values, dtype=str)
        validate_pairs(arrays, source=f"{self.folder / name}.npz")  # a last consistency check before it lands
        npz = io.BytesIO()
        np.savez(npz, **arrays, skeleton=np.array("h36m17"), pairs_version=np.array(1, dtype=np.int32))
        atomic_write(self.folder / f"{name}.npz", npz.getbuffer())
        atomic_write(self.folder / f"{name}.tar", buffers)  # the commit point
        self.committed[shard.first : shard.first + shard.count] = True
        with self._manifest_lock:
            self.manifest.shards.append(ShardRecord(name=name, first_frame=shard.first, count=shard.count, tar_bytes=tar_bytes))
            self.manifest.shards.sort(key=lambda s: s.first_frame)
            self.manifest.frames_stored += shard.count
            self.manifest.complete = bool(self.committed.all())
        self._write_manifest()
        log.debug("committed %s (%d frames)", name, shard.count)

    def _write_manifest(self) -> None:
        with self._manifest_lock:
            data = self.manifest.model_dump_json(indent=2).encode()
        atomic_write(self.folder / MANIFEST_NAME, data)

    def update_run(self, **fields) -> None:
        """Set fields of this run's record (rejects, gaps, ...); written with the next commit or close."""
        with self._manifest_lock:
            for k, v in fields.items():
                setattr(self.run, k, v)

    def close(self, status: Literal["complete", "stopped", "failed"] | None = None) -> None:
        """Commit what is queued, drop open shards, write the manifest (and pairs.npz when complete)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._writer.join()
        dropped = self.discard_open_shards()
        if dropped:
            log.info("%d frames of incomplete shards were not committed; a rerun renders them again", dropped)
        if self._writer_error is not None:
            status = "failed"
        with self._manifest_lock:
            self.run.finished = _now()
            self.run.status = "complete" if self.complete else ("stopped" if status in (None, "complete") else status)
        try:
            self._write_manifest()
            cache = self.folder / PAIRS_CACHE_NAME
            if self.complete and self._writer_error is None and (self.run.frames_stored > 0 or not cache.exists()):
                export_pairs(self.folder, cache)
        finally:
            os.close(self._lock_fd)
        self._raise_writer_error()

    def __enter__(self) -> "DatasetStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("failed" if exc_type is not None else None)


def _npy_bytes(raw, image_size: np.ndarray) -> bytes:
    w, h = int(image_size[0]), int(image_size[1])
    pixels = np.frombuffer(raw, dtype=np.uint8)
    buf = io.BytesIO()
    np.save(buf, pixels.reshape(h, w, -1))
    return buf.getvalue()


def _lock(folder: Path) -> int:
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
        os.close(fd)
        raise StoreError(f"{folder}: another writer holds the folder (pid {holder or '?'}); wait for it or use a new folder") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _scan(folder: Path, plan: ShardPlan) -> tuple[np.ndarray, list[ShardRecord]]:
    """Committed frames and shard records from the files; removes leftovers of interrupted commits."""
    for p in folder.glob(".shard-*.tmp"):
        log.info("removing %s, left by an interrupted commit", p.name)
        p.unlink()
    tars = {int(m.group(1)) for p in folder.iterdir() if (m := _SHARD_RE.match(p.name)) and m.group(2) == "tar"}
    for p in folder.glob("shard-*.npz"):
        m = _SHARD_RE.match(p.name)
        if m and int(m.group(1)) not in tars:
            log.info("removing %s: its shard's commit was interrupted", p.name)
            p.unlink()
    committed = np.zeros(plan.frames, dtype=bool)
    records = []
    for index in sorted(tars):
        name = shard_name(index)
        npz = folder / f"{name}.npz"
        if not npz.is_file():
            raise StoreError(f"{folder / name}.tar has no keypoints file {npz.name}; the folder was modified. Delete the .tar to render it again")
        first, count = plan.bounds(index) if index < plan.shard_count else (index * plan.shard_size, 0)
        with np.load(npz) as z:
            ids = z["frame_id"]
        if count <= 0 or len(ids) != count or ids[0] != first or ids[-1] != first + count - 1:
            raise StoreError(
                f"{folder / name}.tar holds frames {ids[0]}..{ids[-1]}, which do not fit {plan.frames} frames in shards of "
                f"{plan.shard_size}; pass the --frames of the run that made it (or a multiple of the shard size beyond it)"
            )
        committed[first : first + count] = True
        records.append(ShardRecord(name=name, first_frame=first, count=count, tar_bytes=(folder / f"{name}.tar").stat().st_size))
    return committed, records


# ------------------------------------------------------------------------------------------------
# reading


def shard_paths(folder: str | Path) -> list[tuple[Path, Path]]:
    """(tar, npz) of every committed shard, in frame-id order."""
    folder = Path(folder)
    out = []
    for p in sorted(folder.glob("shard-*.tar")):
        if _SHARD_RE.match(p.name):
            out.append((p, p.with_suffix(".npz")))
    return out


def _shard_arrays(folder: str | Path, shards: list[tuple[Path, Path]], keys: tuple[str, ...] | None) -> dict[str, list[np.ndarray]]:
    """{key: one array per shard} of `shards`' .npz files (all keys, or `keys`)."""
    parts: dict[str, list[np.ndarray]] = {}
    for _, npz in shards:
        with np.load(npz, allow_pickle=False) as z:
            for k in keys or [k for k in z.files if k not in ("skeleton", "pairs_version")]:
                parts.setdefault(k, []).append(z[k])
    if not parts:
        raise StoreError(f"{folder}: no committed shards")
    return parts


def load_dataset_arrays(folder: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every committed frame's arrays (all npz keys, or `keys`), concatenated in frame-id order."""
    return {k: np.concatenate(v) for k, v in _shard_arrays(folder, shard_paths(folder), keys).items()}


class DatasetReader:
    """Random access to a dataset folder's frames: their arrays in frame-id order, and each image
    by one seek and read in its shard's tar (the .npz records where every image sits).

    Used by the PyTorch `FrameDataset` and the desktop viewer. File handles are per process, so a
    reader can be shared with DataLoader workers.
    """

    IMAGE_KEYS = ("image_offset", "image_bytes", "image_ext")

    def __init__(self, folder: str | Path, keys: tuple[str, ...] | None = None):
        self._files: dict[int, Any] = {}
        self._pid = os.getpid()
        self.folder = Path(folder)
        shards = shard_paths(self.folder)
        if not shards:
            raise StoreError(f"{self.folder}: no committed shards")
        self.tars = [str(tar) for tar, _ in shards]
        wanted = None if keys is None else tuple(dict.fromkeys((*keys, "frame_id", *self.IMAGE_KEYS)))
        parts = _shard_arrays(self.folder, shards, wanted)
        self.arrays = {k: np.concatenate(v) for k, v in parts.items()}
        self.shard_of_row = np.repeat(np.arange(len(shards)), [len(ids) for ids in parts["frame_id"]])

    def __len__(self) -> int:
        return len(self.shard_of_row)

    def _file(self, shard: int):
        if os.getpid() != self._pid:  # a forked worker: do not share the parent's file offsets
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            f = self._files[shard] = open(self.tars[shard], "rb")
        return f

    def image_data(self, index: int) -> tuple[bytes, str]:
        """The stored (encoded) bytes of frame `index`'s image and their extension (jpg, png, npy)."""
        a = self.arrays
        f = self._file(int(self.shard_of_row[index]))
        offset, nbytes = int(a["image_offset"][index]), int(a["image_bytes"][index])
        f.seek(offset)
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise StoreError(f"{self.tars[self.shard_of_row[index]]}: image at byte {offset} is cut short ({len(data)} of {nbytes} bytes)")
        return data, str(a["image_ext"][index])

    def image(self, index: int) -> np.ndarray:
        """(H, W, C) uint8 pixels of frame `index` (row in frame-id order)."""
        return decode_image(*self.image_data(index))

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def __del__(self) -> None:
        self.close()


def decode_image(data: bytes, ext: str) -> np.ndarray:
    """(H, W, C) uint8 pixels of a stored image (.jpg/.png through Pillow, .npy through numpy)."""
    if ext == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))


_PAIRS_KEYS = ("joints_2d", "joints_3d", "K", "image_size", "visibility", "joints_2d_right", "baseline_mm", "subject", "sequence", "action")


def export_pairs(folder: str | Path, out: str | Path) -> Path:
    """Write every committed frame as a pairs v1 file (frame-id order), with visibility, the right
    view, provenance strings, and `frame_id` as an extra key."""
    arrays = load_dataset_arrays(folder, (*_PAIRS_KEYS, "frame_id"))
    return save_pairs(out, validate_pairs(arrays, source=str(folder)), extra={"frame_id": arrays["frame_id"]})


def load_dataset_pairs(folder: str | Path, mmap: bool = False) -> Pairs:
    """The folder's keypoints as pairs v1, in frame-id order; no image is read.

    mmap=True memory-maps `pairs.npz` (written when the dataset is complete) when it is current,
    and otherwise concatenates the shards in memory.
    """
    folder = Path(folder)
    if mmap:
        cache = folder / PAIRS_CACHE_NAME
        if cache.is_file():
            cached = read_pairs_arrays(cache, mmap=True)
            ids = cached.get("frame_id")
            stored = load_dataset_arrays(folder, ("frame_id",))["frame_id"]
            if ids is not None and len(ids) == len(stored) and np.array_equal(ids, stored):
                return validate_pairs(cached, source=str(cache))  # what load_pairs(cache, mmap=True) does
        log.info("%s: no current %s to memory-map; loading the shards", folder, PAIRS_CACHE_NAME)
    return validate_pairs(load_dataset_arrays(folder, _PAIRS_KEYS), source=str(folder))
