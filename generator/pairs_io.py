"""Pairs file, version 1: the `.npz` interchange format that every command reads and writes.

The format is specified in docs/conventions.md. Files are plain uncompressed `np.savez` archives,
so users can write them with numpy alone; this module validates them on read (every error names
the key and the problem), writes them atomically, and can memory-map the arrays of a large file
instead of loading it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .skeleton import NUM_JOINTS, SKELETON_NAME

log = logging.getLogger(__name__)

PAIRS_VERSION = 1
REQUIRED_KEYS = ("joints_2d", "joints_3d", "K", "image_size")
STRING_KEYS = ("subject", "sequence", "action", "camera")
OPTIONAL_KEYS = ("visibility", "joints_2d_right", "baseline_mm", *STRING_KEYS, "skeleton", "pairs_version")
KNOWN_SKELETONS = (SKELETON_NAME,)
VISIBILITY_OUTSIDE, VISIBILITY_OCCLUDED, VISIBILITY_VISIBLE = 0, 1, 2

# Finite-value checks walk big (memory-mapped) arrays in blocks of this many samples.
_CHECK_BLOCK = 1 << 18


class PairsFormatError(ValueError):
    """A pairs file (or array dict) does not follow pairs v1; the message names the key."""


@dataclasses.dataclass
class Pairs:
    """The arrays of a pairs v1 file. Shapes as in docs/conventions.md; N = len(self)."""

    joints_2d: np.ndarray  # float32 (N, 17, 2), pixels
    joints_3d: np.ndarray  # float32 (N, 17, 3), camera frame, mm, absolute
    K: np.ndarray  # float32 (N, 3, 3) or (3, 3)
    image_size: np.ndarray  # int32 (N, 2) or (2,), [width, height]
    visibility: np.ndarray | None = None  # uint8 (N, 17): 0 outside, 1 occluded, 2 visible
    joints_2d_right: np.ndarray | None = None  # float32 (N, 17, 2)
    baseline_mm: np.ndarray | None = None  # float32 () or (N,)
    subject: np.ndarray | None = None  # str (N,)
    sequence: np.ndarray | None = None
    action: np.ndarray | None = None
    camera: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.joints_2d.shape[0])

    def K_per_sample(self) -> np.ndarray:
        """K as (N, 3, 3), broadcasting a shared (3, 3)."""
        return np.broadcast_to(self.K, (len(self), 3, 3)) if self.K.ndim == 2 else self.K

    def image_size_per_sample(self) -> np.ndarray:
        """image_size as (N, 2), broadcasting a shared (2,)."""
        return np.broadcast_to(self.image_size, (len(self), 2)) if self.image_size.ndim == 1 else self.image_size

    def baseline_per_sample(self) -> np.ndarray | None:
        """baseline_mm as (N,), or None when the file has none."""
        if self.baseline_mm is None:
            return None
        return np.broadcast_to(self.baseline_mm, (len(self),))

    def arrays(self) -> dict[str, np.ndarray]:
        """The present keys as a dict, with the skeleton and version tags added."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}
        out["skeleton"] = np.array(SKELETON_NAME)
        out["pairs_version"] = np.array(PAIRS_VERSION, dtype=np.int32)
        return out

    def select(self, index) -> "Pairs":
        """The samples at `index` (a slice, an integer array or a boolean mask), loaded into memory."""
        fields = {}
        for f in dataclasses.fields(self):
            a = getattr(self, f.name)
            if a is None:
                fields[f.name] = None
            elif _is_shared(f.name, a):
                fields[f.name] = np.array(a)
            else:
                fields[f.name] = np.array(a[index])
        return Pairs(**fields)

    @staticmethod
    def concatenate(parts: list["Pairs"]) -> "Pairs":
        """One Pairs holding `parts` in order; optional keys survive only where every part has them."""
        if not parts:
            raise ValueError("nothing to concatenate")
        fields = {}
        for f in dataclasses.fields(Pairs):
            values = [getattr(p, f.name) for p in parts]
            if any(v is None for v in values):
                fields[f.name] = None
                continue
            if f.name == "K":
                values = [p.K_per_sample() for p in parts]
            elif f.name == "image_size":
                values = [p.image_size_per_sample() for p in parts]
            elif f.name == "baseline_mm":
                values = [p.baseline_per_sample() for p in parts]
            fields[f.name] = np.concatenate(values)
        return Pairs(**fields)


