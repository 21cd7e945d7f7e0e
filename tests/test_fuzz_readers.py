"""Seeded fuzzing of every file reader: pairs .npz, BVH, DeepMimic JSON and COCO keypoints JSON.

Each reader gets at least 1,000 corruptions of a real file, of two kinds:

- *byte-level* (truncation, bit flips, random or hostile bytes, deleted, inserted, repeated or swapped
  spans and lines). The result may still be a valid file, so acceptance is allowed, but only when
  an oracle written here, independent of the reader, finds the loaded values valid: finite,
  within the documented bounds, and (where the format has a checksum) equal to the original;
- *structured* (NaN and inf, absurd magnitudes, negative depth, wrong dtypes and shapes, missing
  keys, zero lengths, unit and axis mistakes). Each breaks a documented rule, so acceptance fails
  the test.

For every case: the reader raises only its documented error type (any other exception, or a
numpy warning, is a failure), the message names the file (and the key, line or id where the
corruption has one), and the file and its folder are unchanged afterwards (hashed before and after).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from generator.bvh import MAX_ABS_VALUE, BVHParseError
from generator.deepmimic import MAX_DURATION_S, MAX_ROOT_M, DeepMimicFormatError
from generator.mocap import DATA_DIR, ClipError, NameMapError, load_clip
from generator.pairs_io import PairsFormatError, load_pairs
from train.label import COCO_FIXTURE, KEYPOINT_MARGIN, CocoFormatError, read_coco

from train_support import make_pairs

CASES = 1200  # per reader; at least 1,000 as the issue asks
BYTE_SHARE = 0.55  # the rest are structured corruptions


@dataclasses.dataclass
class Outcome:
    """What happened to one case: rejected (with a message) or accepted (and checked)."""

    rejected: bool
    message: str = ""


class Fuzz:
    """Runs cases against one reader and keeps the tally; every broken promise is a failure line."""

    def __init__(self, folder: Path, suffix: str, read: Callable, errors: tuple[type[BaseException], ...]):
        self.folder, self.suffix, self.read, self.errors = folder, suffix, read, errors
        self.tally: Counter = Counter()
        self.failures: list[str] = []
        self.count = 0

    def run(self, label: str, data: bytes, *, must_fail: bool, names: tuple[str, ...] = (), oracle: Callable | None = None) -> None:
        """One case: write `data`, read it, check the outcome and that nothing on disk changed.

        `names`: strings the error message must hold besides the path (one of them when several).
        `oracle(result, data)`: problems of an accepted result (a list of strings; empty is fine).
        """
        self.count += 1
        path = self.folder / f"case{self.count}{self.suffix}"
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        listing = sorted(p.name for p in self.folder.iterdir())
        kind = label.split(":")[0]
        result = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # an overflow warning is a silent problem
                result = self.read(path)
        except self.errors as e:
            message = str(e)
            self.tally[f"{kind}: rejected"] += 1
            if "\n" in message:
                self.failures.append(f"{label}: a multi-line message: {message!r}")
            if str(path) not in message:
                self.failures.append(f"{label}: the message does not name the file: {message}")
            elif names and not any(n in message for n in names):
                self.failures.append(f"{label}: the message names none of {names}: {message}")
        except Exception as e:  # noqa: BLE001 - any other type would reach users as a traceback
            self.failures.append(f"{label}: {type(e).__name__} (not {'/'.join(t.__name__ for t in self.errors)}): {e}")
        else:
            self.tally[f"{kind}: accepted"] += 1
            if must_fail:
                self.failures.append(f"{label}: silently accepted")
            elif oracle is not None:
                self.failures += [f"{label}: accepted with {p}" for p in oracle(result, data)]
        del result  # drop memory maps before the file goes
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            self.failures.append(f"{label}: the file changed on disk")
        if sorted(p.name for p in self.folder.iterdir()) != listing:
            self.failures.append(f"{label}: files appeared or vanished beside it")
        path.unlink()

    def check(self, name: str) -> None:
        assert self.count >= 1000
        summary = ", ".join(f"{k} {v}" for k, v in sorted(self.tally.items()))
        print(f"\n{name}: {self.count} corruptions: {summary}")
        assert not self.failures, f"{len(self.failures)} of {self.count} cases failed:\n" + "\n".join(self.failures[:15])


# ------------------------------------------------------------------------------------------------
# byte-level corruption, shared by every reader

HOSTILE = [b"nan", b"NaN", b"inf", b"Infinity", b"-1e300", b"1e300", b"1e999", b"null", b"true", b'"x"', b"{", b"}", b"[", b"]",
           b",", b"-", b".", b"e", b"\x00", b"\xff\xfe", b"\n", b" ", b"PK\x03\x04", b"JOINT", b"End Site", b"99999999999"]  # fmt: skip


def corrupt_bytes(rng: np.random.Generator, data: bytes) -> tuple[str, bytes]:
    """One random byte-level corruption of `data`: (what was done, the result)."""
    n = len(data)
    op = rng.choice(["truncate", "flip", "random", "hostile", "delete", "insert", "repeat", "swap", "zero", "empty"], p=[0.14, 0.22, 0.1, 0.14, 0.1, 0.08, 0.06, 0.06, 0.07, 0.03])
    at = int(rng.integers(0, n))
    span = int(rng.integers(1, 64))
    if op == "truncate":
        return f"truncate at {at}", data[:at]
    if op == "flip":
        out = bytearray(data)
        for _ in range(int(rng.integers(1, 5))):
            i = int(rng.integers(0, n))
            out[i] ^= 1 << int(rng.integers(0, 8))
        return "flip bits", bytes(out)
    if op == "random":
        junk = rng.bytes(span)
        return f"random bytes at {at}", data[:at] + junk + data[at + span :]
    if op == "hostile":
        junk = HOSTILE[int(rng.integers(len(HOSTILE)))]
        return f"{junk!r} over {at}", data[:at] + junk + data[at + len(junk) :]
    if op == "delete":
        return f"delete {span} at {at}", data[:at] + data[at + span :]
    if op == "insert":
        junk = HOSTILE[int(rng.integers(len(HOSTILE)))]
        return f"insert {junk!r} at {at}", data[:at] + junk + data[at:]
    if op == "repeat":
        return f"repeat {span} at {at}", data[:at] + data[at : at + span] * 2 + data[at + span :]
    if op == "swap":
        other = int(rng.integers(0, n))
        a, b = sorted((at, other))
        if b - a < span:
            return f"reverse {span} at {at}", data[:at] + data[at : at + span][::-1] + data[at + span :]
        return f"swap spans {a}, {b}", data[:a] + data[b : b + span] + data[a + span : b] + data[a : a + span] + data[b + span :]
    if op == "zero":
        return f"zero {span} at {at}", data[:at] + bytes(min(span, n - at)) + data[at + span :]
    return "empty file", b""


# ------------------------------------------------------------------------------------------------
# pairs .npz


def _pairs_base() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = make_pairs(rng, 12, right_baseline_mm=500.0).arrays()
    uv, size = arrays["joints_2d"], arrays["image_size"][:, None, :]
    arrays["visibility"] = np.where(((uv >= 0) & (uv < size)).all(-1), 2, 0).astype(np.uint8)
    arrays["subject"] = np.array([f"S{i % 3}" for i in range(12)])
    return arrays


def _savez(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _pairs_oracle(original: dict[str, np.ndarray], checksummed: bool):
    """Independent of validate_pairs: pairs v1's documented rules, and with a checksummed read
    (no memory map) the loaded values must equal the original ones."""

    def oracle(pairs, _data) -> list[str]:
        a = pairs.arrays()
        problems = []
        if checksummed:
            for key, value in original.items():
                if key not in a or a[key].shape != value.shape or not np.array_equal(np.asarray(a[key]), value):
                    problems.append(f"'{key}' changed under a CRC-checked read")
        n = len(pairs)
        j2, j3, K, size = (np.asarray(a[k]) for k in ("joints_2d", "joints_3d", "K", "image_size"))
        if j2.shape != (n, 17, 2) or j3.shape != (n, 17, 3) or K.shape[-2:] != (3, 3) or size.shape[-1] != 2:
            problems.append("wrong shapes")
            return problems
        for key in ("joints_2d", "joints_3d", "K", "joints_2d_right", "baseline_mm"):
            if key in a and not np.isfinite(np.asarray(a[key], dtype=np.float64)).all():
                problems.append(f"non-finite '{key}'")
        if not (j3[..., 2] > 0).all():
            problems.append("a joint at or behind the camera")
        if not ((K[..., 0, 0] > 0).all() and (K[..., 1, 1] > 0).all() and (K[..., 1, 0] == 0).all() and (K[..., 2, :] == [0, 0, 1]).all()):
            problems.append("K not a pinhole matrix")
        if not (size > 0).all() or size.dtype.kind not in "iu":
            problems.append("bad image_size")
        if "visibility" in a and not np.isin(np.asarray(a["visibility"]), [0, 1, 2]).all():
            problems.append("visibility outside {0, 1, 2}")
        if "baseline_mm" in a and (np.asarray(a["baseline_mm"]) == 0).any():
            problems.append("zero baseline")
        return problems

    return oracle


def _pairs_structured(rng: np.random.Generator, base: dict[str, np.ndarray]) -> tuple[str, dict[str, np.ndarray], tuple[str, ...]]:
    """A corruption that breaks a documented rule: (what, arrays, keys the message may name)."""
    a = {k: np.array(v) for k, v in base.items()}  # copies, 0-d arrays included
    n = len(a["joints_2d"])
    i, j = int(rng.integers(n)), int(rng.integers(17))
    floats = ["joints_2d", "joints_3d", "joints_2d_right", "K"]
    kind = rng.choice(
        ["nonfinite", "depth", "negate z", "root-relative", "units", "swap", "y up", "normalized", "shape", "rows", "dtype",
         "pickled", "missing", "zero length", "bad K", "image size", "visibility", "baseline", "tags"]
    )  # fmt: skip
    if kind == "nonfinite":
        key = floats[int(rng.integers(len(floats)))] if rng.random() < 0.9 else "baseline_mm"
        flat = a[key].reshape(-1)
        flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
        if key == "K":
            return f"nonfinite: {key}", a, ("'K'",)
        return f"nonfinite: {key}", a, (f"'{key}'",)
    if kind == "depth":
        a["joints_3d"][i, j, 2] = rng.choice([0.0, -1.0, -4000.0])
        return f"depth: sample {i}, joint {j}", a, (f"sample {i}, joint {j}",)
    if kind == "negate z":
        a["joints_3d"][..., 2] *= -1
        return kind, a, ("'joints_3d'",)
    if kind == "root-relative":
        a["joints_3d"] -= a["joints_3d"][:, :1]
        return kind, a, ("'joints_3d'",)
    if kind == "units":
        factor, unit = [(1e-3, "metres"), (0.1, "centimetres"), (1 / 25.4, "inches")][int(rng.integers(3))]
        a["joints_3d"] = (a["joints_3d"] * factor).astype(np.float32)
        return f"units: {unit}", a, (unit,)
    if kind == "swap":
        key = ["joints_2d", "joints_2d_right"][int(rng.integers(2))]
        a[key] = np.ascontiguousarray(a[key][..., ::-1])
        return f"swap: {key}", a, ("x and y are swapped",)
    if kind == "y up":
        a["joints_2d"][..., 1] = a["image_size"][:, None, 1] - a["joints_2d"][..., 1]
        return kind, a, ("y points up",)
    if kind == "normalized":
        scaled = a["joints_2d"] / a["image_size"][:, None, :]
        a["joints_2d"] = (scaled * 2 - 1 if rng.random() < 0.5 else scaled).astype(np.float32)
        return kind, a, ("looks normalized",)
    if kind == "shape":
        key = ["joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "image_size"][int(rng.integers(6))]
        v = a[key]
        change = int(rng.integers(4))
        a[key] = [v[..., :-1], np.concatenate([v, v[..., :1]], axis=-1), v.reshape(-1), v[None]][change]
        return f"shape: {key} {a[key].shape}", a, ("'",)  # any key: N comes from joints_2d
    if kind == "rows":
        key = ["joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "image_size", "subject"][int(rng.integers(7))]
        a[key] = a[key][:-1] if rng.random() < 0.5 else np.concatenate([a[key], a[key][:1]])
        return f"rows: {key}", a, ("'",)
    if kind == "dtype":
        key = ["joints_2d", "joints_3d", "K", "image_size", "visibility", "subject"][int(rng.integers(6))]
        if key == "subject":
            a[key] = np.arange(n)
        elif key == "visibility":
            a[key] = a[key].astype(np.float32)
        elif key == "image_size":
            a[key] = a[key] + 0.5
        else:
            a[key] = [a[key].astype(str), a[key].astype(np.complex64), a[key] > 0][int(rng.integers(3))]
        return f"dtype: {key} {a[key].dtype}", a, (f"'{key}'",)
    if kind == "pickled":
        key = ["joints_2d", "subject"][int(rng.integers(2))]
        a[key] = np.array(list(a[key]), dtype=object) if key == "subject" else a[key].astype(object)
        return f"pickled: {key}", a, (f"'{key}'",)
    if kind == "missing":
        key = ["joints_2d", "joints_3d", "K", "image_size", "baseline_mm"][int(rng.integers(5))]
        del a[key]
        return f"missing: {key}", a, (f"'{key}'",)
    if kind == "zero length":
        key = ["joints_3d", "joints_2d_right", "visibility", "K", "image_size", "subject"][int(rng.integers(6))]
        a[key] = a[key][:0]
        return f"zero length: {key}", a, (f"'{key}'",)
    if kind == "bad K":
        r, c, v = [(0, 0, 0.0), (1, 1, -1000.0), (2, 2, 0.0), (1, 0, 3.0), (2, 0, 1.0)][int(rng.integers(5))]
        a["K"][i, r, c] = v
        return f"bad K: [{r},{c}] = {v}", a, ("'K'",)
    if kind == "image size":
        a["image_size"][i, int(rng.integers(2))] = rng.choice([0, -640])
        return kind, a, ("'image_size'",)
    if kind == "visibility":
        a["visibility"][i, j] = rng.choice([3, 7, 255])
        return kind, a, ("'visibility'",)
    if kind == "baseline":
        a["baseline_mm"] = np.float32(0.0)
        return kind, a, ("'baseline_mm'",)
    key = ["skeleton", "pairs_version"][int(rng.integers(2))]
    a[key] = np.array("coco17") if key == "skeleton" else np.array(2, np.int32)
    return f"tags: {key}", a, (f"'{key}'",)


def test_fuzz_pairs_npz(tmp_path):
    from generator.pairs_io import save_pairs

    base = _pairs_base()
    save_pairs(tmp_path / "written.npz", base)
    originals = {"writer": (tmp_path / "written.npz").read_bytes(), "numpy": _savez(base)}
    loaded = load_pairs(tmp_path / "written.npz").arrays()  # what a good read gives (tags added)
    (tmp_path / "written.npz").unlink()
    rng = np.random.default_rng(20260101)
    fuzz = Fuzz(tmp_path, ".npz", None, (PairsFormatError,))
    for case in range(CASES):
        mmap = bool(case % 2)
        fuzz.read = lambda p, mmap=mmap: load_pairs(p, mmap=mmap)
        if rng.random() < BYTE_SHARE:
            which = ["writer", "numpy"][case % 4 // 2]
            what, data = corrupt_bytes(rng, originals[which])
            fuzz.run(f"bytes: {which} mmap={mmap} {what}", data, must_fail=False, oracle=_pairs_oracle(loaded if which == "writer" else base, not mmap))
        else:
            what, arrays, names = _pairs_structured(rng, base)
            fuzz.run(f"structured: {what} mmap={mmap}", _savez(arrays), must_fail=True, names=names)
    fuzz.check("pairs .npz")


# ------------------------------------------------------------------------------------------------
# BVH (through load_clip: parsing, forward kinematics, units, floor)

BVH_FRAMES = 10


def _bvh_base() -> bytes:
    lines = (DATA_DIR / "cmu_walks" / "07_01.bvh").read_bytes().split(b"\n")
    i = next(k for k, x in enumerate(lines) if x.startswith(b"Frames:"))
    return b"\n".join(lines[:i] + [b"Frames: %d" % BVH_FRAMES] + lines[i + 1 : i + 2 + BVH_FRAMES]) + b"\n"


def _bvh_oracle(result, data: bytes) -> list[str]:
    """Independent of the parser: the declared MOTION rows hold only plausible decimal numbers,
    and the poses are finite."""
    joints, info = result
    problems = []
    if joints.dtype != np.float32 or joints.ndim != 3 or joints.shape[1:] != (17, 3) or len(joints) == 0:
        problems.append(f"joints of shape {joints.shape}")
    if not np.isfinite(joints).all():
        problems.append("non-finite joints")
    if not (np.isfinite(info.fps) and info.fps > 0):
        problems.append(f"fps {info.fps}")
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    frames = [k for k, x in enumerate(text) if x.strip().upper().startswith(b"FRAMES:")]
    times = [k for k, x in enumerate(text) if x.strip().upper().startswith(b"FRAME TIME")]
    if frames and times:
        declared = int(text[frames[-1]].split(b":")[1])
        rows = [x for x in text[times[-1] + 1 :] if x.split()][:declared]
        for row in rows:
            for tok in row.split():
                if not re.fullmatch(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", tok) or not abs(float(tok)) <= MAX_ABS_VALUE:
                    problems.append(f"motion value {tok!r}")
                    return problems
    return problems


def _bvh_structured(rng: np.random.Generator, base: bytes) -> tuple[str, bytes, tuple[str, ...]]:
    lines = base.split(b"\n")
    f_line = next(k for k, x in enumerate(lines) if x.startswith(b"Frames:"))
    t_line = f_line + 1
    motion = list(range(t_line + 1, t_line + 1 + BVH_FRAMES))
    offsets = [k for k, x in enumerate(lines) if x.strip().startswith(b"OFFSET")]
    kind = rng.choice(["value", "drop value", "extra value", "offset", "frames", "frame time", "cut motion", "empty", "no frames", "channels"])

    def at(k: int, text: bytes) -> tuple[bytes, tuple[str, ...]]:
        out = list(lines)
        out[k] = text
        return b"\n".join(out), (f":{k + 1}: ",)

    if kind in ("value", "drop value", "extra value"):
        k = motion[int(rng.integers(len(motion)))]
        toks = lines[k].split()
        c = int(rng.integers(len(toks)))
        if kind == "value":
            toks[c] = [b"nan", b"inf", b"-inf", b"1e300", b"-1e300", b"2e7", b"abc", b"0x10", b"1,5", b"--1"][int(rng.integers(10))]
        elif kind == "drop value":
            del toks[c]
        else:
            toks.insert(c, b"0")
        data, names = at(k, b" ".join(toks))
        return f"{kind}: line {k + 1}", data, names
    if kind == "offset":
        k = offsets[int(rng.integers(len(offsets)))]
        indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
        bad = [b"nan", b"1e300", b"x", b"-9e99"][int(rng.integers(4))]
        data, names = at(k, indent + b"OFFSET 0 " + bad + b" 0")
        return f"offset: line {k + 1}", data, names
    if kind == "frames":
        bad = [b"Frames: %d" % (BVH_FRAMES + 3), b"Frames: -1", b"Frames: x", b"Frames:"][int(rng.integers(4))]
        data, _ = at(f_line, bad)
        return f"frames: {bad!r}", data, ()
    if kind == "frame time":
        bad = [b"0", b"-0.1", b"nan", b"1e-300", b"1e9", b"x"][int(rng.integers(6))]
        data, names = at(t_line, b"Frame Time: " + bad)
        return f"frame time {bad!r}", data, names
    if kind == "cut motion":
        keep = int(rng.integers(0, BVH_FRAMES))
        return f"cut motion to {keep} rows", b"\n".join(lines[: motion[0] + keep]) + b"\n", ()
    if kind == "empty":
        return "empty", b"", (":1: empty file",)
    if kind == "no frames":
        return "no frames", b"\n".join(lines[:f_line] + [b"Frames: 0"] + lines[t_line : motion[0]]) + b"\n", ("no frames",)
    k = next(k for k, x in enumerate(lines) if b"CHANNELS" in x)
    data, _ = at(k, lines[k].replace(b"CHANNELS 6", b"CHANNELS 5"))
    return "channels", data, ()


def test_fuzz_bvh(tmp_path):
    base = _bvh_base()
    rng = np.random.default_rng(20260102)
    fuzz = Fuzz(tmp_path, ".bvh", lambda p: load_clip(p, fps=None), (BVHParseError, ClipError, NameMapError))
    for _ in range(CASES):
        if rng.random() < BYTE_SHARE:
            what, data = corrupt_bytes(rng, base)
            fuzz.run(f"bytes: {what}", data, must_fail=False, oracle=_bvh_oracle)
        else:
            what, data, names = _bvh_structured(rng, base)
            fuzz.run(f"structured: {what}", data, must_fail=True, names=names)
    fuzz.check("BVH")


# ------------------------------------------------------------------------------------------------
# DeepMimic JSON (through load_clip: parsing, resampling, forward kinematics)


def _deepmimic_base() -> dict:
    clip = json.loads((DATA_DIR / "deepmimic" / "motions" / "humanoid3d_walk.txt").read_text())
    return {"Loop": clip["Loop"], "Frames": clip["Frames"][:8]}


def _deepmimic_oracle(result, data: bytes) -> list[str]:
    """Independent of the reader: the text is a DeepMimic clip of plausible numbers, the poses finite."""
    joints, info = result
    problems = []
    if joints.dtype != np.float32 or joints.ndim != 3 or joints.shape[1:] != (17, 3) or not np.isfinite(joints).all():
        problems.append("joints not finite (F, 17, 3) float32")
    try:
        frames = json.loads(data)["Frames"]
    except Exception as e:  # noqa: BLE001
        return problems + [f"text that is no clip ({e})"]
    values = [v for f in frames for v in f]
    if any(type(v) not in (int, float) for v in values) or len({len(f) for f in frames}) != 1:
        return problems + ["non-numbers or ragged frames"]
    v = np.asarray(frames, dtype=np.float64)
    if not np.isfinite(v).all() or (np.abs(v[:, 1:4]) > MAX_ROOT_M).any() or (np.abs(v) > MAX_ABS_VALUE).any():
        problems.append("implausible values")
    if (v[:, 0] < 0).any() or v[:-1, 0].sum() > MAX_DURATION_S:
        problems.append("bad dt")
    return problems


def _deepmimic_structured(rng: np.random.Generator, base: dict) -> tuple[str, bytes, tuple[str, ...]]:
    clip = json.loads(json.dumps(base))
    frames = clip["Frames"]
    i = int(rng.integers(len(frames)))
    j = int(rng.integers(len(frames[0])))
    kind = rng.choice(["value", "drop value", "extra value", "no frames", "frames not a list", "frame not a list", "dt", "quaternion", "not an object", "empty"])
    names: tuple[str, ...] = ()
    if kind == "value":
        bad = [float("nan"), float("inf"), -float("inf"), 1e300, None, "1.0", True, [1.0]][int(rng.integers(8))]
        if bad == 1e300 and j == 0:
            j = 1  # a huge dt is caught as a duration, named below
        frames[i][j] = bad
        names = (f"frame {i}, value {j} ",)
    elif kind == "drop value":
        del frames[i][j]
        names = (f"frame {i} has",)
    elif kind == "extra value":
        frames[i].insert(j, 0.0)
        names = (f"frame {i} has",)
    elif kind == "no frames":
        clip = {"Loop": "wrap"} if rng.random() < 0.5 else {"Loop": "wrap", "Frames": []}
    elif kind == "frames not a list":
        clip["Frames"] = {"0": frames[0]}
    elif kind == "frame not a list":
        frames[i] = {"dt": 0.03}
        names = (f"frame {i} is a dict",)
    elif kind == "dt":
        if rng.random() < 0.5:
            frames[i][0] = -0.03
            names = (f"frame {i} has a negative dt",)
        else:
            for f in frames:
                f[0] = 0.0 if rng.random() < 0.5 else 1e5
    elif kind == "quaternion":
        frames[i][4:8] = [0, 0, 0, 0]
        names = (f"frame {i}: the quaternion of 'root' is zero",)
    elif kind == "not an object":
        clip = frames
    else:
        return "empty", b"", ()
    return f"{kind}: frame {i}, value {j}", json.dumps(clip).encode(), names


def test_fuzz_deepmimic(tmp_path):
    base = _deepmimic_base()
    text = json.dumps(base, indent=1).encode()
    rng = np.random.default_rng(20260103)
    fuzz = Fuzz(tmp_path, ".txt", lambda p: load_clip(p), (DeepMimicFormatError, ClipError))
    for _ in range(CASES):
        if rng.random() < BYTE_SHARE:
            what, data = corrupt_bytes(rng, text)
            fuzz.run(f"bytes: {what}", data, must_fail=False, oracle=_deepmimic_oracle)
        else:
            what, data, names = _deepmimic_structured(rng, base)
            fuzz.run(f"structured: {what}", data, must_fail=True, names=names)
    fuzz.check("DeepMimic JSON")


# ------------------------------------------------------------------------------------------------
# COCO keypoints JSON (the `label` reader)


def _coco_base() -> dict:
    coco = json.loads(COCO_FIXTURE.read_text())
    images = [{k: img[k] for k in ("id", "file_name", "width", "height")} for img in coco["images"]]
    anns = [{k: a[k] for k in ("id", "image_id", "category_id", "num_keypoints", "bbox", "keypoints")} for a in coco["annotations"]]
    return {"images": images, "annotations": anns, "categories": coco["categories"]}


def _coco_oracle(parsed, data: bytes) -> list[str]:
    """Independent of the reader: what was accepted is the file's keypoints, unchanged, and they
    follow the documented rules (finite; v a flag or score in [0, 2]; shown points near the image)."""
    try:
        coco = json.loads(data)
        anns, images = coco["annotations"], {img["id"]: img for img in coco["images"]}
        kp = np.asarray([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, 17, 3)
    except Exception as e:  # noqa: BLE001
        return [f"text that is no COCO keypoints file ({e})"]
    problems = []
    if any(type(v) not in (int, float) for a in anns for v in a["keypoints"]):
        problems.append("non-numbers in keypoints")
    if not (np.array_equal(parsed.xy, kp[..., :2]) and np.array_equal(parsed.confidence, kp[..., 2])):
        problems.append("keypoints that differ from the file's")
    if not np.isfinite(kp).all() or (kp[..., 2] < 0).any() or (kp[..., 2] > 2).any():
        problems.append("non-finite keypoints or v outside [0, 2]")
    for a, points in zip(anns, kp):
        img = images[a["image_id"]]
        w, h = img["width"], img["height"]
        if type(w) not in (int, float) or type(h) not in (int, float) or not (0 < w and 0 < h):
            problems.append(f"image size {w!r} x {h!r}")
            continue
        shown = points[points[:, 2] > 0, :2]
        m = KEYPOINT_MARGIN
        if ((shown < [-m * w, -m * h]) | (shown > [(1 + m) * w, (1 + m) * h])).any():
            problems.append(f"a shown keypoint far outside image {a['image_id']}")
    if len(images) != len(coco["images"]):
        problems.append("duplicate image ids")
    if not np.isfinite(parsed.K).all() or not (parsed.K[:, 0, 0] > 0).all():
        problems.append("bad intrinsics")
    return problems


def _coco_structured(rng: np.random.Generator, base: dict) -> tuple[str, bytes, tuple[str, ...]]:
    coco = json.loads(json.dumps(base))
    anns, images = coco["annotations"], coco["images"]
    i = int(rng.integers(len(anns)))
    ann = anns[i]
    ann_name = f"annotation id {ann['id']!r}"
    img_i = int(rng.integers(len(images)))
    img_name = f"image id {images[img_i]['id']!r}"
    kind = rng.choice(
        ["shown x", "any value", "v", "length", "keypoints type", "missing keypoints", "image size", "image id", "duplicate image",
         "unknown image_id", "top level", "empty"]
    )  # fmt: skip
    kp = ann["keypoints"]
    if kind == "shown x":
        shown = [k for k in range(17) if kp[3 * k + 2] > 0]
        k = shown[int(rng.integers(len(shown)))] if shown else 0
        kp[3 * k + 2] = 2
        kp[3 * k + int(rng.integers(2))] = [float("nan"), float("inf"), "12", None, True, [1], 1e300, -1e300, 1e7][int(rng.integers(9))]
        return f"{kind}: {ann_name} point {k}", json.dumps(coco).encode(), (ann_name,)
    if kind == "any value":
        c = int(rng.integers(51))
        kp[c] = [float("nan"), -float("inf"), "x", None, False, {}][int(rng.integers(6))]
        return f"{kind}: {ann_name} value {c}", json.dumps(coco).encode(), (ann_name,)
    if kind == "v":
        kp[3 * int(rng.integers(17)) + 2] = [-1, 3, 2.5, -0.01][int(rng.integers(4))]
        return f"{kind}: {ann_name}", json.dumps(coco).encode(), (ann_name,)
    if kind == "length":
        ann["keypoints"] = [kp[:-1], kp + [0], [], kp + kp][int(rng.integers(4))]
        return f"{kind}: {ann_name}", json.dumps(coco).encode(), (ann_name,)
    if kind == "keypoints type":
        ann["keypoints"] = [{"x": 1}, "1 2 3", 5, None][int(rng.integers(4))]
        return f"{kind}: {ann_name}", json.dumps(coco).encode(), (ann_name,)
    if kind == "missing keypoints":
        del ann["keypoints"]
        return f"{kind}: {ann_name}", json.dumps(coco).encode(), (ann_name,)
    if kind == "image size":
        key = ["width", "height"][int(rng.integers(2))]
        images[img_i][key] = [0, -640, "640", None, True, 1e300, float("nan")][int(rng.integers(7))]
        return f"{kind}: {img_name} {key}", json.dumps(coco).encode(), (img_name,)
    if kind == "image id":
        if rng.random() < 0.8:
            images[img_i]["id"] = [None, True, 1.5, [1]][int(rng.integers(4))]
        else:
            del images[img_i]["id"]
        return f"{kind}: images[{img_i}]", json.dumps(coco).encode(), (f"images[{img_i}]",)
    if kind == "duplicate image":
        images.append(dict(images[img_i]))
        return kind, json.dumps(coco).encode(), (f"{img_name} appears twice",)
    if kind == "unknown image_id":
        if rng.random() < 0.8:
            ann["image_id"] = [123456789, "785", None, True][int(rng.integers(4))]
        else:
            del ann["image_id"]
        return f"{kind}: {ann_name}", json.dumps(coco).encode(), (ann_name,)
    if kind == "top level":
        which = int(rng.integers(4))
        if which == 0:
            coco = anns
        elif which == 1:
            del coco["annotations"]
        elif which == 2:
            coco["images"] = {"1": images[0]}
        else:
            anns[i] = [1, 2, 3]
            return kind, json.dumps(coco).encode(), (f"annotations[{i}]",)
        return kind, json.dumps(coco).encode(), ()
    return "empty", b"", ()


def test_fuzz_coco(tmp_path):
    base = _coco_base()
    text = json.dumps(base).encode()
    rng = np.random.default_rng(20260104)
    fuzz = Fuzz(tmp_path, ".json", read_coco, (CocoFormatError,))
    for _ in range(CASES):
        if rng.random() < BYTE_SHARE:
            what, data = corrupt_bytes(rng, text)
            fuzz.run(f"bytes: {what}", data, must_fail=False, oracle=_coco_oracle)
        else:
            what, data, names = _coco_structured(rng, base)
            fuzz.run(f"structured: {what}", data, must_fail=True, names=names)
    fuzz.check("COCO JSON")


@pytest.mark.parametrize("reader", ["pairs", "bvh", "deepmimic", "coco"])
def test_the_bases_are_valid(tmp_path, reader):
    """The fuzz starts from files the readers accept, so every rejection comes from a corruption."""
    if reader == "pairs":
        path = tmp_path / "base.npz"
        path.write_bytes(_savez(_pairs_base()))
        assert len(load_pairs(path)) == 12
    elif reader == "bvh":
        path = tmp_path / "base.bvh"
        path.write_bytes(_bvh_base())
        assert load_clip(path, fps=None)[0].shape == (BVH_FRAMES, 17, 3)
    elif reader == "deepmimic":
        path = tmp_path / "base.txt"
        path.write_text(json.dumps(_deepmimic_base()))
        assert len(load_clip(path)[0]) > 1
    else:
        path = tmp_path / "base.json"
        path.write_text(json.dumps(_coco_base()))
        assert read_coco(path).xy.shape == (14, 17, 2)
