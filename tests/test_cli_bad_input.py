"""Bad input through the CLI: a non-zero exit status and one clear error line naming the file, key,
line or rule; never a traceback, and nothing written. Most cases run in-process with click's runner
(the same `main`); a few run as real processes, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from generator.mocap import DATA_DIR
from posebridge import main
from train.label import COCO_FIXTURE

from train_support import make_pairs

REPO = Path(__file__).resolve().parents[1]


def _good_pairs() -> dict[str, np.ndarray]:
    return make_pairs(np.random.default_rng(3), 64, right_baseline_mm=500.0).arrays()


def _pairs_file(folder: Path, name: str, change) -> Path:
    arrays = _good_pairs()
    arrays.update(change(arrays))
    path = folder / name
    np.savez(path, **arrays)  # as a user with numpy alone would write it
    return path


def _bvh_with(folder: Path, value: bytes, frame: int = 40) -> tuple[Path, int]:
    lines = (DATA_DIR / "cmu_walks" / "07_01.bvh").read_bytes().split(b"\n")
    start = next(k for k, x in enumerate(lines) if x.startswith(b"Frame Time")) + 1
    row = lines[start + frame].split()
    row[3] = value
    lines[start + frame] = b" ".join(row)
    path = folder / "07_01.bvh"
    path.write_bytes(b"\n".join(lines))
    return path, start + frame + 1


def _coco_with(folder: Path, ann: int, index: int, value) -> tuple[Path, object]:
    coco = json.loads(COCO_FIXTURE.read_text())
    coco["annotations"][ann]["keypoints"][index] = value
    path = folder / "people.json"
    path.write_text(json.dumps(coco))
    return path, coco["annotations"][ann]["id"]


def _case(name: str, tmp: Path) -> tuple[list[str], list[str]]:
    """(arguments, words the error line must hold) of one bad input."""
    out = tmp / "out"
    if name == "pairs: joint behind the camera":
        p = _pairs_file(tmp, "behind.npz", lambda a: {"joints_3d": a["joints_3d"] * np.float32([1, 1, -1])})
        return ["train", "--data", str(p), "--out", str(out)], [str(p), "key 'joints_3d'", "sample 0, joint 0 (Hip)", "behind the camera"]
    if name == "pairs: 3D in metres":
        p = _pairs_file(tmp, "metres.npz", lambda a: {"joints_3d": a["joints_3d"] / 1000})
        return ["train", "--data", str(p), "--out", str(out)], [str(p), "key 'joints_3d'", "looks like metres"]
    if name == "pairs: 2D x and y swapped":
        p = _pairs_file(tmp, "swapped.npz", lambda a: {"joints_2d": np.ascontiguousarray(a["joints_2d"][..., ::-1])})
        return ["evaluate", "--checkpoint", str(tmp / "no_run"), "--data", str(p)], [str(p), "key 'joints_2d'", "x and y are swapped"]
    if name == "pairs: 2D normalized":
        p = _pairs_file(tmp, "normalized.npz", lambda a: {"joints_2d": (a["joints_2d"] / a["image_size"][:, None] * 2 - 1).astype(np.float32)})
        return ["evaluate", "--checkpoint", str(tmp / "no_run"), "--data", str(p)], [str(p), "key 'joints_2d'", "looks normalized"]
    if name == "pairs: NaN":
        p = _pairs_file(tmp, "nan.npz", lambda a: {"K": np.where(np.arange(3) == 2, np.nan, a["K"]).astype(np.float32)})
        return ["train", "--data", str(p), "--out", str(out)], [str(p), "key 'K'", "NaN"]
    if name == "pairs: zero rows":
        p = tmp / "empty.npz"
        np.savez(p, **{k: v[:0] for k, v in _good_pairs().items() if k in ("joints_2d", "joints_3d", "K", "image_size")})
        return ["train", "--data", str(p), "--out", str(out)], [str(p), "holds no pairs (0 rows)"]
    if name == "pairs: truncated file":
        p = _pairs_file(tmp, "cut.npz", lambda a: {})
        p.write_bytes(p.read_bytes()[:5000])
        return ["evaluate", "--checkpoint", str(tmp / "no_run"), "--data", str(p)], [str(p), "not a readable .npz archive"]
    if name == "evaluate: a plain folder":
        folder = tmp / "some_folder"
        folder.mkdir()
        return ["evaluate", "--checkpoint", str(tmp / "no_run"), "--data", str(folder)], [str(folder), "manifest.json", "pairs .npz"]
    if name == "pairs: camera rule no camera meets":
        config = tmp / "tight.yaml"
        config.write_text(
            "camera:\n  min_in_frame_fraction: 1.0\n  max_rounds: 2\n  profiles:\n"
            "    - {name: tiny, distance_mm: [100, 200], elevation_deg: [0, 0], fov_deg: [5, 5], image_sizes: [[64, 64]]}\n"
        )
        clip = str(DATA_DIR / "cmu_walks" / "07_01.bvh")
        return ["pairs", "--source", clip, "--n", "10", "--config", str(config), "--out", str(tmp / "p.npz")], [
            "camera rule cannot be met", "camera.min_in_frame_fraction = 1", "in front of the camera"]  # fmt: skip
    if name == "BVH: absurd value":
        p, line = _bvh_with(tmp, b"1e300")
        return ["pairs", "--source", str(p), "--n", "10", "--out", str(tmp / "p.npz")], [f"{p}:{line}:", "1e+300"]
    if name == "BVH: not a number":
        p, line = _bvh_with(tmp, b"12,5")
        return ["pairs", "--source", str(p), "--n", "10", "--out", str(tmp / "p.npz")], [f"{p}:{line}:", "'12,5' is not a finite number"]
    if name == "DeepMimic: string value":
        clip = json.loads((DATA_DIR / "deepmimic" / "motions" / "humanoid3d_walk.txt").read_text())
        clip["Frames"][3][9] = "0.5"
        p = tmp / "humanoid3d_walk.txt"
        p.write_text(json.dumps(clip))
        return ["pairs", "--source", str(p), "--n", "10", "--out", str(tmp / "p.npz")], [str(p), "frame 3, value 9 (chest qx) is '0.5'"]
    if name == "COCO: non-numeric keypoint":
        p, ann_id = _coco_with(tmp, 2, 7, "left")
        return ["label", "--checkpoint", str(tmp / "no_run"), "--coco", str(p), "--out", str(out)], [str(p), f"annotation id {ann_id!r}", "'left', not a number"]
    if name == "COCO: NaN keypoint":
        p, ann_id = _coco_with(tmp, 5, 0, float("nan"))
        return ["label", "--checkpoint", str(tmp / "no_run"), "--coco", str(p), "--out", str(out)], [str(p), f"annotation id {ann_id!r}", "not finite"]
    if name == "COCO: not JSON":
        p = tmp / "people.json"
        p.write_text(COCO_FIXTURE.read_text()[:3000])
        return ["label", "--checkpoint", str(tmp / "no_run"), "--coco", str(p), "--out", str(out)], [str(p), "not valid JSON", "line 1"]
    raise KeyError(name)


CASES = [
    "pairs: joint behind the camera", "pairs: 3D in metres", "pairs: 2D x and y swapped", "pairs: 2D normalized", "pairs: NaN",
    "pairs: zero rows", "pairs: truncated file", "evaluate: a plain folder", "pairs: camera rule no camera meets",
    "BVH: absurd value", "BVH: not a number", "DeepMimic: string value", "COCO: non-numeric keypoint", "COCO: NaN keypoint",
    "COCO: not JSON",
]  # fmt: skip


def _check(code: int, stderr: str, words: list[str], tmp: Path, before: set[str]) -> None:
    assert code != 0, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    for w in words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    assert {p.name for p in tmp.iterdir()} == before  # nothing written: no run, no output, no temporaries


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gives_one_error_line(tmp_path, name):
    args, words = _case(name, tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    _check(result.exit_code, result.stderr, words, tmp_path, before)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", ["pairs: joint behind the camera", "pairs: camera rule no camera meets", "BVH: absurd value", "COCO: non-numeric keypoint"])
def test_bad_input_in_a_real_process(tmp_path, name):
    args, words = _case(name, tmp_path)
    before = {p.name for p in tmp_path.iterdir()}
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "posebridge", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)
    _check(proc.returncode, proc.stderr, words, tmp_path, before)


def test_evaluate_reads_a_dataset_folder_like_train(tmp_path):
    """`evaluate --data` takes what `train --data` takes: a dataset folder reaches the dataset reader."""
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tmp_path / "no_run"), "--data", str(folder)])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert f"Error: {folder}/manifest.json: unreadable manifest" in result.stderr, result.stderr  # the dataset reader's word