# Keys that may be stored once for all samples, and their number of dimensions when they are.
_SHARED_NDIM = {"K": 2, "image_size": 1, "baseline_mm": 0}


def _is_shared(key: str, value: np.ndarray) -> bool:
    return _SHARED_NDIM.get(key) == value.ndim


# ------------------------------------------------------------------------------------------------
# validation


def _fail(source: str, key: str, problem: str) -> PairsFormatError:
    return PairsFormatError(f"{source}: key '{key}': {problem}")


def _check_finite(source: str, key: str, a: np.ndarray) -> None:
    n = a.shape[0] if a.ndim else 1
    flat = a.reshape(n, -1) if a.ndim else a.reshape(1, -1)
    for start in range(0, n, _CHECK_BLOCK):
        block = np.asarray(flat[start : start + _CHECK_BLOCK])
        ok = np.isfinite(block)
        if not ok.all():
            bad_rows = np.flatnonzero(~ok.all(axis=1))
            raise _fail(
                source,
                key,
                f"holds NaN or infinite values (first at sample {start + bad_rows[0]}, "
                f"{int((~ok).sum())}+ values); mark missing joints with visibility 0 and a finite placeholder",
            )


def _as_float32(source: str, key: str, a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float32:
        return a
    if a.dtype.kind not in "fiu":
        raise _fail(source, key, f"must be numeric (float32), got dtype {a.dtype}")
    return a.astype(np.float32)


def _check_shape(source: str, key: str, a: np.ndarray, expected: tuple, spelled: str) -> None:
    if a.ndim != len(expected) or any(e is not None and s != e for s, e in zip(a.shape, expected)):
        raise _fail(source, key, f"expected shape {spelled}, got {tuple(a.shape)}")


def validate_pairs(arrays: Mapping[str, np.ndarray], source: str = "<arrays>") -> Pairs:
    """Check a dict of arrays against pairs v1 and return it as a `Pairs` (float32/int32/uint8).

    Raises `PairsFormatError` naming the key and the problem for: a missing key, a wrong dtype or
    shape, a length that differs from joints_2d's N, NaN/inf, an unknown skeleton or version,
    non-positive intrinsics or image sizes, and visibility values outside {0, 1, 2}.
    """
    for key in REQUIRED_KEYS:
        if key not in arrays:
            raise _fail(source, key, "required key is missing")
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        log.debug("%s: ignoring keys that pairs v1 does not define: %s", source, unknown)

    if "skeleton" in arrays:
        sk = np.asarray(arrays["skeleton"])
        if sk.ndim != 0 or sk.dtype.kind not in "US" or str(sk) not in KNOWN_SKELETONS:
            raise _fail(source, "skeleton", f"unknown skeleton {sk!r}; expected a 0-d string, one of {KNOWN_SKELETONS}")
    if "pairs_version" in arrays:
        version = np.asarray(arrays["pairs_version"])
        if version.ndim != 0 or version.dtype.kind not in "iu" or int(version) != PAIRS_VERSION:
            raise _fail(source, "pairs_version", f"unsupported version {version!r}; this reader reads version {PAIRS_VERSION}")

    j2 = _as_float32(source, "joints_2d", np.asarray(arrays["joints_2d"]))
    if j2.ndim != 3:
        raise _fail(source, "joints_2d", f"expected shape (N,{NUM_JOINTS},2), got {tuple(j2.shape)}")
    n = j2.shape[0]
    _check_shape(source, "joints_2d", j2, (n, NUM_JOINTS, 2), f"(N,{NUM_JOINTS},2)")
    j3 = _as_float32(source, "joints_3d", np.asarray(arrays["joints_3d"]))
    _check_shape(source, "joints_3d", j3, (n, NUM_JOINTS, 3), f"(N={n},{NUM_JOINTS},3)")

    K = _as_float32(source, "K", np.asarray(arrays["K"]))
    if K.shape != (3, 3):
        _check_shape(source, "K", K, (n, 3, 3), f"(N={n},3,3) or (3,3)")
    _check_finite(source, "K", K)
    Kb = K.reshape(-1, 3, 3)
    if not (np.all(Kb[:, 0, 0] > 0) and np.all(Kb[:, 1, 1] > 0)):
        raise _fail(source, "K", "focal lengths fx, fy must be positive")
    if not (np.all(Kb[:, 2, :2] == 0) and np.all(Kb[:, 2, 2] == 1) and np.all(Kb[:, 1, 0] == 0)):
        raise _fail(source, "K", "is not a pinhole intrinsics matrix [[fx,s,cx],[0,fy,cy],[0,0,1]]")

    size = np.asarray(arrays["image_size"])
    if size.dtype.kind not in "iu" and not (size.dtype.kind == "f" and np.all(np.mod(size, 1) == 0)):
        raise _fail(source, "image_size", f"must be integer [width, height], got dtype {size.dtype}")
    size = size.astype(np.int32)
    if size.shape != (2,):
        _check_shape(source, "image_size", size, (n, 2), f"(N={n},2) or (2,)")
    if not np.all(size > 0):
        raise _fail(source, "image_size", "width and height must be positive")

    fields: dict[str, np.ndarray | None] = {"joints_2d": j2, "joints_3d": j3, "K": K, "image_size": size}

    if "visibility" in arrays:
        vis = np.asarray(arrays["visibility"])
        _check_shape(source, "visibility", vis, (n, NUM_JOINTS), f"(N={n},{NUM_JOINTS})")
        if vis.dtype.kind not in "iub":
            raise _fail(source, "visibility", f"must be integer (uint8), got dtype {vis.dtype}")
        if vis.size and (vis.min() < 0 or vis.max() > 2):
            raise _fail(source, "visibility", "values must be 0 (outside), 1 (occluded) or 2 (visible)")
        fields["visibility"] = vis.astype(np.uint8, copy=False)

    if "joints_2d_right" in arrays:
        jr = _as_float32(source, "joints_2d_right", np.asarray(arrays["joints_2d_right"]))
        _check_shape(source, "joints_2d_right", jr, (n, NUM_JOINTS, 2), f"(N={n},{NUM_JOINTS},2)")
        if "baseline_mm" not in arrays:
            raise _fail(source, "baseline_mm", "required when joints_2d_right is present")
        fields["joints_2d_right"] = jr
    if "baseline_mm" in arrays:
        b = _as_float32(source, "baseline_mm", np.asarray(arrays["baseline_mm"]))
        if b.ndim != 0:
            _check_shape(source, "baseline_mm", b, (n,), f"a scalar or (N={n},)")
        _check_finite(source, "baseline_mm", b)
        if np.any(b == 0):
            raise _fail(source, "baseline_mm", "must be non-zero")
        fields["baseline_mm"] = b

    for key in STRING_KEYS:
        if key in arrays:
            s = np.asarray(arrays[key])
            if s.dtype.kind not in "US":
                raise _fail(source, key, f"must be a string array, got dtype {s.dtype}")
            _check_shape(source, key, s, (n,), f"(N={n},)")
            fields[key] = s

    for key in ("joints_2d", "joints_3d", "joints_2d_right"):
        if fields.get(key) is not None:
            _check_finite(source, key, fields[key])
    return Pairs(**fields)


# ------------------------------------------------------------------------------------------------
# reading


def _npz_member_memmap(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray | None:
    """Memory-map one stored (uncompressed) .npy member of a zip, or None when it cannot be."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)
        if local[:4] != b"PK\x03\x04":
            return None
        name_len = int.from_bytes(local[26:28], "little")
        extra_len = int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        if dtype.hasobject:
            return None
        offset = f.tell()
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def read_pairs_arrays(path: str | os.PathLike, mmap: bool = False) -> dict[str, np.ndarray]:
    """The raw arrays of an .npz (no validation). With mmap=True, stored members are memory-mapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such pairs file")
    try:
        out: dict[str, np.ndarray] = {}
        if mmap:
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.filename.endswith(".npy"):
                        a = _npz_member_memmap(path, zf, info)
                        if a is not None:
                            out[info.filename[:-4]] = a
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                if key in out:
                    continue
                try:
                    out[key] = z[key]
                except ValueError as e:  # object arrays need pickle, which we never allow
                    raise _fail(str(path), key, f"cannot be read without pickle ({e}); store strings as a unicode array")
        return out
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise PairsFormatError(f"{path}: not a readable .npz archive ({e})") from e


def load_pairs(path: str | os.PathLike, mmap: bool = False) -> Pairs:
    """Read and validate a pairs v1 file. mmap=True keeps big arrays on disk (read-only)."""
    arrays = read_pairs_arrays(path, mmap=mmap)
    return validate_pairs(arrays, source=str(path))


# ------------------------------------------------------------------------------------------------
# writing


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_pairs(path: str | os.PathLike, pairs: Pairs | Mapping[str, np.ndarray]) -> Path:
    """Validate and write a pairs v1 file atomically (temporary name, fsync, rename)."""
    pairs = validate_pairs(pairs.arrays() if isinstance(pairs, Pairs) else pairs)
    with PairsWriter(path, len(pairs)) as w:
        for key, value in pairs.arrays().items():
            if key in _CONSTANT_KEYS:
                continue
            if key in STRING_KEYS:
                w.set_strings(key, value)
            elif _is_shared(key, value):
                w.set_constant(key, value)
            else:
                w.write(0, {key: value})
    return Path(path)


_CONSTANT_KEYS = ("skeleton", "pairs_version")


class PairsWriter:
    """Write a pairs v1 file of N samples in chunks, with memory bounded by one chunk.

    Each per-sample key is filled into an on-disk .npy beside the target; `close()` stores them
    (uncompressed, zip64) into a temporary .npz, fsyncs it and renames it into place, so readers
    never see a partial file. Use as a context manager; an exception discards everything.
    """

    def __init__(self, path: str | os.PathLike, n: int):
        self.path = Path(path)
        self.n = int(n)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._arrays: dict[str, np.ndarray] = {}
        self._constants: dict[str, np.ndarray] = {
            "skeleton": np.array(SKELETON_NAME),
            "pairs_version": np.array(PAIRS_VERSION, dtype=np.int32),
        }

    def set_constant(self, key: str, value) -> None:
        """A key stored once for all samples (shared K (3,3), image_size (2,), scalar baseline)."""
        self._constants[key] = np.asarray(value)

    def write(self, start: int, chunk: Mapping[str, np.ndarray]) -> None:
        """Store chunk[key][i] as sample start + i for every key in the chunk."""
        for key, value in chunk.items():
            value = np.asarray(value)
            if key not in self._arrays:
                if value.dtype.kind == "U":  # strings: fixed width chosen by the first chunk is not safe
                    raise TypeError(f"{key}: write string keys with set_strings()")
                self._arrays[key] = np.lib.format.open_memmap(
                    self._tmpdir / f"{key}.npy", mode="w+", dtype=value.dtype, shape=(self.n,) + value.shape[1:]
                )
            self._arrays[key][start : start + len(value)] = value

    def set_strings(self, key: str, values: np.ndarray) -> None:
        """A per-sample string key, given whole (N,) (strings are small next to the joints)."""
        values = np.asarray(values)
        if values.shape != (self.n,):
            raise ValueError(f"{key}: expected shape ({self.n},), got {values.shape}")
        np.save(self._tmpdir / f"{key}.npy", values.astype(str))

    def close(self) -> Path:
        for a in self._arrays.values():
            a.flush()
        self._arrays.clear()
        for key, value in self._constants.items():
            np.save(self._tmpdir / f"{key}.npy", value)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for member in sorted(self._tmpdir.glob("*.npy")):
                with open(member, "rb") as src, zf.open(member.name, "w", force_zip64=True) as dst:
                    shutil.copyfileobj(src, dst, length=1 << 22)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        shutil.rmtree(self._tmpdir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        self._arrays.clear()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> "PairsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def iter_pair_chunks(pairs: Pairs, chunk: int) -> Iterator[Pairs]:
    """Consecutive chunks of `pairs` (loaded into memory one at a time)."""
    for start in range(0, len(pairs), chunk):
        yield pairs.select(slice(start, start + chunk))
