"""The dataset folder: WebDataset tar shards, their keypoints as arrays, and a manifest.

Layout (docs/conventions.md, "Dataset folder"):

    DIR/manifest.json              run config, its hash, counts, shard list, run history
    DIR/shard-000000.tar           {key}.json (the frame header as received) + {key}.jpg|png|npy
                                   [+ {key}.mask.png, the person mask, when the frame has one]
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

Nothing on disk is trusted blindly: the manifest carries its own checksum and each shard's
.npz sha256; every reader checks each shard it uses (`scan_dataset`: the .npz whole, the .tar's
size) and raises StoreError naming the damaged file; the writer's open also walks each tar's
index, moves damaged shards aside into `quarantine/` and renders them again. Reading an image
checks its CRC-32. bridge.dataset_report.verify_dataset re-reads everything.

The folder may also be an fsspec URL (`s3://bucket/prefix`; generator/storage.py). An object PUT
is atomic and there is no rename, so there a shard's .npz and .tar are written first and a small
record object, `records/shard-000000.json`, last: the record is the commit point, and readers
list the records. Each writer (one collector per node) keeps its run in `runs/{run_id}.json`
and never rewrites a shared object, so the manifest a reader sees is merged from the listing
and no update is lost (docs/conventions.md, "Datasets on object storage").
"""

from __future__ import annotations

import dataclasses
import datetime
import fcntl
import hashlib
import io
import json
import logging
import math
import mmap
import os
import queue
import re
import threading
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import UserError
from .outputs import claim_output, clear_folder
from .pairs_io import Pairs, _fsync_dir, read_pairs_arrays, save_pairs, validate_pairs
from .skeleton import NUM_JOINTS
from .storage import Storage, StorageUnavailable, open_storage

log = logging.getLogger(__name__)

STORE_FORMAT = "posebridge-dataset"
STORE_VERSION = 2  # 2: person masks, header CRC-32s, manifest and shard checksums
MANIFEST_NAME = "manifest.json"
PAIRS_CACHE_NAME = "pairs.npz"
LOCK_NAME = ".lock"
QUARANTINE_DIR = "quarantine"  # damaged shards are moved here (never deleted) and rendered again
RECORDS_DIR = "records"  # object storage: one commit record per shard, written last
RUNS_DIR = "runs"  # object storage: one run record per writer
DEFAULT_SHARD_SIZE = 1000
IMAGE_EXTENSIONS = {"jpeg": "jpg", "png": "png", "raw": "npy"}
# A frame's tar members, in this order: {key}.json, {key}.<image ext>, and {key}.mask.png when the
# frame has a person mask (`frame_members` is the one place that lists them).
HEADER_EXT = "json"
MASK_EXT = "mask.png"
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
    "header_crc32": (np.dtype(np.uint32), ()),  # of the {key}.json member's bytes (set by the store at commit)
    "image_offset": (np.dtype(np.int64), ()),  # byte offset of the image data inside the shard's tar
    "image_bytes": (np.dtype(np.int64), ()),
    "mask_offset": (np.dtype(np.int64), ()),  # byte offset of the mask PNG inside the tar; -1: no mask
    "mask_bytes": (np.dtype(np.int64), ()),  # 0: no mask
    "mask_crc32": (np.dtype(np.uint32), ()),
    "mask_pixels": (np.dtype(np.int64), ()),  # person pixels in the mask (counted by the collector); -1: no mask
}
# The mask arrays of a frame without a person mask.
ARRAY_DEFAULTS = {"mask_offset": -1, "mask_bytes": 0, "mask_crc32": 0, "mask_pixels": -1}
FRAME_STRINGS = ("subject", "sequence", "action", "image_ext")

# What a dataset folder may hold: `--overwrite` replaces a folder only when nothing else is there.
DATASET_FILES = (MANIFEST_NAME, "shard-*.tar", "shard-*.npz", PAIRS_CACHE_NAME, LOCK_NAME, QUARANTINE_DIR, ".run", ".*.tmp", "contact_sheet.png")


class StoreError(UserError, RuntimeError):
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
    npz_sha256: str | None = None  # of the .npz file; None in folders written before it was recorded


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
    quarantined: list[str] = Field(default_factory=list)  # damaged shards moved aside on open, with the reason


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
    checksum: str | None = None  # sha256 of the rest (manifest_checksum); None in older folders

    def with_checksum(self) -> "Manifest":
        return self.model_copy(update={"checksum": manifest_checksum(self)})


def manifest_checksum(manifest: Manifest) -> str:
    """sha256 of the manifest's canonical JSON without its checksum: any edit or damage shows."""
    return config_hash(manifest.model_dump(mode="json", exclude={"checksum"}))


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


def read_manifest(folder: str | Path | Storage) -> Manifest:
    """The folder's manifest, checked against its checksum and its config hash. On object storage
    its shards and runs are merged from the commit and run records."""
    storage = open_storage(folder)
    path = storage.child(MANIFEST_NAME)
    if not storage.exists(MANIFEST_NAME):
        raise StoreError(f"{storage}: no {MANIFEST_NAME}; not a posebridge dataset folder")
    try:
        manifest = Manifest.model_validate_json(storage.read_bytes(MANIFEST_NAME))
    except FileNotFoundError:
        raise StoreError(f"{storage}: no {MANIFEST_NAME}; not a posebridge dataset folder") from None
    except (ValueError, OSError) as e:
        if isinstance(e, StorageUnavailable):
            raise
        first = str(e).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise StoreError(f"{path}: unreadable manifest ({detail})") from None
    if manifest.checksum is not None and manifest.checksum != manifest_checksum(manifest):
        raise StoreError(f"{path}: the manifest does not match its checksum (edited or damaged); restore it, or generate into a new folder")
    if manifest.config_hash != config_hash(manifest.config):
        raise StoreError(f"{path}: the config does not match its config_hash (edited or damaged); restore it, or generate into a new folder")
    if manifest.frames < 1 or manifest.shard_size < 1:
        raise StoreError(f"{path}: frames ({manifest.frames}) and shard_size ({manifest.shard_size}) must be positive")
    if not storage.local:
        _merge_records(storage, manifest)
    return manifest


