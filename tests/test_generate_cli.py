"""`posebridge generate / inspect / export` end to end with the built-in player (real processes, EGL)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bridge.dataset_report import verify_dataset
from bridge.generate import load_generate_config, run_generate
from bridge.launcher import free_port
from bridge.players import BuiltinLauncher
from generator.pairs_io import load_pairs
from generator.player import PlayerConfig, PlayerSettings, run_player, scene_renderer
from generator.poses import load_pose_source
from generator.scene import SceneConfig, sample_scene, scene_ground_truth
from generator.dataset import FrameDataset
from generator.masks import encode_mask_png
from generator.store import DatasetReader, load_dataset_arrays, load_dataset_pairs, read_manifest
from posebridge import main as cli_main

from bridge_support import open_collector

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--frames", "24", "--workers", "2", "--seed", "5", "--image-size", "48", "--shard-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "ds"
    result = CliRunner().invoke(cli_main, ["generate", *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.timeout(120)
def test_generate_writes_a_complete_valid_dataset(dataset):
    m = read_manifest(dataset)
    assert m.complete and m.frames_stored == 24 and [s.count for s in m.shards] == [8, 8, 8]
    assert m.config["seed"] == 5 and m.config["player"]["scene"]["image_size"] == [48, 48]
    run = m.runs[-1]
    assert run.status == "complete" and run.players_started == 2 and run.rejects == {} and run.gaps == 0
    checked, problems = verify_dataset(dataset)
    assert checked == 24 and problems == []


@pytest.mark.timeout(120)
def test_rerun_resumes_nothing_left_and_changed_arguments_are_refused(dataset):
    runner = CliRunner()
    again = runner.invoke(cli_main, ["generate", *ARGS, "--out", str(dataset)])
    assert again.exit_code == 0 and "0 in" in again.output.replace("\n", " ")
    assert read_manifest(dataset).runs[-1].players_started == 0
    changed = runner.invoke(cli_main, ["generate", *ARGS, "--seed", "6", "--out", str(dataset)])
    assert changed.exit_code == 1 and "seed: 5 -> 6" in changed.output and "--overwrite to replace it" in changed.output


@pytest.mark.timeout(180)
def test_generate_renders_a_truncated_shard_again_and_overwrite_replaces(dataset, tmp_path):
    """Issue 10, case 4: a committed shard truncated to half is not trusted on resume: it is moved
    aside with a warning naming it and rendered again, giving the same dataset. Case 6: another
    config over an existing folder needs --overwrite, which replaces it."""
    folder = tmp_path / "ds"
    shutil.copytree(dataset, folder)
    tar = folder / "shard-000001.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    result = CliRunner().invoke(cli_main, ["generate", *ARGS, "--out", str(folder)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "shard-000001.tar" in text and "quarantine/001/" in text and "8 in" in text, text
    assert (folder / "quarantine" / "001" / "shard-000001.tar").stat().st_size == tar.stat().st_size // 2
    keys = ("frame_id", "joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "R", "t", "image_crc32", "image_bytes")
    before, after = load_dataset_arrays(dataset, keys), load_dataset_arrays(folder, keys)
    assert all(np.array_equal(before[k], after[k]) for k in keys)
    assert verify_dataset(folder) == (24, [])

    result = CliRunner().invoke(cli_main, ["generate", *ARGS, "--seed", "6", "--overwrite", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    m = read_manifest(folder)
    assert m.config["seed"] == 6 and m.complete and len(m.runs) == 1 and not (folder / "quarantine").exists()
    assert not np.array_equal(load_dataset_arrays(folder, ("joints_3d",))["joints_3d"], before["joints_3d"])


@pytest.mark.timeout(120)
def test_inspect_and_export(dataset, tmp_path):
    runner = CliRunner()
    sheet = tmp_path / "sheet.png"
    result = runner.invoke(cli_main, ["inspect", str(dataset), "--verify", "--sheet", str(sheet), "--samples", "6", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"): result.stdout.rindex("}") + 1])
    assert summary["frames_stored"] == 24 and summary["complete"] and summary["rejects"] == {}
    assert abs(sum(summary["visibility"].values()) - 1) < 1e-6
    assert "verified 24 frames" in result.output and sheet.stat().st_size > 1000
    masks = summary["masks"]
    assert masks["frames with a mask"] == 1.0 and 0.005 < masks["mean person fraction"] < 0.5 and masks["empty masks"] == 0.0
    from PIL import Image

    assert Image.open(sheet).size == (4 * 192, 2 * 192)

    out = tmp_path / "pairs.npz"
    result = runner.invoke(cli_main, ["export", str(dataset), "--format", "pairs", "--out", str(out), "--with-masks"])
    assert result.exit_code == 0, result.output
    exported, stored = load_pairs(out), load_dataset_pairs(dataset)
    for key in ("joints_2d", "joints_3d", "visibility", "joints_2d_right", "K", "image_size"):
        assert np.array_equal(getattr(exported, key), getattr(stored, key)), key
    # The masks, byte for byte as stored, one PNG per frame named by its frame id.
    reader = DatasetReader(dataset)
    files = sorted((tmp_path / "pairs_masks").iterdir())
    assert [f.name for f in files] == [f"{i:09d}.png" for i in range(24)] and "wrote 24 person masks" in result.output
    assert all(f.read_bytes() == reader.mask_png(i) for i, f in enumerate(files))


def test_config_errors_name_the_key(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("frames: 10\nplayer:\n  jpeg_quality: 500\n")
    result = CliRunner().invoke(cli_main, ["generate", "--config", str(cfg), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and "player.jpeg_quality" in result.output
    result = CliRunner().invoke(cli_main, ["generate", "--out", str(tmp_path / "y"), "--player-option", "unity_exe=/x"])
    assert result.exit_code == 1 and "takes no player options" in result.output
    cfg.write_text("frames: 10\nplayer:\n  scene:\n    image_size: [64, 48]\n")
    assert load_generate_config(cfg, {"seed": 3}).player.scene.image_size == (64, 48)


@pytest.mark.timeout(120)
def test_the_player_speaks_the_protocol_with_exact_ground_truth(tmp_path):
    """One player process into a bare collector: every frame accepted, keypoints equal to the
    scene's, and the person mask bit for bit what the renderer draws here, through the store, its
    reader and the PyTorch dataset."""
    config = PlayerConfig(scene=SceneConfig(image_size=(40, 32), human={"identities": 8}))
    collector = open_collector(tmp_path / "ds", frames=6, shard_size=6, image_size=(40, 32))
    endpoint = collector.bind()[0]
    settings = PlayerSettings(endpoint=endpoint, run_id="test-run", player_id="solo", seed=11, frame_ids="0-5", config=config)
    settings_path = tmp_path / "player.json"
    settings_path.write_text(settings.model_dump_json())
    player = subprocess.Popen([sys.executable, "-m", "generator.player", "--settings", str(settings_path)], cwd=ROOT)
    try:
        while not (collector.store.complete and "solo" in collector.players and collector.players["solo"].ended):
            collector.poll(100)
            assert player.poll() in (None, 0)
        assert player.wait(30) == 0
    finally:
        player.kill()
        collector.close()
        collector.store.close()
    p = collector.players["solo"]
    assert p.kind == "builtin" and p.frames_accepted == 6 and collector.stats.rejected == 0 and collector.stats.gaps == 0
    stored = load_dataset_arrays(tmp_path / "ds")
    bank = load_pose_source("bundled", seed=11)
    for i in range(6):
        scene = sample_scene(config.scene, bank, 11, i)
        gt = scene_ground_truth(scene)
        for key in ("joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right"):
            assert np.array_equal(stored[key][i], getattr(gt, key).astype(np.float32)), key
        assert np.array_equal(stored["K"][i], scene.K.astype(np.float32))
        assert stored["sequence"][i] == scene.source["clip"] and stored["source_frame"][i] == scene.source["frame"]
    reader, torch_ds = DatasetReader(tmp_path / "ds"), FrameDataset(tmp_path / "ds")
    assert torch_ds.masks and reader.has_mask.all()
    with scene_renderer(config.scene) as renderer:  # the human body, as the player draws it
        for i in range(6):
            mask = renderer.render(sample_scene(config.scene, bank, 11, i)).mask
            assert mask.any() and reader.mask_png(i) == encode_mask_png(mask)
            assert np.array_equal(reader.mask(i), mask) and np.array_equal(torch_ds[i]["mask"].numpy(), mask)
            assert stored["mask_pixels"][i] == mask.sum()


@pytest.mark.timeout(120)
def test_remote_players_feed_a_collector_that_starts_none(tmp_path):
    """workers=0: the collector listens on TCP and a player started by hand (another machine) fills it."""
    port = free_port()
    config = load_generate_config(None, {"frames": 10, "workers": 0, "seed": 2, "shard_size": 5,
                                         "player.scene.image_size": [32, 32], "transport.endpoints": [f"tcp://127.0.0.1:{port}"]})
    out = tmp_path / "ds"
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("summary", run_generate(
        config, out, BuiltinLauncher.from_config(config, out / ".run"), run_id="remote-run", show_progress=False)))
    thread.start()
    player = subprocess.run(
        [sys.executable, "-m", "generator.player", "--endpoint", f"tcp://127.0.0.1:{port}", "--run-id", "remote-run",
         "--player-id", "host2-0", "--seed", "2", "--frame-ids", "0-9", "--image-size", "32", "--no-mask"],
        cwd=ROOT, timeout=90, capture_output=True, text=True,
    )
    thread.join(60)
    assert player.returncode == 0, player.stderr
    assert not thread.is_alive() and result["summary"].complete and result["summary"].frames_new == 10
    assert verify_dataset(out)[1] == []
    # --no-mask (for collectors older than protocol 1.1): two-part frames, accepted, stored without a mask.
    assert (load_dataset_arrays(out, ("mask_offset",))["mask_offset"] == -1).all()


def test_run_player_reports_a_bad_config(tmp_path):
    collector = open_collector(tmp_path / "ds", frames=2, shard_size=2)
    endpoint = collector.bind()[0]
    settings = PlayerSettings(endpoint=endpoint, run_id="test-run", player_id="bad", seed=11, frame_ids="0-1",
                              config=PlayerConfig(pose_source=str(tmp_path / "missing.bvh")), linger_ms=2000)
    assert run_player(settings) == 2
    while collector.poll(200):
        pass
    collector.close()
    collector.store.close()
    assert "config_invalid" in (collector.players["bad"].failed or "") and "missing.bvh" in collector.players["bad"].failed


@pytest.mark.timeout(120)
def test_generate_with_curve_authenticates_its_own_players(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli_main, ["keys", "--out", str(tmp_path / "keys"), "--name", "collector"]).exit_code == 0
    assert runner.invoke(cli_main, ["keys", "--out", str(tmp_path / "allowed"), "--name", "remote"]).exit_code == 0
    out = tmp_path / "ds"
    result = runner.invoke(cli_main, [
        "generate", "--frames", "8", "--workers", "1", "--image-size", "32", "--shard-size", "8", "--no-progress", "--out", str(out),
        "--curve-secret-key", str(tmp_path / "keys" / "collector.key_secret"), "--curve-authorized-keys", str(tmp_path / "allowed"),
    ])
    assert result.exit_code == 0, result.output
    m = read_manifest(out)
    assert m.complete and m.runs[-1].auth_failures == 0
    # The local players' ephemeral key was authorized next to the user's keys, for this run only.
    assert sorted(p.name for p in (out / ".run" / "curve" / "authorized").iterdir()) == ["local-player.key", "remote.key"]


@pytest.mark.timeout(180)
def test_players_that_cannot_start_fail_the_run_with_their_reason(tmp_path):
    """A player config that every player rejects (a subject the pose source lacks) ends the run
    with an error naming the reason after the restarts, instead of waiting for frames forever."""
    walks = ROOT / "generator" / "data" / "mocap" / "cmu_walks"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"max_restarts: 1\nplayer:\n  pose_source: {walks}\n  pose_exclude_subjects: [cmu_05]\n")
    result = CliRunner().invoke(cli_main, ["generate", *ARGS, "--config", str(cfg), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 1, result.output
    assert "failed 2 times" in result.output and "cmu_05" in result.output
