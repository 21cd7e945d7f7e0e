"""The dataset commands and the output rule as a user meets them: `posebridge ...` as subprocesses.

Damaged and incomplete dataset folders (issue 10, cases 3, 5 and 7) and every command that
writes a file or folder over existing work (case 6): each ends with exit status 1 and one
`Error: ...` line on stderr naming the file and the fix, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.pairs_io import load_pairs, save_pairs
from generator.store import read_manifest

from bridge_support import frame_fields, frame_message, image_bytes, open_collector
from train_support import make_pairs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """24 frames in 3 shards of 8, as the store writes them."""
    out = tmp_path_factory.mktemp("cli") / "ds"
    c = open_collector(out, frames=24, shard_size=8)
    for i in range(24):
        rng = np.random.default_rng(i)
        assert c.handle(frame_message(frame_fields(rng), image_bytes(rng), frame_id=i, seq=i))
    c.store.close()
    return out


def posebridge_all(commands: list[list[str]], cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run `posebridge ARGS` for each ARGS at once (separate processes), in order of the list."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "posebridge.py"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for args in commands]
    out = []
    for args, p in zip(commands, procs):
        stdout, stderr = p.communicate(timeout=120)
        out.append(subprocess.CompletedProcess(args, p.returncode, stdout, stderr))
    return out


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 1, no traceback, and the last stderr line an `Error:` naming every needle."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, (result.args, result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[-1], (needle, lines[-1])
    return lines[-1]


def _damaged_copies(dataset: Path, root: Path) -> dict[str, Path]:
    """One copy of the dataset per damage the issue reported."""
    cases = {}

    def copy(name: str) -> Path:
        cases[name] = root / name
        shutil.copytree(dataset, cases[name])
        return cases[name]

    tar = copy("deleted_tar") / "shard-000001.tar"
    tar.unlink()
    tar = copy("truncated_tar") / "shard-000001.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    (copy("empty_tar") / "shard-000001.tar").write_bytes(b"")
    (copy("missing_npz") / "shard-000001.npz").unlink()
    npz = copy("truncated_npz") / "shard-000001.npz"
    npz.write_bytes(npz.read_bytes()[:3000])
    return cases


@pytest.mark.timeout(300)
def test_damaged_and_incomplete_datasets_through_inspect_and_export(dataset, tmp_path):
    cases = _damaged_copies(dataset, tmp_path)
    commands, expect = [], []
    for name, folder in cases.items():
        commands.append(["inspect", str(folder), "--verify", "--json"])
        commands.append(["export", str(folder), "--out", str(tmp_path / f"{name}.npz")])
    results = posebridge_all(commands, tmp_path)
    by = {(r.args[0], Path(r.args[1]).name): r for r in results}

    # Case 3: a deleted tar. inspect reports what is on disk and exits 1 (never "complete");
    # export writes the 16 pairs it says it wrote, and says which frames are missing.
    inspect = by[("inspect", "deleted_tar")]
    one_line_error(inspect, "shard-000001.tar", "listed in manifest.json but missing", "frames 8..15")
    assert '"frames_stored": 16' in inspect.stdout and '"complete": false' in inspect.stdout
    export = by[("export", "deleted_tar")]
    assert export.returncode == 0 and "Traceback" not in export.stderr, export.stderr
    assert "wrote" in export.stderr and "(16 pairs" in export.stderr and "frames 8..15 missing" in export.stderr
    with np.load(tmp_path / "deleted_tar.npz") as z:
        assert z["frame_id"].tolist() == [*range(8), *range(16, 24)]

    # Case 5: truncated and empty tars, a missing or truncated .npz: one line naming the shard's
    # file and the problem from both commands (inspect verifies before it draws anything).
    problems = {"truncated_tar": ("shard-000001.tar", "manifest.json records"), "empty_tar": ("shard-000001.tar", "0 bytes"),
                "missing_npz": ("shard-000001.npz", "missing"), "truncated_npz": ("shard-000001.npz", "sha256")}
    for name, needles in problems.items():
        for command in ("inspect", "export"):
            one_line_error(by[(command, name)], str(cases[name]), *needles)
        assert not (cases[name] / "contact_sheet.png").exists()
        assert not (tmp_path / f"{name}.npz").exists()

    # Read-only: no command changed a dataset file (export's pairs went elsewhere).
    for name, folder in cases.items():
        for p in dataset.iterdir():
            if p.is_file() and (folder / p.name).exists() and p.name not in ("shard-000001.tar", "shard-000001.npz"):
                assert (folder / p.name).read_bytes() == p.read_bytes(), (name, p.name)


@pytest.mark.timeout(300)
def test_every_command_refuses_to_replace_existing_work(dataset, tmp_path):
    """Case 6 (and 7): train, generate, export, pairs, label, import-videopose3d and demo refuse an
    existing output without --resume / --overwrite, and export refuses to write into its dataset."""
    save_pairs(tmp_path / "train.npz", make_pairs(np.random.default_rng(0), 200, right_baseline_mm=500.0))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model: stereo\n")  # an earlier run's files
    (run / "metrics.json").write_text("{}")
    existing = tmp_path / "existing.npz"
    save_pairs(existing, make_pairs(np.random.default_rng(1), 20))
    demo = tmp_path / "demo_out"
    demo.mkdir()
    (demo / "report.md").write_text("# an earlier demo\n")
    before = {p: p.read_bytes() for p in (existing, run / "config.yaml", demo / "report.md")}
    manifest_before = (dataset / "manifest.json").read_bytes()
    commands = [
        ["train", "--data", str(tmp_path / "train.npz"), "--model", "stereo", "--epochs", "1", "--out", str(run), "--no-progress"],
        ["train", "--data", str(tmp_path / "train.npz"), "--out", str(run), "--resume", "--overwrite"],
        ["generate", "--frames", "24", "--shard-size", "8", "--seed", "3", "--out", str(dataset), "--no-progress"],
        ["export", str(dataset), "--out", str(existing)],
        ["export", str(dataset), "--out", str(dataset / "shard-000000.npz")],
        ["export", str(dataset), "--out", str(dataset / "sub" / "pairs.npz")],
        ["pairs", "--source", "prior", "--n", "10", "--out", str(existing)],
        ["label", "--checkpoint", str(run), "--coco", str(tmp_path / "coco.json"), "--out", str(existing)],
        ["import-videopose3d", "--data-3d", "a.npz", "--data-2d", "b.npz", "--cameras", "c.json", "--out", str(existing)],
        ["demo", "--out", str(demo), "--no-progress"],
        ["train", "--data", str(dataset), "--model", "stereo", "--out", str(dataset / "run")],
    ]
    results = posebridge_all(commands, tmp_path)
    one_line_error(results[0], str(run), "already exists and is not empty", "continue the training run", "--resume", "--overwrite")
    one_line_error(results[1], "--resume or --overwrite, not both")
    one_line_error(results[2], str(dataset), "different configuration", "--overwrite")
    one_line_error(results[3], str(existing), "already exists", "--overwrite to replace it with the pairs file")
    one_line_error(results[4], "inside the input", str(dataset))
    one_line_error(results[5], "inside the input", str(dataset))
    one_line_error(results[6], str(existing), "already exists", "--overwrite")
    one_line_error(results[7], str(existing), "already exists", "--overwrite")
    one_line_error(results[8], str(existing), "already exists", "--overwrite")
    one_line_error(results[9], str(demo), "already exists and is not empty", "continue the demo folder", "--resume", "--overwrite")
    one_line_error(results[10], "inside the input", str(dataset))
    assert {p: p.read_bytes() for p in before} == before  # nothing was touched
    assert (dataset / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "metrics.json"]


@pytest.mark.timeout(300)
def test_damaged_dataset_folder_as_training_data(dataset, tmp_path):
    damaged = tmp_path / "ds"
    shutil.copytree(dataset, damaged)
    npz = damaged / "shard-000002.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0x10
    npz.write_bytes(bytes(data))
    (result,) = posebridge_all([["train", "--data", str(damaged), "--model", "stereo", "--out", str(tmp_path / "run")]], tmp_path)
    one_line_error(result, str(damaged / "shard-000002.npz"))
    assert not (tmp_path / "run").exists()


def test_overwrite_replaces_only_what_posebridge_wrote(dataset, tmp_path):
    """--overwrite deletes an existing output folder only when everything in it is the command's own."""
    from generator.outputs import OutputError
    from generator.store import DatasetStore

    folder = tmp_path / "ds"
    shutil.copytree(dataset, folder)
    (folder / "my_notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match=r"my_notes.txt.*will not delete it"):
        DatasetStore.open(folder, {"other": 1}, frames=8, shard_size=8, overwrite=True)
    assert (folder / "shard-000000.tar").exists() and (folder / "my_notes.txt").exists()
    (folder / "my_notes.txt").unlink()
    store = DatasetStore.open(folder, {"other": 1}, frames=8, shard_size=8, overwrite=True)
    store.close()
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "manifest.json"]
    assert read_manifest(folder).config == {"other": 1}
    assert len(load_pairs(dataset / "pairs.npz")) == 24  # the source was not touched