def _merge_records(storage: Storage, manifest: Manifest) -> None:
    """Object storage: the shards are those with a commit record, the runs those with a run record
    (the manifest object holds neither: no writer rewrites what another wrote)."""
    manifest.shards = object_records(storage)
    runs = {r.run_id: r for r in manifest.runs}
    for name in storage.names(RUNS_DIR):
        if name.endswith(".json"):
            try:
                run = RunRecord.model_validate_json(storage.read_bytes(f"{RUNS_DIR}/{name}"))
            except (ValueError, FileNotFoundError):
                log.warning("%s: unreadable run record %s; skipped", storage, name)
                continue
            runs[run.run_id] = run
    manifest.runs = sorted(runs.values(), key=lambda r: r.started)
    plan = ShardPlan(manifest.frames, manifest.shard_size)
    covered = np.zeros(manifest.frames, dtype=bool)
    for r in manifest.shards:
        covered[r.first_frame : r.first_frame + r.count] = True
    manifest.frames_stored = int(covered.sum())
    manifest.complete = bool(covered.all()) and len(manifest.shards) >= plan.shard_count


def object_records(storage: Storage) -> list[ShardRecord]:
    """The commit records of an object-storage dataset, in frame-id order."""
    records = []
    for name in storage.names(RECORDS_DIR):
        if _SHARD_RE.match(name[: -len(".json")] + ".tar") and name.endswith(".json"):
            try:
                records.append(ShardRecord.model_validate_json(storage.read_bytes(f"{RECORDS_DIR}/{name}")))
            except ValueError as e:
                raise StoreError(f"{storage.child(RECORDS_DIR + '/' + name)}: unreadable commit record ({str(e).splitlines()[0]})") from None
    return sorted(records, key=lambda r: r.first_frame)


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


def frame_members(frame_id: int, image_ext: str, has_mask: bool) -> list[str]:
    """The tar member names of one frame, in the order they are written."""
    key = frame_key(frame_id)
    return [f"{key}.{HEADER_EXT}", f"{key}.{image_ext}", *([f"{key}.{MASK_EXT}"] if has_mask else [])]


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
        for k, v in ARRAY_DEFAULTS.items():
            self.arrays[k][:] = v
        self.strings: dict[str, list[str]] = {k: [""] * count for k in FRAME_STRINGS}
        self.headers: list[bytes | None] = [None] * count
        self.images: list[Any] = [None] * count  # bytes or zmq.Frame (received without copying)
        self.masks: list[Any] = [None] * count  # the mask PNG (bytes or zmq.Frame), None without one
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

    def __init__(self, folder: Path | str, manifest: Manifest, committed: np.ndarray, lock_fd: int | None, run_id: str, storage: Storage | None = None):
        self.storage = storage or open_storage(folder)
        self.folder = folder  # a Path, or the URL of a dataset on object storage
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
        self._manifest_written = False
        self._write_manifest()

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | Path,
        config: dict,
        frames: int,
        shard_size: int = DEFAULT_SHARD_SIZE,
        run_id: str = "run",
        overwrite: bool = False,
    ) -> "DatasetStore":
        """Create `folder`, or resume it when its manifest has the same content config.

        Every committed shard is checked (its .npz whole, its .tar's size and index); a damaged
        one is moved into `quarantine/` with a warning and its frames count as missing, so they
        are rendered again. `overwrite=True` replaces an existing dataset folder instead.
        Raises StoreError when the folder was made with a different config, holds shards that
        do not fit the plan for `frames`, is locked by another writer, or is not a dataset folder.
        """
        storage = open_storage(folder)
        if frames < 1 or shard_size < 1:
            raise StoreError(f"{storage}: frames ({frames}) and shard size ({shard_size}) must be positive")
        if not storage.local:
            return cls._open_object_storage(storage, config, frames, shard_size, run_id, overwrite)
        folder = storage.path
        mode = claim_output(folder, what="dataset folder", resume=True, resume_flag=None, overwrite=overwrite, owned=DATASET_FILES)
        folder.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(folder)
        try:
            if mode == "overwrite":
                clear_folder(folder, DATASET_FILES, keep=(LOCK_NAME,))
            manifest = cls._load_or_create_manifest(folder, config, frames, shard_size)
            _remove_interrupted_commits(folder, manifest)
            scan = scan_dataset(folder, manifest=manifest, walk_tars=True, keep=())
            quarantined = _adopt_scan(folder, manifest, scan)
            for run in manifest.runs:
                if run.status == "running":
                    run.status = "interrupted"
            store = cls(folder, manifest, scan.committed.copy(), lock_fd, run_id, storage)
            store.run.quarantined = quarantined
            return store
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _open_object_storage(cls, storage: Storage, config: dict, frames: int, shard_size: int, run_id: str, overwrite: bool) -> "DatasetStore":
        """open() on object storage: no lock (writers on other nodes commit other shards at the same
        time), no clean-up of uncommitted objects (one may be a commit in flight); damaged shards are
        moved aside (copied under quarantine/, then their record and objects removed)."""
        if overwrite and storage.exists(MANIFEST_NAME):
            _clear_object_dataset(storage)
        manifest = cls._load_or_create_manifest(storage, config, frames, shard_size)
        scan = scan_dataset(storage, manifest=manifest, keep=())
        quarantined = _adopt_scan(storage, manifest, scan)
        store = cls(storage.url, manifest, scan.committed.copy(), None, run_id, storage)
        store.run.quarantined = quarantined
        return store

    @staticmethod
    def _load_or_create_manifest(folder: Path | Storage, config: dict, frames: int, shard_size: int) -> Manifest:
        digest = config_hash(config)
        storage = open_storage(folder)
        folder = storage.path if storage.local else storage.url
        if storage.exists(MANIFEST_NAME):
            manifest = read_manifest(storage)
            if manifest.format_version != STORE_VERSION:
                raise StoreError(f"{folder}: dataset format version {manifest.format_version}; this posebridge writes {STORE_VERSION}")
            if manifest.config_hash != digest:
                diff = config_differences(manifest.config, config)
                raise StoreError(
                    f"{folder} was generated with a different configuration, so its frames would not match; "
                    f"use the same arguments to resume, a new --out folder, or --overwrite to replace it. Differences (stored -> requested): "
                    + "; ".join(diff[:12])
                )
            if manifest.shard_size != shard_size:
                raise StoreError(f"{folder}: shard size {manifest.shard_size} is stored; requested {shard_size}")
            manifest.frames = frames
            return manifest
        leftovers = [n for n in storage.names() if not n.startswith(".")]
        if any(_SHARD_RE.match(n) for n in leftovers):
            raise StoreError(f"{folder}: holds shards but no {MANIFEST_NAME}; restore the manifest, use a new folder, or --overwrite")
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

    def accept(self, shard: OpenShard, row: int, header: bytes, image, encoding: str, subject: str, sequence: str, action: str, mask=None) -> None:
        """Mark a staged row stored (its arrays must be filled); commits the shard when it is full.
        `mask` is the frame's person-mask PNG (validated by the caller), or None."""
        shard.headers[row] = header
        shard.images[row] = image
        shard.masks[row] = mask
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
        a = shard.arrays
        for row in range(shard.count):
            image = shard.images[row]
            ext = shard.strings["image_ext"][row]
            if ext == "npy":  # raw pixels become a .npy that WebDataset and numpy decode as is
                image = _npy_bytes(image, a["image_size"][row])
            header = shard.headers[row]
            a["header_crc32"][row] = zlib.crc32(header)
            mask = shard.masks[row]
            names = frame_members(shard.first + row, ext, mask is not None)
            # Where each member's data starts is recorded for the random-access reader.
            for member, data, where in zip(names, (header, image, mask), (None, "image", "mask")):
                size = memoryview(data).nbytes
                if where is not None:
                    a[f"{where}_offset"][row] = offset + 512
                    a[f"{where}_bytes"][row] = size
                pad = _tar_padding(size)
                buffers += [_tar_header(member, size, mtime), data, pad]
                offset += 512 + size + len(pad)
        buffers.append(b"\0" * 1024)  # end-of-archive
        tar_bytes = offset + 1024

        arrays = dict(shard.arrays)
        for k, values in shard.strings.items():
            arrays[k] = np.array(values, dtype=str)
        validate_pairs(arrays, source=self.storage.child(f"{name}.npz"))  # a last consistency check before it lands
        npz = io.BytesIO()
        np.savez(npz, **arrays, skeleton=np.array("h36m17"), pairs_version=np.array(1, dtype=np.int32))
        npz_sha256 = hashlib.sha256(npz.getbuffer()).hexdigest()
        record = ShardRecord(name=name, first_frame=shard.first, count=shard.count, tar_bytes=tar_bytes, npz_sha256=npz_sha256)
        self.storage.write(f"{name}.npz", npz.getbuffer())
        self.storage.write(f"{name}.tar", buffers)  # the commit point of a local folder
        if not self.storage.local:  # object storage: the record, written last, is the commit point
            self.storage.write(f"{RECORDS_DIR}/{name}.json", record.model_dump_json().encode())
        self.committed[shard.first : shard.first + shard.count] = True
        with self._manifest_lock:
            self.manifest.shards.append(record)
            self.manifest.shards.sort(key=lambda s: s.first_frame)
            self.manifest.frames_stored += shard.count
            self.manifest.complete = bool(self.committed.all())
        self._write_manifest()
        log.debug("committed %s (%d frames)", name, shard.count)

    def _write_manifest(self) -> None:
        """Local: the whole manifest. Object storage: this writer's run record, and once the
        manifest without shards or runs (the same bytes whoever writes it: the content config)."""
        with self._manifest_lock:
            if self.storage.local:
                data = self.manifest.with_checksum().model_dump_json(indent=2).encode()
            else:
                run = self.run.model_dump_json(indent=2).encode()
                base = None if self._manifest_written else _object_manifest(self.manifest)
        if self.storage.local:
            self.storage.write(MANIFEST_NAME, data)
            return
        if base is not None:
            self.storage.write(MANIFEST_NAME, base)
            self._manifest_written = True
        self.storage.write(f"{RUNS_DIR}/{self.run.run_id}.json", run)

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
            if self.storage.local:  # the memory-mappable keypoint cache of a complete local folder
                cache = self.folder / PAIRS_CACHE_NAME
                if self.complete and self._writer_error is None and (self.run.frames_stored > 0 or not cache.exists()):
                    export_pairs(self.folder, cache)
        except OSError as e:
            if self._writer_error is None:
                raise
            log.error("%s: cannot record the run either: %s", self.folder, e)  # the writer's error says why
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
        self._raise_writer_error()

    def __enter__(self) -> "DatasetStore":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close("failed" if exc_type is not None else None)


