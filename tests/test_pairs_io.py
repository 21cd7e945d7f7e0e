"""Pairs v1 files: every kind of bad file is rejected by name, good ones round-trip (mmap too)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from generator.pairs_io import (
    PLAUSIBILITY_SAMPLES,
    PairsFormatError,
    PairsWriter,
    check_units_and_axes,
    load_pairs,
    plausibility_rows,
    read_pairs_arrays,
    save_pairs,
    validate_pairs,
)
from generator.prior import sample_prior_poses


def _poses(rng: np.random.Generator, n: int) -> np.ndarray:
    """n prior poses (mm) moved from the world (z up) into a camera frame, 3-4 m in front of it."""
    world = sample_prior_poses(rng, n)
    cam = np.stack([world[..., 0], 900.0 - world[..., 2], world[..., 1]], axis=-1)
    cam[..., 2] += rng.uniform(3000, 4000, (n, 1))
    return cam.astype(np.float32)


def _arrays(n: int = 6, shared: bool = False) -> dict[str, np.ndarray]:
    """Real poses in mm; the 2D is random, unrelated to the 3D, as detections can be."""
    rng = np.random.default_rng(n)
    K = np.array([[1000.0, 0.0, 320.0], [0.0, 1000.0, 240.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    size = np.array([640, 480], dtype=np.int32)
    return {
        "joints_2d": rng.uniform(0, 480, (n, 17, 2)).astype(np.float32),
        "joints_3d": _poses(rng, n),
        "K": K if shared else np.repeat(K[None], n, axis=0),
        "image_size": size if shared else np.repeat(size[None], n, axis=0),
        "visibility": rng.integers(0, 3, (n, 17)).astype(np.uint8),
        "joints_2d_right": rng.uniform(0, 480, (n, 17, 2)).astype(np.float32),
        "baseline_mm": np.float32(500.0),
        "subject": np.array([f"S{i % 3}" for i in range(n)]),
        "sequence": np.array([f"seq_{i}" for i in range(n)]),
        "action": np.array(["walk"] * n),
        "camera": np.array([("h36m", "phone")[i % 2] for i in range(n)]),
        "skeleton": np.array("h36m17"),
        "pairs_version": np.array(1, dtype=np.int32),
    }


def _with(**changes) -> dict[str, np.ndarray]:
    arrays = _arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return arrays


def _nan(key: str, shape) -> np.ndarray:
    a = _arrays()[key].copy()
    a[shape] = np.nan
    return a


BAD_FILES = {
    "missing joints_2d": (_with(joints_2d=None), "joints_2d", "missing"),
    "missing joints_3d": (_with(joints_3d=None), "joints_3d", "missing"),
    "missing K": (_with(K=None), "K", "missing"),
    "missing image_size": (_with(image_size=None), "image_size", "missing"),
    "joints_2d wrong shape": (_with(joints_2d=np.zeros((6, 17, 3), np.float32)), "joints_2d", "shape"),
    "joints_2d 2-d": (_with(joints_2d=np.zeros((6, 34), np.float32)), "joints_2d", "shape"),
    "joints_3d N mismatch": (_with(joints_3d=np.ones((5, 17, 3), np.float32)), "joints_3d", "N=6"),
    "joints_3d 16 joints": (_with(joints_3d=np.ones((6, 16, 3), np.float32)), "joints_3d", "shape"),
    "K N mismatch": (_with(K=np.repeat(np.eye(3, dtype=np.float32)[None], 4, 0)), "K", "N=6"),
    "image_size N mismatch": (_with(image_size=np.ones((7, 2), np.int32)), "image_size", "N=6"),
    "visibility N mismatch": (_with(visibility=np.zeros((5, 17), np.uint8)), "visibility", "N=6"),
    "right N mismatch": (_with(joints_2d_right=np.zeros((6, 16, 2), np.float32)), "joints_2d_right", "shape"),
    "subject N mismatch": (_with(subject=np.array(["a"] * 5)), "subject", "N=6"),
    "NaN in joints_2d": (_with(joints_2d=_nan("joints_2d", (2, 3, 0))), "joints_2d", "NaN"),
    "inf in joints_3d": (_with(joints_3d=np.where(np.arange(3) == 2, np.inf, _arrays()["joints_3d"]).astype(np.float32)), "joints_3d", "infinite"),
    "NaN in K": (_with(K=_nan("K", (0, 0, 2))), "K", "NaN"),
    "NaN in right": (_with(joints_2d_right=_nan("joints_2d_right", (5, 16, 1))), "joints_2d_right", "sample 5"),
    "unknown skeleton": (_with(skeleton=np.array("coco17")), "skeleton", "unknown skeleton"),
    "skeleton not a string": (_with(skeleton=np.array(17)), "skeleton", "unknown skeleton"),
    "wrong version": (_with(pairs_version=np.array(2, dtype=np.int32)), "pairs_version", "unsupported version"),
    "negative focal": (_with(K=np.diag([-1000.0, 1000.0, 1.0]).astype(np.float32)), "K", "positive"),
    "not pinhole": (_with(K=np.array([[1000, 0, 320], [0, 1000, 240], [0, 0.1, 1]], np.float32)), "K", "pinhole"),
    "zero image size": (_with(image_size=np.array([640, 0], np.int32)), "image_size", "positive"),
    "fractional image size": (_with(image_size=np.array([640.5, 480.0])), "image_size", "integer"),
    "string image size": (_with(image_size=np.array(["640", "480"])), "image_size", "integer"),
    "visibility 3": (_with(visibility=np.full((6, 17), 3, np.uint8)), "visibility", "0 (outside)"),
    "visibility negative": (_with(visibility=np.full((6, 17), -1, np.int8)), "visibility", "0 (outside)"),
    "visibility float": (_with(visibility=np.full((6, 17), 2.0)), "visibility", "integer"),
    "right without baseline": (_with(baseline_mm=None), "baseline_mm", "required"),
    "zero baseline": (_with(baseline_mm=np.float32(0.0)), "baseline_mm", "non-zero"),
    "numeric subject": (_with(subject=np.arange(6)), "subject", "string"),
    "text joints": (_with(joints_3d=np.full((6, 17, 3), "x")), "joints_3d", "numeric"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_reader_rejects_each_kind_of_bad_file_naming_the_key(tmp_path, name):
    arrays, key, problem = BAD_FILES[name]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(PairsFormatError) as err:
        load_pairs(path)
    message = str(err.value)
    assert f"'{key}'" in message and problem in message and str(path) in message
    with pytest.raises(PairsFormatError, match=f"'{key}'"):
        validate_pairs(arrays)


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "objects.npz"
    arrays = _arrays()
    arrays["subject"] = np.array(["a", 1, None, "b", "c", "d"], dtype=object)
    np.savez(path, **arrays)  # numpy pickles object arrays
    for mmap in (False, True):
        with pytest.raises(PairsFormatError, match="'subject'.*pickled"):
            load_pairs(path, mmap=mmap)


def test_corrupt_archives_are_reported_as_such(tmp_path):
    good = tmp_path / "good.npz"
    save_pairs(good, _arrays())
    raw = good.read_bytes()
    cases = {
        "truncated": raw[: len(raw) // 2],
        "garbage": b"this is not a zip file at all" * 10,
        "empty": b"",
    }
    flipped = bytearray(raw)
    i = raw.index(b"joints_3d.npy")
    flipped[i + 400] ^= 0xFF  # inside the array data: the CRC no longer matches
    cases["flipped byte"] = bytes(flipped)
    for name, data in cases.items():
        path = tmp_path / f"{name.replace(' ', '_')}.npz"
        path.write_bytes(data)
        with pytest.raises(PairsFormatError, match="readable"):
            load_pairs(path)
    with pytest.raises(FileNotFoundError, match="no such pairs file"):
        load_pairs(tmp_path / "missing.npz")


def test_memory_map_rejects_a_member_shorter_than_its_header(tmp_path):
    path = tmp_path / "short.npz"
    arrays = _arrays()
    np.savez(path, **arrays)
    raw = bytearray(path.read_bytes())
    # Make the joints_3d header promise more rows than the member holds (same header length).
    old = b"'shape': (6, 17, 3)"
    assert raw.count(old) == 1
    raw[raw.index(old) : raw.index(old) + len(old)] = b"'shape': (9, 17, 3)"
    path.write_bytes(bytes(raw))
    with pytest.raises(PairsFormatError, match="joints_3d"):
        load_pairs(path, mmap=True)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("mmap", [False, True])
def test_round_trip(tmp_path, shared, mmap):
    arrays = _arrays(8, shared=shared)
    path = save_pairs(tmp_path / "pairs.npz", arrays)
    pairs = load_pairs(path, mmap=mmap)
    for key in ("joints_2d", "joints_3d", "K", "image_size", "visibility", "joints_2d_right", "baseline_mm", "subject", "camera"):
        np.testing.assert_array_equal(getattr(pairs, key), arrays[key])
    assert pairs.K.ndim == (2 if shared else 3) and pairs.image_size.ndim == (1 if shared else 2)
    assert pairs.K_per_sample().shape == (8, 3, 3) and pairs.image_size_per_sample().shape == (8, 2)
    assert pairs.baseline_per_sample().tolist() == [500.0] * 8
    if mmap:  # mapped read-only from the file, not loaded
        assert not pairs.joints_3d.flags.writeable
        assert isinstance(read_pairs_arrays(path, mmap=True)["joints_3d"], np.memmap)
    assert zipfile.ZipFile(path).testzip() is None  # CRCs are right
    assert set(np.load(path).files) >= set(arrays)  # plain numpy reads it


def test_files_written_by_users_with_numpy_alone_are_read(tmp_path):
    arrays = _arrays()
    arrays.pop("skeleton"), arrays.pop("pairs_version")
    arrays["joints_3d"] = arrays["joints_3d"].astype(np.float64)  # other numeric dtypes are cast
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    for name in ("plain.npz", "compressed.npz"):
        for mmap in (False, True):
            pairs = load_pairs(tmp_path / name, mmap=mmap)
            assert pairs.joints_3d.dtype == np.float32 and len(pairs) == 6


def test_empty_file_round_trips(tmp_path):
    arrays = {k: v[:0] for k, v in _arrays(shared=True).items() if k in ("joints_2d", "joints_3d", "visibility")}
    arrays.update(K=np.eye(3, dtype=np.float32), image_size=np.array([4, 4], np.int32))
    path = save_pairs(tmp_path / "empty.npz", arrays)
    assert len(load_pairs(path)) == 0 and len(load_pairs(path, mmap=True)) == 0


def test_writer_chunks_in_any_order_and_declared_strings(tmp_path):
    arrays = _arrays(10)
    path = tmp_path / "chunks.npz"
    with PairsWriter(path, 10) as w:
        w.allocate("subject", "U4")
        for start in (6, 0, 3):  # out of order: the CRC is computed at close
            stop = {6: 10, 0: 3, 3: 6}[start]
            w.write(start, {k: arrays[k][start:stop] for k in ("joints_2d", "joints_3d", "K", "image_size", "subject")})
    pairs = load_pairs(path)
    for key in ("joints_2d", "joints_3d", "K", "image_size", "subject"):
        np.testing.assert_array_equal(getattr(pairs, key), arrays[key])
    assert zipfile.ZipFile(path).testzip() is None


def test_writer_checksums_on_another_thread_while_it_writes(tmp_path):
    """write(crc=False) on one thread, add_crc of the same chunks in order on another: the running
    CRCs are complete before close (nothing is read back) and right."""
    from concurrent.futures import ThreadPoolExecutor

    arrays = _arrays(12)
    keys = ("joints_2d", "joints_3d", "K", "image_size", "subject")
    path = tmp_path / "crc.npz"
    with PairsWriter(path, 12) as w, ThreadPoolExecutor(1) as crc, ThreadPoolExecutor(1) as write:
        w.allocate("subject", arrays["subject"].dtype)
        for k in keys[:4]:
            w.allocate(k, arrays[k].dtype, arrays[k].shape[1:])
        jobs = []
        for start in (0, 4, 8):
            chunk = {k: arrays[k][start : start + 4] for k in keys}
            jobs += [crc.submit(w.add_crc, start, chunk), write.submit(w.write, start, chunk, False)]
        for job in jobs:
            job.result()
        assert all(m.crc_in_order and m.crc_rows == m.rows == m.rows_written for m in w._members.values())
    pairs = load_pairs(path)
    for key in keys:
        np.testing.assert_array_equal(getattr(pairs, key), arrays[key])
    assert zipfile.ZipFile(path).testzip() is None


def test_writer_aligns_member_data_to_64_bytes(tmp_path):
    path = save_pairs(tmp_path / "aligned.npz", _arrays(7))
    for key, a in read_pairs_arrays(path, mmap=True).items():
        if isinstance(a, np.memmap):
            assert a.offset % 64 == 0, key


def test_same_content_gives_the_same_bytes(tmp_path):
    a = save_pairs(tmp_path / "a.npz", _arrays())
    b = save_pairs(tmp_path / "b.npz", _arrays())
    assert a.read_bytes() == b.read_bytes()


def test_writer_rejects_bad_writes_by_key(tmp_path):
    with PairsWriter(tmp_path / "out.npz", 4) as w:
        with pytest.raises(ValueError, match="joints_2d: samples 2..5 lie outside the file's 4"):
            w.write(2, {"joints_2d": np.zeros((3, 17, 2), np.float32)})
        with pytest.raises(TypeError, match="subject: declare string keys with allocate"):
            w.write(0, {"subject": np.array(["a"] * 4)})
        w.write(0, {"joints_2d": np.zeros((4, 17, 2), np.float32)})
        with pytest.raises(ValueError, match="joints_2d: rows of shape"):
            w.write(0, {"joints_2d": np.zeros((4, 16, 2), np.float32)})
        w.allocate("camera", "U2")
        with pytest.raises(ValueError, match="camera: strings of <U9 do not fit"):
            w.write(0, {"camera": np.array(["long name"] * 4)})
        w.write(0, {"camera": np.array(["ab"] * 4), "joints_3d": _arrays(4)["joints_3d"], "K": np.eye(3), "image_size": [2, 2]})
    assert load_pairs(tmp_path / "out.npz").camera.tolist() == ["ab"] * 4


def test_writer_errors_leave_no_file_behind(tmp_path):
    w = PairsWriter(tmp_path / "short.npz", 4)
    w.write(0, {"joints_2d": np.zeros((2, 17, 2), np.float32)})
    with pytest.raises(ValueError, match="keys written for fewer than all 4 samples: {'joints_2d': 2}"):
        w.close()
    with pytest.raises(RuntimeError, match="boom"):
        with PairsWriter(tmp_path / "boom.npz", 4) as w:
            w.write(0, {"joints_2d": np.zeros((4, 17, 2), np.float32)})
            raise RuntimeError("boom")
    assert list(Path(tmp_path).iterdir()) == []  # neither the files nor their temporaries


def test_save_pairs_stores_extra_per_sample_keys_and_rejects_bad_ones(tmp_path):
    arrays = {k: v for k, v in _arrays(3).items() if k in ("joints_2d", "joints_3d", "K", "image_size")}
    path = save_pairs(tmp_path / "x.npz", arrays, extra={"frame_id": np.array([7, 8, 9])})
    assert np.array_equal(read_pairs_arrays(path)["frame_id"], [7, 8, 9])
    assert len(load_pairs(path)) == 3
    with pytest.raises(ValueError, match="extra key 'frame_id'.*3 rows"):
        save_pairs(tmp_path / "y.npz", arrays, extra={"frame_id": np.arange(2)})
    with pytest.raises(ValueError, match="extra key 'visibility'"):
        save_pairs(tmp_path / "z.npz", arrays, extra={"visibility": np.zeros((3, 17), np.uint8)})


# ------------------------------------------------------------------------------------------------
# What the numbers mean: depth, units and axes (issue 10)


def _projected(n: int = 300) -> dict[str, np.ndarray]:
    """Synthetic pairs: 2D (both views) the exact projection of real poses, visibility everywhere."""
    from train_support import make_pairs

    return make_pairs(np.random.default_rng(11), n, right_baseline_mm=500.0).arrays()


def _swap(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a[..., ::-1])


MEANING = {
    # name: (change to the arrays, key, words of the message)
    "every z negated": (lambda a: {"joints_3d": a["joints_3d"] * np.float32([1, 1, -1])}, "joints_3d", "sample 0, joint 0 (Hip) is at z = -"),
    "root-relative 3D": (lambda a: {"joints_3d": a["joints_3d"] - a["joints_3d"][:, :1]}, "joints_3d", "sample 0, joint 0 (Hip) is at z = 0 mm"),
    "one foot behind the camera": (
        lambda a: {"joints_3d": np.where((np.arange(len(a["joints_3d"]))[:, None, None] == 7) & (np.arange(17)[:, None] == 3) & (np.arange(3) == 2), -5.0, a["joints_3d"]).astype(np.float32)},
        "joints_3d",
        "sample 7, joint 3 (RFoot) is at z = -5 mm",
    ),
    "3D in metres": (lambda a: {"joints_3d": a["joints_3d"] / 1000}, "joints_3d", "looks like metres; pairs v1 stores millimetres (multiply by 1000)"),
    "3D in centimetres": (lambda a: {"joints_3d": a["joints_3d"] / 10}, "joints_3d", "looks like centimetres"),
    "2D x and y swapped": (lambda a: {"joints_2d": _swap(a["joints_2d"])}, "joints_2d", "x and y are swapped"),
    "right view x and y swapped": (lambda a: {"joints_2d_right": _swap(a["joints_2d_right"])}, "joints_2d_right", "x and y are swapped"),
    "2D with y up": (
        lambda a: {"joints_2d": np.stack([a["joints_2d"][..., 0], a["image_size"][:, None, 1] - a["joints_2d"][..., 1]], -1).astype(np.float32)},
        "joints_2d",
        "y points up",
    ),
    "2D normalized to [-1, 1]": (lambda a: {"joints_2d": (a["joints_2d"] / a["image_size"][:, None] * 2 - 1).astype(np.float32)}, "joints_2d", "looks normalized"),
    "2D normalized to [0, 1]": (lambda a: {"joints_2d": (a["joints_2d"] / a["image_size"][:, None]).astype(np.float32)}, "joints_2d", "looks normalized"),
    "detections with swapped axes": (
        lambda a: {"joints_2d": _swap(a["joints_2d"] + np.random.default_rng(3).normal(0, 15, a["joints_2d"].shape)).astype(np.float32)},
        "joints_2d",
        "x and y are swapped",
    ),
}


@pytest.mark.parametrize("name", sorted(MEANING))
def test_meaning_mistakes_are_refused_naming_the_key_and_cause(tmp_path, name):
    change, key, words = MEANING[name]
    arrays = _projected()
    arrays.update(change(arrays))
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    for mmap in (False, True):
        with pytest.raises(PairsFormatError) as err:
            load_pairs(path, mmap=mmap)
        assert str(err.value).startswith(f"{path}: key '{key}': "), str(err.value)
        assert words in str(err.value), str(err.value)


def test_detected_2d_is_accepted_and_its_gap_reported(tmp_path, caplog):
    """2D from a detector differs from the projection of the ground-truth 3D (noise, and joints the
    detector places elsewhere); that is no mistake: the file loads and the median gap is logged."""
    arrays = _projected()
    rng = np.random.default_rng(5)
    bias = rng.normal(0, 20, (17, 2))  # per-joint definition differences (hips, head)
    arrays["joints_2d"] = (arrays["joints_2d"] + bias + rng.normal(0, 12, arrays["joints_2d"].shape)).astype(np.float32)
    arrays["joints_2d_right"] = (arrays["joints_2d_right"] + rng.normal(0, 12, arrays["joints_2d"].shape)).astype(np.float32)
    path = tmp_path / "detections.npz"
    np.savez(path, **arrays)
    with caplog.at_level("WARNING", logger="generator.pairs_io"):
        pairs = load_pairs(path, mmap=True)
        load_pairs(path, mmap=True)  # reported once per file, not on every read
    reports = [r.getMessage() for r in caplog.records if "median" in r.getMessage()]
    assert len(reports) == 1 and str(path) in reports[0] and "accepted" in reports[0], reports
    np.testing.assert_array_equal(pairs.joints_2d, arrays["joints_2d"])
    gap = check_units_and_axes(pairs, "detections")
    assert 15 < gap < 40 and f"{gap:.1f} px" in reports[0], gap


def test_synthetic_pairs_have_no_gap_and_checks_see_a_fixed_subset():
    pairs = validate_pairs(_projected(300))
    assert check_units_and_axes(pairs) < 0.01
    rows = plausibility_rows(10**9)
    assert len(rows) == PLAUSIBILITY_SAMPLES and rows[0] == 0 and rows[-1] == 10**9 - 1
    np.testing.assert_array_equal(rows, plausibility_rows(10**9))  # deterministic
    np.testing.assert_array_equal(plausibility_rows(5), np.arange(5))
    assert plausibility_rows(0).size == 0
