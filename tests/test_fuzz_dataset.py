"""Fuzz the dataset folder reader: seeded random corruptions of the manifest, the shard tars and
the shard keypoint files, and for every one of them:

- no traceback: every reader either returns or raises the store's StoreError, whose message is
  one line naming the damaged file (verify_dataset returns such lines instead);
- no silent acceptance: the corruption is detected (some reader raises, verify reports it, or the
  dataset says it is incomplete), or every value read back equals the pristine one. A corruption
  that does not also forge the manifest must moreover be caught by each reader on its own (a
  reader returns pristine values or raises);
- read-only operations change nothing on disk (every file hashed before and after);
- the writer's open (resume) never loses a byte: damaged files are moved into quarantine/ intact,
  and the shards it keeps hold the pristine values.

"Resealed" cases rewrite a shard file consistently and update its record in the manifest (sha256,
size, checksum), as a buggy writer or a deliberate edit would: they get past the hash and size
checks and must be caught by the structural checks or by verify_dataset.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from bridge.dataset_report import summarize_dataset, verify_dataset
from generator.store import (
    MANIFEST_NAME,
    QUARANTINE_DIR,
    DatasetReader,
    DatasetStore,
    Manifest,
    StoreError,
    load_dataset_arrays,
    load_dataset_pairs,
    read_manifest,
    scan_dataset,
)

from bridge_support import SEED, frame_fields, frame_message, image_bytes, open_collector

CASES = int(os.environ.get("FUZZ_CASES", 1000))  # FUZZ_CASES=... for a longer hunt
FRAMES, SHARD = 12, 4
CONFIG = {"test": True, "seed": SEED}
ENCODINGS = {5: "png", 9: "raw"}  # the other frames are JPEG
NAMES_A_FILE = re.compile(r"manifest\.json|shard-\d{6}\.(tar|npz)|pairs\.npz")
PAIRS_KEYS = ("joints_2d", "joints_3d", "K", "visibility", "joints_2d_right", "baseline_mm")


class Pristine:
    def __init__(self, folder: Path):
        self.folder = folder
        self.arrays = load_dataset_arrays(folder)
        reader = DatasetReader(folder)
        self.images = [reader.image(i) for i in range(FRAMES)]
        reader.close()
        self.manifest = read_manifest(folder).model_dump(exclude={"checksum"})
        self.hashes = _hashes(folder)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    folder = tmp_path_factory.mktemp("fuzz") / "pristine"
    c = open_collector(folder, frames=FRAMES, shard_size=SHARD)
    for i in range(FRAMES):
        rng = np.random.default_rng(i)
        enc = ENCODINGS.get(i, "jpeg")
        assert c.handle(frame_message(frame_fields(rng), image_bytes(rng, enc), frame_id=i, seq=i, encoding=enc))
    c.store.close()
    (folder / ".lock").unlink()  # readers never need it; the writer makes its own
    assert verify_dataset(folder) == (FRAMES, [])
    return Pristine(folder)


def _hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# corruptions: each returns its class name; `resealed` is set when the manifest was updated to match


def _flip_bits(data: bytearray, rng, lo: int = 0, hi: int | None = None) -> None:
    hi = len(data) if hi is None else hi
    for _ in range(int(rng.integers(1, 9))):
        pos = int(rng.integers(lo, hi))
        data[pos] ^= 1 << int(rng.integers(8))


def corrupt_bytes(path: Path, rng) -> str:
    data = bytearray(path.read_bytes())
    op = rng.choice(["truncate", "zero_length", "bit_flip", "delete", "append", "zero_block"])
    if op == "delete":
        path.unlink()
        return op
    if op == "truncate":
        data = data[: int(rng.integers(1, len(data)))]
    elif op == "zero_length":
        data = bytearray()
    elif op == "bit_flip":
        _flip_bits(data, rng)
    elif op == "append":
        data += rng.integers(0, 256, int(rng.integers(1, 1025)), dtype=np.uint8).tobytes() if rng.random() < 0.5 else bytes(512)
    else:
        start = int(rng.integers(0, max(1, len(data) - 512)))
        data[start : start + 512] = bytes(len(data[start : start + 512]))
    path.write_bytes(bytes(data))
    return op


def _json_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, (*prefix, i))


def corrupt_manifest_json(path: Path, rng) -> str:
    doc = json.loads(path.read_text())
    paths = [p for p in _json_paths(doc) if p]
    target = paths[int(rng.integers(len(paths)))]
    parent = doc
    for k in target[:-1]:
        parent = parent[k]
    key = target[-1]
    op = rng.choice(["missing_key", "wrong_type", "nonfinite", "bump_number", "empty"])
    if op == "missing_key":
        del parent[key]
    elif op == "wrong_type":
        parent[key] = [None, "x", True, [1], {"a": 1}, 1.5][int(rng.integers(6))]
    elif op == "nonfinite":
        parent[key] = [float("nan"), float("inf"), -float("inf")][int(rng.integers(3))]
    elif op == "bump_number":
        value = parent[key]
        parent[key] = (value + 1) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    else:
        parent[key] = type(parent[key])() if isinstance(parent[key], (list, dict, str)) else -1
    path.write_text(json.dumps(doc, indent=int(rng.integers(0, 3))))
    return f"json_{op}"


def corrupt_npz_arrays(path: Path, rng) -> str:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    key = list(arrays)[int(rng.integers(len(arrays)))]
    a = arrays[key]
    op = rng.choice(["missing_key", "wrong_dtype", "wrong_shape", "nonfinite", "zero_length", "changed_value", "permuted", "extra_key"])
    if op == "missing_key":
        del arrays[key]
    elif op == "wrong_dtype":
        dtype = np.dtype([np.float64, np.int32, np.float16, np.int8, "U8", np.bool_, "S8"][int(rng.integers(7))])
        with np.errstate(over="ignore"):
            arrays[key] = a.astype(dtype) if a.dtype.kind != "U" or dtype.kind in "US" else np.zeros(a.shape, dtype)
    elif op == "wrong_shape":
        shapes = [lambda x: x[:-1], lambda x: np.concatenate([x, x[:1]]), lambda x: x.reshape(-1), lambda x: x[..., None], lambda x: x.reshape(-1)[:1].reshape(())]
        arrays[key] = shapes[int(rng.integers(len(shapes)))](a) if a.ndim else a.reshape(1)
    elif op == "nonfinite":
        if a.dtype.kind == "f" and a.size:
            a = a.copy()
            a.reshape(-1)[int(rng.integers(a.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
        elif a.dtype.kind in "iu" and a.size:
            a = a.copy()
            a.reshape(-1)[int(rng.integers(a.size))] = np.iinfo(a.dtype).max
        arrays[key] = a
    elif op == "zero_length":
        arrays[key] = a[:0] if a.ndim else a.reshape(1)[:0]
    elif op == "changed_value":
        a = a.copy()
        if a.size:
            i = int(rng.integers(a.size))
            flat = a.reshape(-1)
            if a.dtype.kind == "U":
                flat[i] = flat[i][::-1] if flat[i][::-1] != flat[i] else "X" * max(1, len(flat[i]))
            else:
                at_max = a.dtype.kind in "iu" and flat[i] == np.iinfo(a.dtype).max
                flat[i] = flat[i] - 1 if at_max else flat[i] + 1
        arrays[key] = a
    elif op == "permuted":
        arrays[key] = a[::-1].copy() if a.ndim else a
    else:
        arrays["extra"] = np.zeros(3)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    return f"npz_{op}"


def _members(data: bytes) -> list[tuple[int, str, int]]:
    """(header offset, name, size) of each member of a well-formed shard tar."""
    out, pos = [], 0
    while data[pos : pos + 512] != bytes(512):
        name = data[pos : pos + 100].split(b"\0")[0].decode()
        size = int(data[pos + 124 : pos + 136].rstrip(b" \0"), 8)
        out.append((pos, name, size))
        pos += 512 + size + (-size % 512)
    return out


def _reseal_header(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def corrupt_tar_structure(path: Path, rng) -> str:
    data = bytearray(path.read_bytes())
    members = _members(bytes(data))
    pos, name, size = members[int(rng.integers(len(members)))]
    op = rng.choice(["truncate_at_member", "renamed_member", "resized_member", "no_end_blocks", "json_edit", "image_flip", "member_type"])
    if op == "truncate_at_member":
        data = data[:pos]
    elif op == "renamed_member":
        header = data[pos : pos + 512]
        digit = 8 - int(rng.integers(2))  # the last digits of the 9-digit key
        header[digit] = ord(str((int(chr(header[digit])) + 1 + int(rng.integers(8))) % 10))
        _reseal_header(header)
        data[pos : pos + 512] = header
    elif op == "resized_member":
        header = data[pos : pos + 512]
        header[124:136] = b"%011o\0" % max(0, size + int(rng.choice([-600, -1, 1, 511, 512])))
        _reseal_header(header)
        data[pos : pos + 512] = header
    elif op == "no_end_blocks":
        data = data[:-1024]
    elif op == "member_type":
        header = data[pos : pos + 512]
        header[156:157] = b"5"  # a directory
        _reseal_header(header)
        data[pos : pos + 512] = header
    else:  # a bit flip in a member's data: a JSON header (json_edit) or an image (image_flip)
        want_json = op == "json_edit"
        pos, name, size = next((m for m in members[int(rng.integers(len(members))) :] + members if m[1].endswith(".json") == want_json), members[0])
        _flip_bits(data, rng, pos + 512, pos + 512 + size)
    path.write_bytes(bytes(data))
    return f"tar_{op}"


def corrupt_across(folder: Path, rng) -> str:
    a, b = (int(x) for x in rng.choice(FRAMES // SHARD, 2, replace=False))
    op = rng.choice(["swapped_npz", "copied_tar", "deleted_shard", "stray_temporary", "orphan_npz"])
    if op == "swapped_npz":
        pa, pb = folder / f"shard-{a:06d}.npz", folder / f"shard-{b:06d}.npz"
        da, db = pa.read_bytes(), pb.read_bytes()
        pa.write_bytes(db)
        pb.write_bytes(da)
    elif op == "copied_tar":
        shutil.copy(folder / f"shard-{a:06d}.tar", folder / f"shard-{b:06d}.tar")
    elif op == "deleted_shard":
        (folder / f"shard-{a:06d}.tar").unlink()
        (folder / f"shard-{a:06d}.npz").unlink()
    elif op == "stray_temporary":
        (folder / f".shard-{a:06d}.tar.tmp").write_bytes(b"half a shard")
    else:  # the .tar of a committed shard vanished, its .npz stayed
        (folder / f"shard-{a:06d}.tar").unlink()
    return f"x_{op}"


def reseal(folder: Path) -> None:
    """Record the shards' current sizes and .npz hashes in the manifest, with a valid checksum."""
    manifest = Manifest.model_validate_json((folder / MANIFEST_NAME).read_bytes())
    for r in manifest.shards:
        tar, npz = folder / f"{r.name}.tar", folder / f"{r.name}.npz"
        if tar.exists():
            r.tar_bytes = tar.stat().st_size
        if npz.exists():
            r.npz_sha256 = hashlib.sha256(npz.read_bytes()).hexdigest()
    (folder / MANIFEST_NAME).write_bytes(manifest.with_checksum().model_dump_json(indent=2).encode())