def _object_manifest(manifest: Manifest) -> bytes:
    """The manifest object of an object-storage dataset: everything but the shards and runs, which
    live in their own record objects (readers merge them: read_manifest)."""
    base = manifest.model_copy(update={"shards": [], "runs": [], "frames_stored": 0, "complete": False})
    return base.with_checksum().model_dump_json(indent=2).encode()


def _clear_object_dataset(storage: Storage) -> None:
    """--overwrite on object storage: remove the dataset's objects (manifest, shards, records, runs)."""
    for name in storage.names():
        if name == MANIFEST_NAME or _SHARD_RE.match(name):
            storage.remove(name)
    for sub in (RECORDS_DIR, RUNS_DIR):
        for name in storage.names(sub):
            storage.remove(f"{sub}/{name}")


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


def _remove_interrupted_commits(folder: Path, manifest: Manifest) -> None:
    """Remove what a killed commit leaves: temporaries, and an .npz whose .tar was never renamed
    into place (an .npz whose shard the manifest lists lost its .tar later: it is quarantined)."""
    for p in folder.glob(".shard-*.tmp"):
        log.info("removing %s, left by an interrupted commit", p.name)
        p.unlink()
    listed = {r.name for r in manifest.shards}
    for p in folder.glob("shard-*.npz"):
        if _SHARD_RE.match(p.name) and not p.with_suffix(".tar").exists() and p.stem not in listed:
            log.info("removing %s: its shard's commit was interrupted", p.name)
            p.unlink()


