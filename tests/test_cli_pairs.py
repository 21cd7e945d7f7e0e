"""`posebridge pairs` end to end: in-process with click's runner, and once as a real process."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from generator.pairs import generate_pairs
from generator.pairs_io import load_pairs
from generator.poses import load_pose_source
from posebridge import main


def _run(*args: str):
    return CliRunner().invoke(main, ["pairs", *args], catch_exceptions=False)


def test_pairs_command_writes_a_valid_file_and_prints_a_summary(tmp_path):
    out = tmp_path / "pairs.npz"
    result = _run("--source", "bundled", "--n", "3000", "--seed", "7", "--out", str(out))
    assert result.exit_code == 0, result.output
    pairs = load_pairs(out)
    assert len(pairs) == 3000 and float(pairs.baseline_mm) == 500.0
    # The same pairs as the library call with the same seed.
    expected = generate_pairs(load_pose_source("bundled", seed=7), 3000, seed=7)
    np.testing.assert_array_equal(pairs.joints_3d, expected.joints_3d)
    np.testing.assert_array_equal(pairs.camera, expected.camera)
    for needle in ("samples", "3,000", "camera distance", "joints in frame", "rejected", "h36m", "phone"):
        assert needle in result.output, needle


def test_config_file_and_flags_shape_the_pairs(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("augment: {mirror_probability: 0.0}\ncamera: {min_in_frame_fraction: 1.0}\n")
    out = tmp_path / "pairs.npz"
    result = _run("--source", "prior", "--n", "500", "--out", str(out), "--config", str(config), "--baseline-mm", "300", "--image-size", "640", "480")
    assert result.exit_code == 0, result.output
    pairs = load_pairs(out)
    assert float(pairs.baseline_mm) == 300.0
    assert (pairs.image_size == [640, 480]).all()
    assert (pairs.visibility == 2).all()  # min_in_frame_fraction 1.0: every joint in every image
    np.testing.assert_allclose(pairs.joints_2d[..., 0] - pairs.joints_2d_right[..., 0], pairs.K[:, :1, 0] * 300.0 / pairs.joints_3d[..., 2], rtol=1e-4)
    assert np.all(np.abs(pairs.K[:, 0, 2] - 320) <= 0.02 * 640 + 1e-3)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--source", "no/such/folder"], "no such file or folder"),
        (["--source", "bundled", "--n", "0"], "--n"),
        (["--source", "bundled", "--baseline-mm", "0"], "non-zero"),
        (["--source", "bundled", "--image-size", "640"], "--image-size"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path, args, needle):
    argv = ["--n", "10", "--out", str(tmp_path / "x.npz"), *args] if "--n" not in args else ["--out", str(tmp_path / "x.npz"), *args]
    result = CliRunner().invoke(main, ["pairs", *argv])
    assert result.exit_code == 2 and needle in result.output, result.output
    assert not (tmp_path / "x.npz").exists()


def test_unknown_config_keys_are_rejected_by_name(tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text("camera:\n  min_in_frame_fraction: 0.9\n  maxrounds: 3\n")
    result = CliRunner().invoke(main, ["pairs", "--source", "bundled", "--n", "10", "--out", str(tmp_path / "x.npz"), "--config", str(config)])
    assert result.exit_code == 2
    assert "camera.maxrounds" in result.output and "cfg.yaml" in result.output
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.timeout(120)
def test_real_process_same_seed_same_bytes(tmp_path):
    exe = Path(sys.executable).parent / "posebridge"
    outs = []
    for name in ("a.npz", "b.npz"):
        out = tmp_path / name
        proc = subprocess.run(
            [str(exe), "pairs", "--source", "bundled", "--n", "20000", "--seed", "3", "--out", str(out)],
            capture_output=True, text=True, timeout=100,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "joints in frame" in proc.stdout
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert zipfile.ZipFile(tmp_path / "a.npz").testzip() is None
    assert len(load_pairs(tmp_path / "a.npz", mmap=True)) == 20000