def corrupt(folder: Path, rng, pristine: dict[str, str]) -> tuple[str, bool]:
    """Apply one random corruption that changes some file (a draw that changes nothing, such as
    permuting a constant array, is drawn again); (its class, resealed)."""
    for _ in range(20):
        kind, resealed = _corrupt_once(folder, rng)
        if _hashes(folder) != pristine:
            return kind, resealed
    raise AssertionError("20 draws in a row changed nothing")


def _corrupt_once(folder: Path, rng) -> tuple[str, bool]:
    shard = int(rng.integers(FRAMES // SHARD))
    roll = rng.random()
    if roll < 0.12:
        return "manifest:" + corrupt_bytes(folder / MANIFEST_NAME, rng), False
    if roll < 0.24:
        return "manifest:" + corrupt_manifest_json(folder / MANIFEST_NAME, rng), False
    if roll < 0.38:
        return "tar:" + corrupt_bytes(folder / f"shard-{shard:06d}.tar", rng), False
    if roll < 0.50:
        return "npz:" + corrupt_bytes(folder / f"shard-{shard:06d}.npz", rng), False
    resealed = bool(rng.random() < 0.5)
    if roll < 0.68:
        kind = "tar:" + corrupt_tar_structure(folder / f"shard-{shard:06d}.tar", rng)
    elif roll < 0.90:
        kind = "npz:" + corrupt_npz_arrays(folder / f"shard-{shard:06d}.npz", rng)
    else:
        kind = "shards:" + corrupt_across(folder, rng)
    if resealed:
        reseal(folder)
    return kind, resealed


# ------------------------------------------------------------------------------------------------
# what each case must satisfy


class Case:
    def __init__(self, seed: int, kind: str, resealed: bool):
        self.seed, self.kind, self.resealed = seed, kind, resealed
        self.failures: list[str] = []
        self.errors: dict[str, str] = {}  # reader -> its StoreError
        self.detected = False

    def fail(self, what: str) -> None:
        self.failures.append(f"case {self.seed} ({self.kind}{', resealed' if self.resealed else ''}): {what}")

    def call(self, name: str, fn):
        """fn() or None when it raised StoreError (recorded); any other exception is a failure."""
        try:
            return fn()
        except StoreError as e:
            message = str(e)
            if "\n" in message or not NAMES_A_FILE.search(message):
                self.fail(f"{name}: StoreError not one line naming a file: {message!r}")
            self.errors[name] = message
            self.detected = True
        except Exception as e:  # noqa: BLE001 - what the fuzz hunts
            self.fail(f"{name}: {type(e).__name__} instead of StoreError: {e}")
        return None


def rows_equal(got: dict, pristine: Pristine) -> bool:
    """`got` (arrays of some frames, any order) holds every key, each row equal to the pristine row."""
    got = {k: v for k, v in got.items() if k not in ("skeleton", "pairs_version")}
    ids = got["frame_id"] if "frame_id" in got else None
    if ids is None or len(np.unique(ids)) != len(ids) or not np.isin(ids, np.arange(FRAMES)).all():
        return False
    if set(got) != set(pristine.arrays):
        return False
    return all(np.array_equal(got[k], pristine.arrays[k][ids]) for k in got)


def check_readers(folder: Path, pristine: Pristine, case: Case) -> None:
    pending: list[tuple[str, bool]] = []  # (reader, values equal): judged once detection is known

    manifest = case.call("read_manifest", lambda: read_manifest(folder))
    if manifest is not None:
        got, want = manifest.model_dump(exclude={"checksum"}), pristine.manifest
        if case.resealed:  # the shard records were rewritten on purpose; the rest must be pristine
            got, want = ({**m, "shards": [(r["name"], r["first_frame"], r["count"]) for r in m["shards"]]} for m in (got, want))
        pending.append(("read_manifest", got == want))

    scan = case.call("scan_dataset", lambda: scan_dataset(folder, walk_tars=True))
    if scan is not None:
        if not scan.complete:
            case.detected = True
        for check in scan.sound:
            pending.append((f"scan_dataset[{check.name}]", rows_equal(check.arrays, pristine)))
        for problem in scan.problems():
            if "\n" in problem or not NAMES_A_FILE.search(problem):
                case.fail(f"scan problem not one line naming a file: {problem!r}")

    arrays = case.call("load_dataset_arrays", lambda: load_dataset_arrays(folder))
    if arrays is not None:
        pending.append(("load_dataset_arrays", rows_equal(arrays, pristine)))
        if len(arrays["frame_id"]) < FRAMES and (scan is None or scan.complete):
            case.fail("load_dataset_arrays returned fewer frames from a dataset that says it is complete")

    pairs = case.call("load_dataset_pairs", lambda: load_dataset_pairs(folder, mmap=True))
    if pairs is not None and arrays is not None and len(pairs) == len(arrays["frame_id"]):
        ids = arrays["frame_id"]
        pending.append(("load_dataset_pairs", all(np.array_equal(getattr(pairs, k), pristine.arrays[k][ids]) for k in PAIRS_KEYS)))
    elif pairs is not None:
        pending.append(("load_dataset_pairs", len(pairs) == FRAMES and all(np.array_equal(getattr(pairs, k), pristine.arrays[k]) for k in PAIRS_KEYS)))

    reader = case.call("DatasetReader", lambda: DatasetReader(folder))
    if reader is not None:
        for row in range(len(reader)):
            fid = int(reader.arrays["frame_id"][row])
            image = case.call("DatasetReader.image", lambda: reader.image(row))
            if image is not None:
                pending.append((f"DatasetReader.image({fid})", np.array_equal(image, pristine.images[fid])))
        reader.close()

    summary = case.call("summarize_dataset", lambda: summarize_dataset(folder))
    if summary is not None and scan is not None and (summary.frames_stored, summary.complete) != (scan.frames_stored, scan.complete):
        case.fail(f"summarize_dataset says {summary.frames_stored} frames, complete={summary.complete}; the disk holds {scan.frames_stored}")

    try:
        checked, problems = verify_dataset(folder)
    except Exception as e:  # noqa: BLE001
        case.fail(f"verify_dataset raised {type(e).__name__}: {e}")
        problems = []
    for problem in problems:
        if "\n" in problem or not NAMES_A_FILE.search(problem):
            case.fail(f"verify_dataset problem not one line naming a file: {problem!r}")
    if problems:
        case.detected = True
        case.errors.setdefault("verify_dataset", problems[0])

    # Values that differ from the pristine ones are acceptable only when the corruption forged the
    # manifest (resealed) and some check detected it; otherwise each reader must refuse on its own.
    for name, equal in pending:
        if not equal and not (case.resealed and case.detected):
            case.fail(f"{name}: returned values that differ from the pristine dataset")


def check_writer(folder: Path, pristine: Pristine, case: Case) -> str:
    """DatasetStore.open (a resume): refuses with StoreError, or moves damaged shards aside intact
    and keeps only pristine shards. Returns how it ended."""
    before = _hashes(folder)
    store = case.call("DatasetStore.open", lambda: DatasetStore.open(folder, CONFIG, FRAMES, SHARD, run_id="fuzz"))
    if store is None:
        writer_files = lambda h: {k: v for k, v in h.items() if k != ".lock" and not k.startswith(".shard-")}  # noqa: E731
        if writer_files(_hashes(folder)) != writer_files(before):
            case.fail("a refused open changed the folder")
        return "refused (StoreError)"
    missing = store.missing_frame_ids()
    quarantined = list(store.run.quarantined)
    store.close("stopped")
    after = _hashes(folder)
    kept = collections.Counter(h for rel, h in after.items())
    for rel, digest in before.items():
        gone = rel not in after or after[rel] != digest
        if gone and rel != MANIFEST_NAME and not rel.startswith(".shard-") and not kept[digest]:
            interrupted = rel.endswith(".npz") and not (folder / rel).with_suffix(".tar").exists()
            if not (interrupted and not any(r["name"] + ".npz" == rel for r in pristine.manifest["shards"])):
                case.fail(f"open lost {rel}")
    if any("moved to" in q for q in quarantined) and not (folder / QUARANTINE_DIR).is_dir():
        case.fail("open reported quarantined shards but made no quarantine folder")
    scan = scan_dataset(folder, walk_tars=True)
    if not np.array_equal(np.flatnonzero(~scan.committed), missing):
        case.fail("the frames the open store called missing are not the frames missing on disk")
    if scan.damaged:
        case.fail(f"open kept a shard that fails the checks: {scan.damaged[0].problem}")
    if not case.resealed:
        for check in scan.sound:
            if not rows_equal(check.arrays, pristine):
                case.fail(f"open kept {check.name} with values that differ from the pristine dataset")
    return f"resumed, {len(quarantined)} shard(s) set aside" if quarantined else "resumed, every shard kept"


@pytest.fixture
def scratch(tmp_path):
    """Where the cases live: memory (/dev/shm) when there is one, as copying, fsyncing and
    deleting 1,000 small folders on a disk takes longer than checking them."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="posebridge-fuzz-", dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    yield folder
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(300)
def test_fuzz_the_dataset_folder_reader(pristine, scratch, monkeypatch):
    monkeypatch.setattr(logging.getLogger("generator.store"), "level", logging.ERROR)  # a warning per case otherwise
    started = time.perf_counter()
    failures: list[str] = []
    endings: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for seed in range(CASES):
        folder = scratch / f"case{seed}"
        shutil.copytree(pristine.folder, folder)
        rng = np.random.default_rng(seed)
        case = Case(seed, *corrupt(folder, rng, pristine.hashes))
        on_disk = _hashes(folder)
        check_readers(folder, pristine, case)
        if _hashes(folder) != on_disk:
            case.fail("a read-only operation changed the folder")
        writer = check_writer(folder, pristine, case)
        first = next(iter(case.errors), None)  # the first reader, in the order called, that refused
        if first and first != "verify_dataset":
            reader = f"StoreError from {first}"
        elif first:
            reader = "reported by verify_dataset only"
        elif case.detected:
            reader = "flagged incomplete"
        else:
            reader = "every value read back pristine"
        endings[case.kind + (" (resealed)" if case.resealed else "")][f"{reader}; open {writer}"] += 1
        failures += case.failures
        shutil.rmtree(folder)
    elapsed = time.perf_counter() - started
    print(f"\n{CASES} corruptions in {elapsed:.1f} s")
    for kind in sorted(endings):
        print(f"  {kind}: " + ", ".join(f"{k} x{v}" for k, v in endings[kind].most_common()))
    assert not failures, f"{len(failures)} failures, e.g.:\n" + "\n".join(failures[:30])
    # Every class of corruption was tried.
    classes = {k.split(" ")[0] for k in endings}
    assert len(classes) >= 35, sorted(classes)