def _adopt_scan(folder: Path | Storage, manifest: Manifest, scan: "DatasetScan") -> list[str]:
    """Make `manifest` list what the scan found sound (damaged shards moved aside first); a
    dataset that does not fit the manifest is refused. Returns what was quarantined."""
    if scan.misfit:
        raise StoreError(scan.misfit)
    quarantined = _quarantine(folder, scan)
    manifest.shards = [c.record() for c in scan.sound]
    manifest.frames_stored = scan.frames_stored
    manifest.complete = scan.complete
    return quarantined


def _quarantine(folder: Path | Storage, scan: "DatasetScan") -> list[str]:
    """Move damaged shards (and the .npz of shards whose .tar is lost) into quarantine/, with a
    warning; returns 'name: problem' for each. Their frames are missing now, so they are rendered again."""
    if isinstance(folder, Storage):
        if folder.local:
            folder = folder.path
        else:
            return _quarantine_objects(folder, scan)
    moved = []
    for check in scan.damaged:
        files = [p for p in (folder / f"{check.name}.tar", folder / f"{check.name}.npz") if p.exists()]
        where = _move_aside(folder, files)
        text = f"{check.problem}; moved to {where}"
        log.warning("%s/%s; its frames %d..%d will be rendered again", folder, text, check.first, check.first + check.count - 1)
        moved.append(text)
    for record in scan.lost:
        npz = folder / f"{record.name}.npz"
        text = f"{record.name}.tar: listed in {MANIFEST_NAME} but missing"
        if npz.exists():
            text += f"; its {npz.name} was moved to {_move_aside(folder, [npz])}"
        log.warning("%s/%s; its frames %d..%d will be rendered again", folder, text, record.first_frame, record.first_frame + record.count - 1)
        moved.append(text)
    return moved


def _quarantine_objects(storage: Storage, scan: "DatasetScan") -> list[str]:
    """_quarantine on object storage: copy a damaged shard's objects under quarantine/NNN/, then
    remove its commit record (so it counts as missing) and the objects."""
    moved = []
    taken = [int(n) for n in storage.names(QUARANTINE_DIR) if n.isdigit()]
    for check in scan.damaged:
        target = f"{QUARANTINE_DIR}/{1 + max(taken, default=0):03d}"
        taken.append(1 + max(taken, default=0))
        names = [f"{check.name}.tar", f"{check.name}.npz", f"{RECORDS_DIR}/{check.name}.json"]
        for name in names:
            try:
                storage.write(f"{target}/{name.rsplit('/', 1)[-1]}", storage.read_bytes(name))
            except FileNotFoundError:
                continue
        storage.remove(f"{RECORDS_DIR}/{check.name}.json")  # uncommitted from here on
        for name in names[:2]:
            storage.remove(name)
        text = f"{check.problem}; moved to {target}/"
        log.warning("%s/%s; its frames %d..%d will be rendered again", storage, text, check.first, check.first + check.count - 1)
        moved.append(text)
    return moved


def _move_aside(folder: Path, files: list[Path]) -> str:
    """Move `files` into a new numbered folder quarantine/NNN (never overwriting an earlier one)."""
    base = folder / QUARANTINE_DIR
    base.mkdir(exist_ok=True)
    n = 1 + max((int(p.name) for p in base.iterdir() if p.name.isdigit()), default=0)
    target = base / f"{n:03d}"
    target.mkdir()
    for f in files:
        os.replace(f, target / f.name)
    _fsync_dir(target)
    _fsync_dir(folder)
    return f"{QUARANTINE_DIR}/{target.name}/"


# ------------------------------------------------------------------------------------------------
# checking committed shards: cheaply on every open and read; fully in dataset_report.verify_dataset

_TAR_BLOCK = 512
_MAX_BYTES = 1 << 40  # no shard is a terabyte: bounds the offsets before any arithmetic on them
_ZERO_BLOCK = bytes(_TAR_BLOCK)
_FLOAT_KEYS = tuple(k for k, (dt, _) in FRAME_ARRAYS.items() if dt.kind == "f")
_NPZ_KEYS = (*FRAME_ARRAYS, *FRAME_STRINGS, "skeleton", "pairs_version")  # exactly the keys of a shard's .npz


@dataclasses.dataclass
class ShardCheck:
    """One committed shard (a .tar on disk) and what its checks found."""

    index: int
    name: str
    first: int  # planned first frame id
    count: int  # planned frame count
    tar_bytes: int = 0
    npz_sha256: str = ""
    problem: str | None = None  # "<file>: <what is wrong>"; None when sound
    arrays: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # the kept keys, when sound

    def record(self) -> ShardRecord:
        return ShardRecord(name=self.name, first_frame=self.first, count=self.count, tar_bytes=self.tar_bytes, npz_sha256=self.npz_sha256)


@dataclasses.dataclass
class DatasetScan:
    """What a dataset folder really holds: sound and damaged shards, lost ones, frames present."""

    folder: Path | str
    manifest: Manifest
    shards: list[ShardCheck]  # every shard with a .tar on disk (a commit record on object storage), in frame-id order
    lost: list[ShardRecord]  # listed in the manifest, but no .tar on disk
    committed: np.ndarray  # bool (frames,): in a sound shard
    misfit: str | None = None  # a sound shard that does not fit the frame count (the --frames given)

    @property
    def sound(self) -> list[ShardCheck]:
        return [c for c in self.shards if c.problem is None]

    @property
    def damaged(self) -> list[ShardCheck]:
        return [c for c in self.shards if c.problem is not None]

    @property
    def frames_stored(self) -> int:
        return int(self.committed.sum())

    @property
    def complete(self) -> bool:
        """Every frame id 0..N-1 is in a sound shard (never true with a damaged or lost shard)."""
        return bool(self.committed.all()) and not self.damaged and not self.lost

    def damaged_problems(self) -> list[str]:
        """'<file>: <problem>' per damaged shard (and a shard that does not fit the frame count)."""
        return [c.problem for c in self.damaged] + ([self.misfit] if self.misfit else [])

    def lost_problems(self) -> list[str]:
        """One line per shard the manifest lists that is no longer on disk."""
        return [f"{r.name}.tar: listed in {MANIFEST_NAME} but missing (frames {r.first_frame}..{r.first_frame + r.count - 1})" for r in self.lost]

    def problems(self) -> list[str]:
        return self.damaged_problems() + self.lost_problems()

    def missing_text(self, limit: int = 4) -> str:
        """The missing frame ids as ranges: 'frames 8..15, 20..23'."""
        ids = np.flatnonzero(~self.committed)
        if not len(ids):
            return "no frames"
        breaks = np.flatnonzero(np.diff(ids) > 1)
        starts, ends = np.r_[ids[0], ids[breaks + 1]], np.r_[ids[breaks], ids[-1]]
        parts = [f"{a}..{b}" if b > a else f"{a}" for a, b in zip(starts[:limit], ends[:limit])]
        return "frames " + ", ".join(parts) + (f" and {len(starts) - limit} more ranges" if len(starts) > limit else "")

    def raise_if_damaged(self) -> None:
        """StoreError naming the first damaged shard's file and its problem."""
        bad = [c.problem for c in self.damaged]
        if bad:
            more = f" (and {len(bad) - 1} more damaged shard(s))" if len(bad) > 1 else ""
            raise StoreError(
                f"{self.folder}/{bad[0]}{more}; `posebridge generate` with the same arguments moves damaged shards aside and renders them again"
            )
        if self.misfit:
            raise StoreError(f"{self.folder}/{self.misfit}")


