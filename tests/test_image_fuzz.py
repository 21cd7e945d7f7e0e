"""Fuzzing the LSP/LSPET and MPII importers: >= 1,000 seeded corruptions each.

Each corrupted file must either be refused with the importer's one-line error (a ValueError or
FileNotFoundError naming the file) or, when the corruption leaves a valid file, be read exactly as
an independent decoder reads it; no other exception (no traceback), no value the format forbids
(NaN, infinity, a flag other than 0/1, a wrong shape) accepted, and nothing on disk changed.

Random byte damage (truncation, bit flips, overwritten bytes) of joints.mat is applied to the
compressed MAT-file LSPET ships (MATLAB's default): its zlib stream carries a checksum, so any
damage to the values is detectable and the only acceptable outcome without an error is the
original data (a flip in the header's free text). JSON carries no checksum: a digit changed into
another digit is a different valid file, so there the accepted values must equal what the
damaged text says.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from train.image.lsp import LspSource
from train.image.matfile import mat_bytes, parse_mat
from train.image.mpii import MpiiSource

from image_support import MPII_FIXTURE, lsp_folder

N_CASES = 1100


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _lsp_arrays(src: LspSource) -> tuple[np.ndarray, np.ndarray]:
    return src.records.joints_2d.copy(), src.records.valid_2d.copy()


def _mat_corruptions(rng: np.random.Generator, data: bytes, good: np.ndarray) -> tuple[str, bytes]:
    """One corrupted joints.mat: (kind, bytes)."""
    kind = ["truncate", "bitflip", "overwrite", "shape", "dtype", "nonfinite", "flag", "missing", "uncompressed-truncate", "garbage"][rng.integers(10)]
    b = bytearray(data)
    if kind == "truncate":
        return kind, bytes(b[: rng.integers(0, len(b))])
    if kind == "bitflip":
        for _ in range(rng.integers(1, 4)):
            i = rng.integers(len(b))
            b[i] ^= 1 << int(rng.integers(8))
        return kind, bytes(b)
    if kind == "overwrite":
        i = rng.integers(len(b))
        n = rng.integers(1, 16)
        b[i : i + n] = rng.integers(0, 256, size=len(b[i : i + n]), dtype=np.uint8).tobytes()
        return kind, bytes(b)
    if kind == "shape":
        shapes = [good[:, :2], good[..., :1], good.reshape(14, -1), good.transpose(2, 0, 1), good[None], good[:13]]
        return kind, mat_bytes({"joints": shapes[rng.integers(len(shapes))]}, compress=bool(rng.integers(2)))
    if kind == "dtype":  # values that do not survive the cast, or a class that is not numeric
        if rng.integers(2):
            return kind, mat_bytes({"joints": (good * 1000 + 0.5).astype(np.int8)})  # wraps: flags out of {0, 1}
        raw = bytearray(mat_bytes({"joints": good}, compress=False))
        raw[128 + 16] = int(rng.choice([1, 2, 4, 5]))  # mxCLASS -> cell, struct, char, sparse
        return kind, bytes(raw)
    if kind == "nonfinite":
        bad = good.copy()
        bad[rng.integers(14), rng.integers(3), rng.integers(bad.shape[2])] = rng.choice([np.nan, np.inf, -np.inf])
        return kind, mat_bytes({"joints": bad}, compress=bool(rng.integers(2)))
    if kind == "flag":
        bad = good.copy()
        bad[rng.integers(14), 2, rng.integers(bad.shape[2])] = rng.choice([-1.0, 0.5, 2.0, 7.0])
        return kind, mat_bytes({"joints": bad})
    if kind == "missing":
        return kind, mat_bytes({"joint": good} if rng.integers(2) else {})
    if kind == "uncompressed-truncate":
        raw = mat_bytes({"joints": good}, compress=False)
        return kind, raw[: rng.integers(0, len(raw))]
    return kind, rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()


@pytest.mark.timeout(120)
def test_lsp_importer_survives_corrupted_joints_mat(tmp_path):
    folder, _, _ = lsp_folder(tmp_path / "lspet", "lspet", compress=True)
    mat = folder / "joints.mat"
    original = mat.read_bytes()
    good = parse_mat(original)["joints"]
    expected = _lsp_arrays(LspSource(folder, "all"))
    images_before = _snapshot(folder / "images")
    listing = sorted(os.listdir(folder))
    rng = np.random.default_rng(20240601)
    outcomes: dict[str, list[int]] = {}
    for case in range(N_CASES):
        kind, data = _mat_corruptions(rng, original, good)
        if data == original:
            continue
        mat.write_bytes(data)
        try:
            got = _lsp_arrays(LspSource(folder, "all"))
        except (ValueError, FileNotFoundError) as e:
            msg = str(e)
            assert str(mat) in msg and "\n" not in msg, (case, kind, msg)
            outcomes.setdefault(kind, [0, 0])[0] += 1
        else:
            # accepted: only a harmless flip (the header's free text) may pass, giving the same data
            assert np.array_equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]), (case, kind)
            outcomes.setdefault(kind, [0, 0])[1] += 1
        assert mat.read_bytes() == data and sorted(os.listdir(folder)) == listing, (case, kind)  # nothing written
    assert _snapshot(folder / "images") == images_before
    assert sum(sum(v) for v in outcomes.values()) >= 1000
    # every structured corruption is refused; random damage is refused almost always
    for kind in ("shape", "dtype", "nonfinite", "flag", "missing", "truncate", "uncompressed-truncate", "garbage"):
        assert outcomes[kind][1] == 0 and outcomes[kind][0] > 20, (kind, outcomes[kind])
    assert outcomes["bitflip"][0] > 0.8 * sum(outcomes["bitflip"])


def _mpii_expected(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """An independent strict reading of an MPII JSON text: (xy in our convention, labelled) of
    every person, or None when the text is not a valid MPII file."""
    try:
        data = json.loads(text, parse_constant=lambda t: (_ for _ in ()).throw(ValueError(t)))
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, list) or not data:
        return None
    xy, vis = [], []
    for e in data:
        if not isinstance(e, dict) or not {"image", "joints", "joints_vis"} <= set(e):
            return None
        j, v = e["joints"], e["joints_vis"]
        num = lambda x: type(x) in (int, float)  # noqa: E731
        if not (isinstance(j, list) and len(j) == 16 and all(isinstance(p, list) and len(p) == 2 and all(num(c) for c in p) for p in j)):
            return None
        if not (isinstance(v, list) and len(v) == 16 and all(num(x) and x in (0, 1) for x in v)):
            return None
        if not isinstance(e["image"], str) or not e["image"] or e["image"].startswith("/") or ".." in e["image"].split("/"):
            return None
        if not np.isfinite(np.asarray(j, dtype=np.float64)).all() or np.abs(np.asarray(j, float)[np.asarray(v) == 1]).max(initial=0) > 1e6:
            return None
        if "center" in e and not (isinstance(e["center"], list) and len(e["center"]) == 2 and all(num(c) for c in e["center"]) and np.isfinite(e["center"]).all()):
            return None
        if "scale" in e and not (num(e["scale"]) and np.isfinite(e["scale"]) and e["scale"] > 0):
            return None
        xy.append(np.asarray(j, dtype=np.float64) - 0.5)
        vis.append(np.asarray(v) == 1)
    return np.array(xy), np.array(vis)


def _json_corruption(rng: np.random.Generator, text: str) -> tuple[str, str]:
    kind = ["truncate", "bitflip", "overwrite", "digit", "delete-key", "shape", "type", "nonfinite", "flag", "scale", "image", "toplevel"][rng.integers(12)]
    data = json.loads(text)
    e = data[rng.integers(len(data))]
    if kind == "truncate":
        return kind, text[: rng.integers(0, len(text))]
    if kind in ("bitflip", "overwrite", "digit"):
        b = bytearray(text.encode())
        if kind == "bitflip":
            for _ in range(rng.integers(1, 3)):
                i = rng.integers(len(b))
                b[i] ^= 1 << int(rng.integers(8))
        elif kind == "overwrite":
            i = rng.integers(len(b))
            b[i : i + 4] = bytes(rng.choice(list(b'0123456789.,[]{}":-eE nul'), size=len(b[i : i + 4])))
        else:
            digits = [i for i, c in enumerate(b) if chr(c).isdigit()]
            b[digits[rng.integers(len(digits))]] = ord(str(rng.integers(10)))
        return kind, b.decode("utf-8", errors="replace")
    if kind == "delete-key":
        e.pop(["image", "joints", "joints_vis"][rng.integers(3)])
    elif kind == "shape":
        e["joints"] = [e["joints"][:15], e["joints"] + [[1, 2]], [p + [0] for p in e["joints"]], e["joints"][0], []][rng.integers(5)]
    elif kind == "type":
        key = ["joints", "joints_vis", "image"][rng.integers(3)]
        e[key] = [None, True, "12", {"a": 1}, 3.5][rng.integers(5)]
    elif kind == "nonfinite":
        return kind, json.dumps(data).replace(str(e["joints"][rng.integers(16)][0]), ["NaN", "Infinity", "-Infinity", "1e400"][rng.integers(4)], 1)
    elif kind == "flag":
        e["joints_vis"][rng.integers(16)] = [2, -1, 0.5, True][rng.integers(4)]
    elif kind == "scale":
        e["scale"] = [0, -3.2, "big", None][rng.integers(4)]
    elif kind == "image":
        e["image"] = ["", "/etc/passwd", "../../x.jpg", 7][rng.integers(4)]
    else:
        data = [{}, {"people": data}, [], "x", [1, 2]][rng.integers(5)]
    return kind, json.dumps(data)


@pytest.mark.timeout(120)
def test_mpii_importer_survives_corrupted_json(tmp_path):
    folder = tmp_path / "mpii"
    folder.mkdir()
    for p in MPII_FIXTURE.parent.glob("*.jpg"):
        (folder / p.name).write_bytes(p.read_bytes())
    path = folder / "test_mpii.json"
    original = MPII_FIXTURE.read_text()
    images_before = _snapshot(folder)
    images_before.pop("test_mpii.json", None)
    rng = np.random.default_rng(8)
    refused = accepted = 0
    for case in range(N_CASES):
        kind, text = _json_corruption(rng, original)
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
        expected = _mpii_expected(text)
        try:
            src = MpiiSource(path)
        except (ValueError, FileNotFoundError) as e:
            msg = str(e)
            assert str(path) in msg and "\n" not in msg, (case, kind, msg)
            refused += 1
        else:
            assert expected is not None, (case, kind, "accepted a file that breaks the format")
            xy, vis = expected
            keep = vis.sum(axis=1) >= 4
            assert len(src) == int(keep.sum())
            from train.image.joints import MPII_TO_H36M, map_to_h36m

            joints, valid = map_to_h36m(xy[keep], vis[keep], MPII_TO_H36M)
            assert np.allclose(src.records.joints_2d, joints) and np.array_equal(src.records.valid_2d, valid), (case, kind)
            assert np.isfinite(src.records.joints_2d).all()
            accepted += 1
        snap = _snapshot(folder)
        assert snap.pop("test_mpii.json") == hashlib.sha256(path.read_bytes()).hexdigest() and snap == images_before, (case, kind)
    assert refused + accepted >= 1000 and refused > 500 and accepted > 0
