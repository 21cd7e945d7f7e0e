"""Pairs file, version 1: the `.npz` interchange format that every command reads and writes.

The format is specified in docs/conventions.md. Files are plain uncompressed `np.savez` archives,
so users can write them with numpy alone; this module validates them on read (every error names
the key and the problem), writes them atomically, and can memory-map the arrays of a large file
instead of loading it.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import secrets
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from .camera import is_pinhole, project_points, right_view_points
from .skeleton import H36M_BONE_LENGTHS_MM, JOINT_NAMES, NUM_JOINTS, SKELETON_NAME, bone_lengths

log = logging.getLogger(__name__)

PAIRS_VERSION = 1
REQUIRED_KEYS = ("joints_2d", "joints_3d", "K", "image_size")
STRING_KEYS = ("subject", "sequence", "action", "camera")
OPTIONAL_KEYS = ("visibility", "joints_2d_right", "baseline_mm", *STRING_KEYS, "skeleton", "pairs_version")
KNOWN_SKELETONS = (SKELETON_NAME,)
VISIBILITY_OUTSIDE, VISIBILITY_OCCLUDED, VISIBILITY_VISIBLE = 0, 1, 2

# Finite-value checks walk big (memory-mapped) arrays in blocks of this many samples.
_CHECK_BLOCK = 1 << 18
# The unit and axis checks look at this many samples, evenly spaced (the same ones every time).
PLAUSIBILITY_SAMPLES = 2048
# Bone lengths over Human3.6M's (median over bones and samples) outside this range are not millimetres.
BONE_SCALE_RANGE = (0.3, 10.0)
# 2D whose every coordinate lies within +-this, with images larger than NORMALIZED_MIN_SIZE px, is normalized.
NORMALIZED_LIMIT = 1.5
NORMALIZED_MIN_SIZE = 16
# A reprojection gap that shrinks below this fraction of itself under a remapping of the 2D
# (x <-> y, or y flipped) says the remapping undoes the user's mistake; gaps below AXIS_GAP_MIN_PX
# are a match already.
AXIS_GAP_RATIO = 0.25
AXIS_GAP_MIN_PX = 5.0
# A median gap above this is reported (detected 2D, not the projection of the 3D).
REPORT_GAP_PX = 0.5
_gap_reported: set[str] = set()


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

    def select(self, index, copy: bool = True) -> "Pairs":
        """The samples at `index` (a slice, an integer array or a boolean mask), loaded into memory.

        With copy=False a slice gives views instead (e.g. to fill the head of a buffer in place).
        """
        get = np.array if copy else np.asarray
        fields = {}
        for f in dataclasses.fields(self):
            a = getattr(self, f.name)
            if a is None:
                fields[f.name] = None
            elif _is_shared(f.name, a):
                fields[f.name] = get(a)
            else:
                fields[f.name] = get(a[index])
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


def _check_finite(source: str, key: str, a: np.ndarray, depth: bool = False) -> None:
    """NaN/inf anywhere, and with depth=True a joint at or behind the camera (z <= 0), block by block."""
    n = a.shape[0] if a.ndim else 1
    flat = a.reshape(n, int(np.prod(a.shape[1:], dtype=np.int64)))
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
        if depth:
            z = block.reshape(len(block), NUM_JOINTS, 3)[..., 2]
            behind = z <= 0
            if behind.any():
                row, joint = (int(i[0]) for i in np.nonzero(behind))
                count = int(behind.sum())
                raise _fail(
                    source,
                    key,
                    f"sample {start + row}, joint {joint} ({JOINT_NAMES[joint]}) is at z = {z[row, joint]:g} mm, at or behind "
                    f"the camera ({count}{'+' if start + len(block) < n else ''} joints are); pairs v1 holds absolute 3D in "
                    "the OpenCV camera frame (z forward, > 0): root-relative joints, or a z axis pointing backwards?",
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
        name = sk.item().decode("utf-8", "replace") if sk.dtype.kind == "S" and sk.ndim == 0 else str(sk)
        if sk.ndim != 0 or sk.dtype.kind not in "US" or name not in KNOWN_SKELETONS:
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
    if not np.all(is_pinhole(Kb)):
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
            _check_finite(source, key, fields[key], depth=key == "joints_3d")
    pairs = Pairs(**fields)
    check_units_and_axes(pairs, source)
    return pairs


# ------------------------------------------------------------------------------------------------
# units and axes: the mistakes users make when they write pairs files themselves


def plausibility_rows(n: int, m: int = PLAUSIBILITY_SAMPLES) -> np.ndarray:
    """`m` evenly spaced sample indices of `n` (all of them when n <= m): cheap on memory maps, deterministic."""
    return np.unique(np.linspace(0, n - 1, min(n, m)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


def _median_gap(uv: np.ndarray, proj: np.ndarray, mask: np.ndarray) -> float:
    """Median over the masked joints of |uv - proj| in pixels (inf when nothing is masked in)."""
    d = np.linalg.norm(uv - proj, axis=-1)[mask]
    return float(np.median(d)) if d.size else float("inf")


def _check_2d_axes(
    source: str, key: str, uv: np.ndarray, proj: np.ndarray, size: np.ndarray, mask: np.ndarray, view: str = "the projection of joints_3d through K"
) -> float:
    """Refuse 2D that is normalized, has x and y swapped, or has y pointing up; return the median gap."""
    shown = uv[mask]
    if shown.size and np.abs(shown).max() <= NORMALIZED_LIMIT and size.min() >= NORMALIZED_MIN_SIZE:
        w, h = (int(v) for v in size[0])
        raise _fail(
            source,
            key,
            f"every coordinate lies within [-{NORMALIZED_LIMIT}, {NORMALIZED_LIMIT}] while the images are {w}x{h} px: "
            "the 2D looks normalized ([-1, 1] or [0, 1]); pairs v1 stores pixels (u = (x + 1) W / 2, v = (y + 1) H / 2 for [-1, 1])",
        )
    gap = _median_gap(uv, proj, mask)
    if not AXIS_GAP_MIN_PX < gap < np.inf:  # a match already, or no joint to compare
        return gap
    remaps = {
        "x and y are swapped (columns [y, x]); pairs v1 stores [u, v] = [column, row]": uv[..., ::-1],
        "y points up (v measured from the bottom); pairs v1 measures v down from the top edge": np.stack(
            [uv[..., 0], size[:, None, 1] - uv[..., 1]], axis=-1
        ),
    }
    for cause, remapped in remaps.items():
        fixed = _median_gap(remapped, proj, mask)
        if fixed < AXIS_GAP_RATIO * gap:
            raise _fail(
                source,
                key,
                f"lies a median {gap:.1f} px from {view}, and {fixed:.1f} px once remapped: {cause}",
            )
    return gap


def check_units_and_axes(pairs: Pairs, source: str = "<arrays>") -> float:
    """Refuse the unit and axis mistakes people make when they write pairs files, on a fixed
    subset of samples (`plausibility_rows`): 3D not in millimetres (bone lengths against
    Human3.6M's), 2D normalized instead of in pixels, 2D with x and y swapped or y pointing up
    (a reprojection gap that vanishes once remapped). 2D that merely differs from the projection
    of the 3D (detections paired with ground truth) is accepted: the median gap (px, over the
    joints with visibility > 0; inf when there are none) is returned, and logged once per source
    when above REPORT_GAP_PX.
    """
    rows = plausibility_rows(len(pairs))
    if rows.size == 0:
        return 0.0
    j3 = np.asarray(pairs.joints_3d[rows], dtype=np.float64)
    bones = bone_lengths(j3)[:, 1:] / H36M_BONE_LENGTHS_MM[1:]
    scale = float(np.median(bones))
    low, high = BONE_SCALE_RANGE
    if not low <= scale <= high:
        leg = float(np.median(bone_lengths(j3)[:, [2, 5]]))
        units = {"metres": 1e-3, "centimetres": 0.1, "inches": 1 / 25.4}
        guess = min(units, key=lambda u: abs(np.log(max(scale, 1e-12) / units[u])))
        if scale < 1e-6:
            cause = "the joints collapse to a point; this is not a pose"
        elif scale < low:
            cause = f"3D looks like {guess}; pairs v1 stores millimetres (multiply by {1 / units[guess]:g})"
        else:
            cause = "3D is not in millimetres"
        raise _fail(
            source,
            "joints_3d",
            f"bones are {scale:.3g} times Human3.6M's in millimetres (median thigh {leg:.3g}, a person's is ~440 mm): {cause}",
        )
    K = np.asarray(pairs.K_per_sample()[rows], dtype=np.float64)
    size = np.asarray(pairs.image_size_per_sample()[rows])
    mask = np.ones(j3.shape[:2], bool) if pairs.visibility is None else np.asarray(pairs.visibility[rows]) > 0
    gap = _check_2d_axes(source, "joints_2d", np.asarray(pairs.joints_2d[rows], dtype=np.float64), project_points(j3, K), size, mask)
    if pairs.joints_2d_right is not None:
        b = np.asarray(pairs.baseline_per_sample()[rows], dtype=np.float64)
        proj_right = project_points(right_view_points(j3, b), K)
        right = np.asarray(pairs.joints_2d_right[rows], dtype=np.float64)
        _check_2d_axes(source, "joints_2d_right", right, proj_right, size, mask, "the right view's projection of joints_3d")
    if REPORT_GAP_PX < gap < np.inf and source not in _gap_reported:
        _gap_reported.add(source)
        log.warning(
            "%s: joints_2d lies a median %.1f px from the projection of joints_3d through K (detected 2D?); accepted",
            source,
            gap,
        )
    return gap


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
        data_start = info.header_offset + 30 + name_len + extra_len
        f.seek(data_start)
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
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > data_start + info.compress_size:
        raise _fail(str(path), info.filename[:-4], f"its .npy header promises {nbytes} bytes of data, the archive member holds fewer")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def read_pairs_arrays(path: str | os.PathLike, mmap: bool = False) -> dict[str, np.ndarray]:
    """The raw arrays of an .npz (no validation). With mmap=True, stored members are memory-mapped."""
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path}: a folder, not a pairs .npz file")
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
                except ValueError as e:
                    if "pickle" in str(e):  # object arrays need pickle, which we never allow
                        raise _fail(str(path), key, "holds Python objects (pickled); store strings as a unicode array") from e
                    raise _fail(str(path), key, f"is not a readable .npy member ({e})") from e
        return out
    except PairsFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - damaged bytes surface from zipfile, tokenize, ast, numpy in many types
        raise PairsFormatError(f"{path}: not a readable .npz archive ({type(e).__name__}: {str(e)[:200]})") from e


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


def save_pairs(path: str | os.PathLike, pairs: Pairs | Mapping[str, np.ndarray], extra: Mapping[str, np.ndarray] | None = None) -> Path:
    """Validate and write a pairs v1 file atomically (temporary name, fsync, rename).

    `extra` holds per-sample arrays (N, ...) of keys pairs v1 does not define (e.g. `frame_id`),
    stored beside them; readers ignore them.
    """
    pairs = validate_pairs(pairs.arrays() if isinstance(pairs, Pairs) else pairs)
    for key, value in (extra or {}).items():
        if key in REQUIRED_KEYS or key in OPTIONAL_KEYS or np.shape(value)[:1] != (len(pairs),):
            raise ValueError(f"extra key '{key}': must be a new key with {len(pairs)} rows, got shape {np.shape(value)}")
    with PairsWriter(path, len(pairs)) as w:
        if extra:
            w.write(0, extra)
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


# Zip records (PKWARE APPNOTE 4.3), always with zip64 sizes so members may exceed 4 GiB.
_ZIP_VERSION = 45  # 4.5: zip64
_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01: a fixed stamp, so the same pairs give the same bytes
_ALIGN = 64  # member data starts on a 64-byte boundary in the file (memory maps, SIMD reads)
_PAD_ID = 0xD935  # extra-field id of alignment padding (as Android's zipalign uses)


@dataclasses.dataclass
class _Member:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    header_offset: int  # of the local file header
    data_offset: int  # of the array bytes (after the .npy header)
    size: int  # .npy header + data bytes
    extra: bytes  # the local header's extra field (zip64 sizes, alignment padding)
    crc: int = 0
    crc_rows: int = 0  # rows covered by `crc` so far (writes in order keep it running)
    crc_in_order: bool = True
    rows_written: int = 0

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


class PairsWriter:
    """Write a pairs v1 file of N samples in chunks, straight into its final layout.

    Each key is a stored (uncompressed, zip64) .npy member of the .npz, laid out in a temporary
    file when the key is first seen; chunks are written into place with `os.pwrite` (no memory
    map, no second copy), CRCs run along as chunks arrive in order. `close()` writes the zip
    directory, fsyncs and renames the file into place, so readers never see a partial file.
    Memory stays bounded by the chunk the caller holds. Use as a context manager; an exception
    discards everything. Numeric keys are laid out by their first `write`; string keys need a
    fixed width, so declare them first with `allocate` (or give them whole with `set_strings`).
    """

    def __init__(self, path: str | os.PathLike, n: int):
        self.path = Path(path)
        self.n = int(n)
        if self.n < 0:
            raise ValueError(f"{self.path}: the number of samples must be >= 0, got {n}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A hidden temporary beside the target (same file system, so the final rename is atomic);
        # created like any new file (0o666 less the umask), unlike mkstemp's 0o600.
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        self._fd: int | None = os.open(self._tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        self._end = 0
        self._members: dict[str, _Member] = {}
        self._constants: dict[str, np.ndarray] = {
            "skeleton": np.array(SKELETON_NAME),
            "pairs_version": np.array(PAIRS_VERSION, dtype=np.int32),
        }

    # -- layout ------------------------------------------------------------------------------------
    def _add_member(self, key: str, dtype: np.dtype, shape: tuple[int, ...]) -> _Member:
        if key in self._members:
            raise ValueError(f"{key}: already allocated")
        if dtype.hasobject:
            raise TypeError(f"{key}: object arrays cannot be stored (pairs v1 never pickles)")
        npy = io.BytesIO()
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
        np.lib.format.write_array_header_1_0(npy, header)
        npy_header = npy.getvalue()
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        name = f"{key}.npy".encode()
        offset = self._end
        zip64 = struct.pack("<HHQQ", 1, 16, len(npy_header) + nbytes, len(npy_header) + nbytes)
        data_offset = offset + 30 + len(name) + len(zip64) + 4 + len(npy_header)
        pad = (-data_offset) % _ALIGN
        extra = zip64 + struct.pack("<HH", _PAD_ID, pad) + b"\0" * pad
        member = _Member(
            name=name.decode(),
            dtype=dtype,
            shape=tuple(shape),
            header_offset=offset,
            data_offset=data_offset + pad,
            size=len(npy_header) + nbytes,
            extra=extra,
        )
        os.pwrite(self._fd, self._local_header(member, name, extra) + npy_header, offset)
        self._end = member.data_offset + nbytes
        os.ftruncate(self._fd, self._end)
        self._members[key] = member
        return member

    @staticmethod
    def _local_header(m: _Member, name: bytes, extra: bytes) -> bytes:
        return struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, _ZIP_VERSION, 0, 0, 0, _DOS_DATE, m.crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra)
        ) + name + extra

    def allocate(self, key: str, dtype, sample_shape: tuple[int, ...] = ()) -> None:
        """Lay out a per-sample key of N rows (required before writing strings, optional otherwise)."""
        self._add_member(key, np.dtype(dtype), (self.n, *sample_shape))

    # -- data --------------------------------------------------------------------------------------
    def _put(self, member: _Member, start: int, data: np.ndarray, crc: bool = True) -> None:
        rows = len(data) if data.ndim else 1
        if data.size == 0:
            return
        buf = memoryview(np.ascontiguousarray(data)).cast("B")
        os.pwrite(self._fd, buf, member.data_offset + start * member.row_bytes)
        if crc:
            self._crc(member, start, buf, rows)
        member.rows_written += rows

    @staticmethod
    def _crc(member: _Member, start: int, buf: memoryview, rows: int) -> None:
        """Extend the member's running CRC when these rows continue it (else it is redone at close)."""
        if member.crc_in_order and start == member.crc_rows:
            member.crc = zlib.crc32(buf, member.crc)
            member.crc_rows += rows
        else:
            member.crc_in_order = False

    def set_constant(self, key: str, value) -> None:
        """A key stored once for all samples (shared K (3,3), image_size (2,), scalar baseline)."""
        self._constants[key] = np.asarray(value)

    def write(self, start: int, chunk: Mapping[str, np.ndarray], crc: bool = True) -> None:
        """Store chunk[key][i] as sample start + i for every key in the chunk.

        A shared value (K (3,3), image_size (2,), a scalar baseline_mm) is stored once instead.
        `crc=False` leaves the checksum to `add_crc` (another thread may run it meanwhile).
        """
        for key, value in chunk.items():
            value = np.asarray(value)
            if _is_shared(key, value):
                self.set_constant(key, value)
                continue
            if value.ndim == 0:
                raise ValueError(f"{key}: a per-sample key needs a leading sample axis, got a scalar")
            if start < 0 or start + len(value) > self.n:
                raise ValueError(f"{key}: samples {start}..{start + len(value)} lie outside the file's {self.n}")
            member = self._members.get(key)
            if member is None:
                if value.dtype.kind in "US":
                    raise TypeError(f"{key}: declare string keys with allocate(key, 'U<width>') first (or use set_strings)")
                member = self._add_member(key, value.dtype, (self.n, *value.shape[1:]))
            if value.shape[1:] != member.shape[1:]:
                raise ValueError(f"{key}: rows of shape {value.shape[1:]} do not match the allocated {member.shape[1:]}")
            if value.dtype.kind == "U" and value.dtype.itemsize > member.dtype.itemsize:
                raise ValueError(f"{key}: strings of {value.dtype} do not fit the allocated {member.dtype}")
            self._put(member, start, value.astype(member.dtype, copy=False), crc)

    def add_crc(self, start: int, chunk: Mapping[str, np.ndarray]) -> None:
        """The checksum part of `write(start, chunk, crc=False)`: give the same chunks in sample
        order, from one thread (it may run while another thread writes them). The members must be
        laid out already (`allocate` or an earlier write)."""
        for key, value in chunk.items():
            value = np.asarray(value)
            if _is_shared(key, value) or value.size == 0:
                continue
            member = self._members[key]
            self._crc(member, start, memoryview(np.ascontiguousarray(value.astype(member.dtype, copy=False))).cast("B"), len(value))

    def set_strings(self, key: str, values: np.ndarray) -> None:
        """A per-sample string key, given whole (N,)."""
        values = np.asarray(values).astype(str)
        if values.shape != (self.n,):
            raise ValueError(f"{key}: expected shape ({self.n},), got {values.shape}")
        self._put(self._add_member(key, values.dtype, values.shape), 0, values)

    # -- finish ------------------------------------------------------------------------------------
    def _finish_crc(self, m: _Member) -> None:
        """CRC over the whole data when the writes did not all arrive in order."""
        if m.crc_in_order and m.crc_rows == m.rows:
            return
        m.crc = 0
        step = max(1, (1 << 24) // max(1, m.row_bytes))
        for row in range(0, m.rows, step):
            length = min(step, m.rows - row) * m.row_bytes
            m.crc = zlib.crc32(os.pread(self._fd, length, m.data_offset + row * m.row_bytes), m.crc)

    def close(self) -> Path:
        try:
            short = {k: m.rows_written for k, m in self._members.items() if m.rows_written < m.rows}
            if short:
                raise ValueError(f"{self.path}: keys written for fewer than all {self.n} samples: {short}")
            for key, value in self._constants.items():
                if key not in self._members:
                    self._put(self._add_member(key, value.dtype, value.shape), 0, value)
            central = bytearray()
            for m in self._members.values():
                # The CRC covers the .npy header too: fold it in front of the data's running CRC.
                header = os.pread(self._fd, m.data_offset - m.header_offset, m.header_offset)
                name = m.name.encode()
                npy_header = header[30 + len(name) + len(m.extra) :]
                self._finish_crc(m)
                m.crc = _crc_concat(zlib.crc32(npy_header), m.crc, m.size - len(npy_header))
                os.pwrite(self._fd, self._local_header(m, name, m.extra), m.header_offset)
                central += struct.pack(
                    "<IHHHHHHIIIHHHHHII", 0x02014B50, _ZIP_VERSION, _ZIP_VERSION, 0, 0, 0, _DOS_DATE, m.crc,
                    0xFFFFFFFF, 0xFFFFFFFF, len(name), 28, 0, 0, 0, 0o644 << 16, 0xFFFFFFFF,
                ) + name + struct.pack("<HHQQQ", 1, 24, m.size, m.size, m.header_offset)
            cd_offset = self._end
            count = len(self._members)
            eocd64 = cd_offset + len(central)
            tail = (
                bytes(central)
                + struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _ZIP_VERSION, _ZIP_VERSION, 0, 0, count, count, len(central), cd_offset)
                + struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
                + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF), min(len(central), 0xFFFFFFFF), 0xFFFFFFFF, 0)
            )
            os.pwrite(self._fd, tail, cd_offset)
            os.ftruncate(self._fd, cd_offset + len(tail))
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        _fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "PairsWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _gf2_matrix_times(mat: list[int], vec: int) -> int:
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _crc_concat(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine, which Python lacks)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << i for i in range(31)]  # the operator for one zero bit
    even = [_gf2_matrix_times(odd, odd[i]) for i in range(32)]  # two zero bits
    odd = [_gf2_matrix_times(even, even[i]) for i in range(32)]  # four zero bits
    while True:
        even = [_gf2_matrix_times(odd, odd[i]) for i in range(32)]  # square: one more doubling
        if len2 & 1:
            crc1 = _gf2_matrix_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_matrix_times(even, even[i]) for i in range(32)]
        if len2 & 1:
            crc1 = _gf2_matrix_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def iter_pair_chunks(pairs: Pairs, chunk: int) -> Iterator[Pairs]:
    """Consecutive chunks of `pairs` (loaded into memory one at a time)."""
    for start in range(0, len(pairs), chunk):
        yield pairs.select(slice(start, start + chunk))