def scan_dataset(
    folder: str | Path | Storage,
    manifest: Manifest | None = None,
    walk_tars: bool = False,
    keep: tuple[str, ...] | None = None,
) -> DatasetScan:
    """Check every committed shard of `folder` (read-only) and keep the arrays `keep` of the
    sound ones (all keys when None, none with ()).

    Per shard: the .npz is read whole (zip CRCs), matched against the sha256 the manifest
    recorded, and checked for its keys, dtypes, shapes, frame ids and finite values; the .tar's
    size is matched against the manifest and the image offsets; with `walk_tars` each tar
    member's header is read too (names, sizes, the images where the .npz says, the end of the
    archive), a few KB per shard. Images are not read: verify_dataset checks their CRC-32.
    On object storage the committed shards are those with a commit record, and the tar index is
    not walked (an object is never partly written; its size is checked).
    """
    storage = open_storage(folder)
    folder = storage.path if storage.local else storage.url
    manifest = manifest or read_manifest(storage)
    plan = ShardPlan(manifest.frames, manifest.shard_size)
    recorded = {r.name: r for r in manifest.shards}
    if storage.local:
        try:
            names = sorted(p.name for p in folder.iterdir())
        except OSError as e:
            raise StoreError(f"{folder}: cannot list the folder ({e})") from None
    else:
        records = object_records(storage)
        recorded = {r.name: r for r in records}
        names = [f"{r.name}.tar" for r in records]
        walk_tars = False
    tars = sorted({int(m.group(1)) for n in names if (m := _SHARD_RE.match(n)) and m.group(2) == "tar"})
    committed = np.zeros(plan.frames, dtype=bool)
    checks, misfit = [], None
    for index in tars:
        planned = plan.bounds(index) if index < plan.shard_count else (index * plan.shard_size, 0)
        check = ShardCheck(index, shard_name(index), *planned)
        ids = _check_shard(storage, check, recorded.get(check.name), plan, walk_tars, keep)
        if check.problem is None and ids is not None and (len(ids) != check.count):
            misfit = misfit or (
                f"{check.name}.tar holds frames {ids[0]}..{ids[-1]}, which do not fit {plan.frames} frames in shards of "
                f"{plan.shard_size}; pass the --frames of the run that made it (or a multiple of the shard size beyond it)"
            )
            check.arrays = {}
            continue
        if check.problem is None:
            committed[check.first : check.first + check.count] = True
        checks.append(check)
    on_disk = {shard_name(i) for i in tars}
    lost = [r for r in manifest.shards if r.name not in on_disk]
    return DatasetScan(folder, manifest, checks, lost, committed, misfit)


def _check_shard(storage: Storage, check: ShardCheck, record: ShardRecord | None, plan: ShardPlan, walk: bool, keep) -> np.ndarray | None:
    """Fill `check.problem` (or `check.arrays`); returns the frame ids when the .npz is sound."""
    name = check.name
    try:
        data = storage.read_bytes(f"{name}.npz")
    except FileNotFoundError:
        check.problem = f"{name}.npz: missing (the keypoint file of {name}.tar)"
        return None
    except OSError as e:
        check.problem = f"{name}.npz: unreadable ({e.strerror or e})"
        return None
    check.npz_sha256 = hashlib.sha256(data).hexdigest()
    if record is not None and record.npz_sha256 and record.npz_sha256 != check.npz_sha256:
        check.problem = f"{name}.npz: does not match the sha256 recorded in {MANIFEST_NAME} (modified or damaged)"
        return None
    arrays, problem = _read_shard_npz(data)
    if problem:
        check.problem = f"{name}.npz: {problem}"
        return None
    ids = arrays["frame_id"]
    first = check.index * plan.shard_size
    if ids[0] != first or not np.array_equal(ids, np.arange(first, first + len(ids))):
        check.problem = f"{name}.npz: frame ids are not {first}, {first + 1}, ... in order"
        return None
    if len(ids) != check.count:
        return ids  # a misfit of the plan: the caller's error
    try:
        check.tar_bytes = storage.size(f"{name}.tar")
    except FileNotFoundError:
        check.problem = f"{name}.tar: missing (its commit record names it)"
        return None
    except OSError as e:
        check.problem = f"{name}.tar: unreadable ({e.strerror or e})"
        return None
    last_end = int(arrays["image_offset"][-1] + arrays["image_bytes"][-1])
    if record is not None and record.tar_bytes != check.tar_bytes:
        check.problem = f"{name}.tar: {check.tar_bytes} bytes, {MANIFEST_NAME} records {record.tar_bytes} (truncated or modified)"
    elif check.tar_bytes < last_end + 2 * _TAR_BLOCK:
        check.problem = f"{name}.tar: truncated ({check.tar_bytes} bytes; its last image ends at byte {last_end})"
    elif walk:
        problem = _walk_tar(storage.file(f"{name}.tar"), arrays)
        if problem:
            check.problem = f"{name}.tar: {problem}"
    if check.problem is None:
        check.arrays = {k: v for k, v in arrays.items() if keep is None or k in keep}
    return ids


def _read_shard_npz(data: bytes) -> tuple[dict[str, np.ndarray], str | None]:
    """A shard's keypoint arrays from the .npz bytes, or the first problem found."""
    try:
        arrays = _load_npz(data)
    except Exception as e:  # noqa: BLE001 - zipfile/numpy raise many types for a damaged file
        return {}, f"unreadable keypoint file ({type(e).__name__}: {str(e)[:120]})"
    for key in _NPZ_KEYS:
        if key not in arrays:
            return {}, f"lacks the key {key!r}"
    unknown = sorted(set(arrays) - set(_NPZ_KEYS))
    if unknown:
        return {}, f"holds an unknown key {unknown[0]!r}"
    n = arrays["frame_id"].shape[0] if arrays["frame_id"].ndim == 1 else -1
    if n < 1:
        return {}, f"'frame_id' has shape {arrays['frame_id'].shape}; expected (N,) with N >= 1"
    for key, (dtype, shape) in FRAME_ARRAYS.items():
        a = arrays[key]
        if a.dtype != dtype or a.shape != (n, *shape):
            return {}, f"{key!r} is {a.dtype} {a.shape}; expected {dtype} {(n, *shape)}"
    for key in FRAME_STRINGS:
        a = arrays[key]
        if a.dtype.kind != "U" or a.shape != (n,):
            return {}, f"{key!r} is {a.dtype} {a.shape}; expected unicode strings ({n},)"
    skeleton, version = arrays["skeleton"], arrays["pairs_version"]
    if skeleton.shape != () or skeleton.dtype.kind != "U" or str(skeleton) != "h36m17" or version.shape != () or version.dtype != np.int32 or version != 1:
        return {}, "'skeleton' / 'pairs_version' are not 'h36m17' / 1"
    for key in _FLOAT_KEYS:
        if not np.isfinite(arrays[key]).all():
            return {}, f"{key!r} holds NaN or infinity"
    if arrays["visibility"].max() > 2:
        return {}, "'visibility' holds values outside {0, 1, 2}"
    if (arrays["image_size"] <= 0).any():
        return {}, "'image_size' holds non-positive sizes"
    if not np.isin(arrays["image_ext"], list(IMAGE_EXTENSIONS.values())).all():
        return {}, f"'image_ext' holds values other than {sorted(IMAGE_EXTENSIONS.values())}"
    off, size = arrays["image_offset"], arrays["image_bytes"]
    if (size < 1).any() or (size > _MAX_BYTES).any() or (off < 2 * _TAR_BLOCK).any() or (off > _MAX_BYTES).any():
        return {}, "'image_offset' / 'image_bytes' hold impossible values"
    if (off % _TAR_BLOCK).any() or (off[1:] <= off[:-1] + size[:-1]).any():
        return {}, "'image_offset' / 'image_bytes' do not describe images in tar order"
    return arrays, None


_NPY_HEADER = re.compile(r"\{'descr': '([^']+)', 'fortran_order': (False|True), 'shape': \(([0-9, ]*)\), \}\s*$")


def _stored_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """The bytes of an uncompressed zip member (np.savez writes no other), CRC-32 checked: what
    zipfile's read does, without its per-member file object."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        raise ValueError(f"member {info.filename!r} is compressed or encrypted; the store writes plain np.savez files")
    off = info.header_offset
    local = data[off : off + 30]
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise ValueError(f"member {info.filename!r}: no local header at byte {off}")
    start = off + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    raw = data[start : start + info.file_size]
    if len(raw) != info.file_size or zlib.crc32(raw) != info.CRC:
        raise ValueError(f"member {info.filename!r}: bad CRC-32 or cut short")
    return raw


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an .npz from its bytes, each member read whole and its CRC-32 checked.

    np.load costs ~0.3 ms a key (a file object per member, the header through ast); here the
    members are sliced out of the bytes and the headers numpy writes are parsed with a regular
    expression (others go through numpy's own reader), which makes checking a shard ~10x
    faster. Object arrays (pickles) are refused either way.
    """
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ValueError(f"member {info.filename!r} is not an .npy array")
        raw = _stored_member(data, info)
        key = info.filename[:-4]
        if raw[:6] != b"\x93NUMPY" or raw[6] not in (1, 2, 3):
            raise ValueError(f"member {info.filename!r} is not an .npy array")
        start = 10 if raw[6] == 1 else 12
        end = start + int.from_bytes(raw[8:start], "little")
        m = _NPY_HEADER.match(raw[start:end].decode("latin1"))
        if m is None:
            out[key] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            continue
        dtype = np.dtype(m.group(1))
        if dtype.hasobject:
            raise ValueError(f"{key!r} is an object array (a pickle)")
        shape = tuple(int(x) for x in m.group(3).split(",") if x.strip())
        count = math.prod(shape)
        if len(raw) - end != count * dtype.itemsize:
            raise ValueError(f"{key!r} holds {len(raw) - end} bytes of data; its header says {count * dtype.itemsize}")
        out[key] = np.frombuffer(raw, dtype=dtype, count=count, offset=end).reshape(shape, order="F" if m.group(2) == "True" else "C")
    return out


def _walk_tar(path: Path, arrays: dict[str, np.ndarray]) -> str | None:
    """Read every member header of a shard's tar (not the data): the members of each frame in
    frame-id order, `{key}.json` first, the image where the .npz says, then the end of the
    archive and nothing after it. Other members of a frame (`{key}.<ext>`) are allowed.

    The file is memory-mapped and the headers' checksums and magic are checked at once with
    numpy after the walk, the first damaged header reported before anything it led to."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 2 * _TAR_BLOCK:
                return f"{size} bytes: too short for a tar"
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                headers: list[bytes] = []
                problem = _walk_members(mm, size, arrays, headers)
    except (OSError, ValueError) as e:
        return f"unreadable ({getattr(e, 'strerror', None) or e})"
    if headers:
        blocks = np.frombuffer(b"".join(headers), dtype=np.uint8).reshape(-1, _TAR_BLOCK)
        computed = blocks.sum(axis=1, dtype=np.int64) - blocks[:, 148:156].sum(axis=1, dtype=np.int64) + 8 * 32
        stored = np.array([_octal(h[148:156]) for h in headers])
        magic = (blocks[:, 257:263] == np.frombuffer(b"ustar\0", dtype=np.uint8)).all(axis=1)
        typeflag = np.isin(blocks[:, 156], (ord("0"), 0))
        bad = np.flatnonzero((computed != stored) | ~magic | ~typeflag)
        if len(bad):
            return f"the header of member {bad[0]} is damaged ({'checksum mismatch' if computed[bad[0]] != stored[bad[0]] else 'not a ustar file header'})"
    return problem


def _octal(field: bytes) -> int:
    try:
        return int(field.rstrip(b" \0") or b"-1", 8)
    except ValueError:
        return -1


def _walk_members(mm, size: int, arrays: dict[str, np.ndarray], headers: list[bytes]) -> str | None:
    """The walk of _walk_tar, appending each header block to `headers`; the first problem or None."""
    ids = arrays["frame_id"].tolist()
    keys = [frame_key(i) for i in ids]
    exts, offsets, sizes = arrays["image_ext"].tolist(), arrays["image_offset"].tolist(), arrays["image_bytes"].tolist()
    n = len(keys)
    pos, row, has_image = 0, -1, True
    while True:
        if pos + _TAR_BLOCK > size:
            return f"ends at byte {size}, inside the archive (truncated)"
        block = mm[pos : pos + _TAR_BLOCK]
        if block == _ZERO_BLOCK:
            if mm[pos + _TAR_BLOCK : pos + 2 * _TAR_BLOCK] != _ZERO_BLOCK:
                return f"a zero block at byte {pos} inside the archive"
            if pos + 2 * _TAR_BLOCK != size:
                return f"{size - pos - 2 * _TAR_BLOCK} bytes after the end of the archive at byte {pos}"
            break
        headers.append(block)
        nbytes = _octal(block[124:136])
        try:
            name = block[:100].split(b"\0", 1)[0].decode("ascii")
        except UnicodeDecodeError:
            name = "?"
        if nbytes < 0:
            return f"the member header at byte {pos} is damaged (size field)"
        key, _, ext = name.partition(".")
        if ext == "json":
            if not has_image:
                return f"frame {keys[row]} has no image member"
            row += 1
            if row >= n:
                return f"holds more frames than its keypoint file ({n})"
            if key != keys[row]:
                return f"member {name!r} at byte {pos}; expected {keys[row]}.json"
            has_image = False
        elif row < 0 or key != keys[row]:
            return f"member {name!r} at byte {pos} is out of place"
        elif ext == exts[row]:
            if pos + _TAR_BLOCK != offsets[row] or nbytes != sizes[row]:
                return f"image {name} is at byte {pos + _TAR_BLOCK} with {nbytes} bytes; the keypoint file says {offsets[row]} with {sizes[row]}"
            has_image = True
        pos += _TAR_BLOCK + nbytes + (-nbytes % _TAR_BLOCK)
    if row != n - 1 or not has_image:
        return f"holds {row + 1 - (not has_image)} whole frames; its keypoint file has {n}"
    return None


# ------------------------------------------------------------------------------------------------
# reading


def open_dataset(folder: str | Path | Storage, keys: tuple[str, ...] | None = None, warn: bool = True) -> DatasetScan:
    """Scan `folder` for reading: StoreError (naming the file) when a shard is damaged or none is
    committed; a warning when frames are missing (unless the caller reports it: warn=False).
    Keeps the arrays `keys` (all when None)."""
    scan = scan_dataset(folder, keep=keys)
    scan.raise_if_damaged()
    if not scan.sound:
        raise StoreError(f"{folder}: no committed shards" + (f" ({scan.problems()[0]})" if scan.lost else ""))
    if warn and not scan.complete:
        lost = f"; {len(scan.lost)} shard(s) listed in {MANIFEST_NAME} are missing" if scan.lost else ""
        log.warning("%s is incomplete: %d of %d frames (%s missing%s); reading what is stored",
                    folder, scan.frames_stored, scan.manifest.frames, scan.missing_text(), lost)
    return scan


def _concat(scan: DatasetScan, keys: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    names = keys or [k for k in scan.sound[0].arrays if k not in ("skeleton", "pairs_version")]
    return {k: np.concatenate([c.arrays[k] for c in scan.sound]) for k in names}


def load_dataset_arrays(folder: str | Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every committed frame's arrays (all npz keys, or `keys`), concatenated in frame-id order.
    Each shard is checked first (scan_dataset); a damaged one is a StoreError naming it."""
    unknown = [k for k in keys or () if k not in FRAME_ARRAYS and k not in FRAME_STRINGS]
    if unknown:
        raise KeyError(f"no per-frame array {unknown[0]!r} in a dataset folder")
    return _concat(open_dataset(folder, keys), keys)


class DatasetReader:
    """Random access to a dataset folder's frames: their arrays in frame-id order, and each image
    and person mask by one seek and read in its shard's tar (the .npz records where each sits),
    checked against its CRC-32.

    Used by the PyTorch `FrameDataset` and the desktop viewer. File handles are per process, so a
    reader can be shared with DataLoader workers.
    """

    IMAGE_KEYS = ("image_offset", "image_bytes", "image_ext", "image_crc32", "mask_offset", "mask_bytes", "mask_crc32")

    def __init__(self, folder: str | Path | Storage, keys: tuple[str, ...] | None = None, warn: bool = True):
        self._files: dict[int, Any] = {}
        self._pid = os.getpid()
        self.storage = open_storage(folder)
        self.folder = self.storage.path if self.storage.local else self.storage.url
        wanted = None if keys is None else tuple(dict.fromkeys((*keys, "frame_id", *self.IMAGE_KEYS)))
        scan = open_dataset(self.storage, wanted, warn=warn)
        self.shard_names = [c.name for c in scan.sound]
        self.tars = [self.storage.child(f"{c.name}.tar") for c in scan.sound]
        self.arrays = _concat(scan, wanted)
        self.shard_of_row = np.repeat(np.arange(len(scan.sound)), [c.count for c in scan.sound])

    def __len__(self) -> int:
        return len(self.shard_of_row)

    def _file(self, shard: int):
        if os.getpid() != self._pid:  # a forked worker: do not share the parent's file offsets
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            f = self._files[shard] = self.storage.open(f"{self.shard_names[shard]}.tar")
        return f

    @property
    def has_mask(self) -> np.ndarray:
        """bool (N,): which frames carry a person mask."""
        return self.arrays["mask_offset"] >= 0

    def _member(self, index: int, what: str) -> tuple[bytes, str]:
        """The stored bytes of frame `index`'s image or mask (one seek, one read), and where they are;
        StoreError when they cannot be read whole."""
        a = self.arrays
        tar = self.tars[self.shard_of_row[index]]
        offset, nbytes = int(a[f"{what}_offset"][index]), int(a[f"{what}_bytes"][index])
        where = f"{tar}: the {what} of frame {int(a['frame_id'][index])} at byte {offset}"
        try:
            f = self._file(int(self.shard_of_row[index]))
            f.seek(offset)
            data = f.read(nbytes)
        except (OSError, OverflowError, ValueError) as e:
            raise StoreError(f"{where} cannot be read ({getattr(e, 'strerror', None) or e})") from None
        if len(data) != nbytes:
            raise StoreError(f"{where} is cut short ({len(data)} of {nbytes} bytes)")
        return data, where

    def image_data(self, index: int) -> tuple[bytes, str]:
        """The stored (encoded) bytes of frame `index`'s image, CRC-32 checked (JPEG and PNG; a raw
        image is checked when decoded), and their extension (jpg, png, npy), for callers that
        decode on their own terms (reduced-size JPEG decoding)."""
        data, where = self._member(index, "image")
        ext = str(self.arrays["image_ext"][index])
        if ext != "npy" and zlib.crc32(data) != int(self.arrays["image_crc32"][index]):
            raise StoreError(f"{where} fails its CRC-32 check (damaged)")
        return data, ext

    def image(self, index: int) -> np.ndarray:
        """(H, W, C) uint8 pixels of frame `index` (row in frame-id order); StoreError when the
        stored bytes are damaged."""
        data, where = self._member(index, "image")
        return decode_checked(data, str(self.arrays["image_ext"][index]), int(self.arrays["image_crc32"][index]), where)

    def mask_png(self, index: int) -> bytes | None:
        """The stored mask PNG of frame `index` as is (CRC-32 checked), or None when it has no mask."""
        if self.arrays["mask_offset"][index] < 0:
            return None
        data, where = self._member(index, "mask")
        if zlib.crc32(data) != int(self.arrays["mask_crc32"][index]):
            raise StoreError(f"{where}: CRC-32 mismatch (damaged)")
        return data

    def mask(self, index: int) -> np.ndarray | None:
        """(H, W) uint8 person mask of frame `index` (1 person, 0 elsewhere), or None without one."""
        from .masks import decode_mask_png

        data = self.mask_png(index)
        return None if data is None else decode_mask_png(data, check_values=False)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def __del__(self) -> None:
        self.close()


def image_crc32(data: bytes, ext: str) -> int:
    """The CRC-32 the store records for an image: of its bytes as received (for .npy, raw pixels
    received without a header, of the pixel data)."""
    if ext == "npy":
        return zlib.crc32(np.ascontiguousarray(decode_image(data, ext)).tobytes())
    return zlib.crc32(data)


def decode_checked(data: bytes, ext: str, crc: int, where: str) -> np.ndarray:
    """decode_image after a CRC-32 check; StoreError(`where` ...) when either fails."""
    try:
        if ext != "npy" and zlib.crc32(data) != crc:
            raise StoreError(f"{where} fails its CRC-32 check (damaged)")
        pixels = decode_image(data, ext)
    except StoreError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow and numpy raise many types for damaged data
        raise StoreError(f"{where} does not decode ({type(e).__name__}: {str(e)[:100]})") from None
    if ext == "npy" and zlib.crc32(np.ascontiguousarray(pixels).tobytes()) != crc:
        raise StoreError(f"{where} fails its CRC-32 check (damaged)")
    if pixels.ndim != 3 or pixels.dtype != np.uint8:
        raise StoreError(f"{where} decodes to {pixels.dtype} {pixels.shape}, not (H, W, C) uint8")
    return pixels


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
    view, provenance strings, and `frame_id` as an extra key. Damaged shards raise StoreError;
    an incomplete dataset exports the frames it holds (the caller reports the missing ones)."""
    keys = (*_PAIRS_KEYS, "frame_id")
    arrays = _concat(open_dataset(folder, keys, warn=False), keys)
    return save_pairs(out, validate_pairs(arrays, source=str(folder)), extra={"frame_id": arrays["frame_id"]})


def export_masks(folder: str | Path, out_dir: str | Path) -> tuple[int, int]:
    """Copy every stored person mask, byte for byte, to `out_dir`/{key}.png (key = the frame id,
    9 digits, as in the shards; 8-bit greyscale, 1 person, 0 elsewhere). Returns (masks written,
    frames without a mask). Each file is written atomically, so a rerun overwrites cleanly."""
    reader = DatasetReader(folder, ("frame_id",))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        for i in np.flatnonzero(reader.has_mask).tolist():
            path = out_dir / f"{frame_key(reader.arrays['frame_id'][i])}.png"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(reader.mask_png(i))
            os.replace(tmp, path)
            written += 1
    finally:
        reader.close()
    return written, len(reader) - written


def load_dataset_pairs(folder: str | Path, mmap: bool = False) -> Pairs:
    """The folder's keypoints as pairs v1, in frame-id order; no image is read.

    mmap=True memory-maps `pairs.npz` (written when the dataset is complete) when it is current,
    and otherwise concatenates the shards in memory. The shards are checked either way.
    """
    storage = open_storage(folder)
    folder = storage.path if storage.local else storage.url
    scan = open_dataset(storage, (*_PAIRS_KEYS, "frame_id"))
    if mmap and storage.local:
        cache = folder / PAIRS_CACHE_NAME
        if cache.is_file():
            cached = read_pairs_arrays(cache, mmap=True)
            ids = cached.get("frame_id")
            stored = _concat(scan, ("frame_id",))["frame_id"]
            if ids is not None and len(ids) == len(stored) and np.array_equal(ids, stored):
                return validate_pairs(cached, source=str(cache))  # what load_pairs(cache, mmap=True) does
        log.info("%s: no current %s to memory-map; loading the shards", folder, PAIRS_CACHE_NAME)
    return validate_pairs(_concat(scan, _PAIRS_KEYS), source=str(folder))
