"""The image network end to end on renders made here and the vendored photos: it learns (beats the
mean pose on held-out renders), it is deterministic, it resumes bit for bit, and its commands work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posebridge import main
from train.accuracy import HELD_OUT_SUBJECTS
from train.image.config import resolve_image_config
from train.image.dataset import CropDataset, MixtureSampler, make_loader
from train.image.evaluate import evaluate_image_source
from train.image.predict import ImagePoseEstimator, predict_images
from train.image.sources import open_image_source
from train.image.trainer import build_model, open_training_sources, train_image_run

from image_support import COCO_FIXTURE, MPII_FIXTURE, render_small

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
TINY = {"net.input_size": 64, "batch_size": 8, "steps_per_epoch": 3, "epochs": 2, "workers": 1, "threads": 1, "warmup_steps": 2}


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    """Training renders and held-out renders (other frames, cameras, bodies, clothes, lights and
    backgrounds of the same mocap pool; the held-out people are kept out of both: they are the
    ablation's test, which needs a budget far beyond a unit test's)."""
    root = tmp_path_factory.mktemp("renders")
    train = render_small(root / "train", 1200, 160, seed=3, exclude=HELD_OUT_SUBJECTS)
    test = render_small(root / "test", 100, 160, seed=9, exclude=HELD_OUT_SUBJECTS)
    return train, test


@pytest.mark.timeout(400)
def test_cpu_small_learns_beyond_the_mean_pose_on_held_out_renders(renders, tmp_path):
    train, test = renders
    cfg = resolve_image_config("cpu-small", {"data": [str(train)], "net.input_size": 48, "batch_size": 16, "epochs": 1, "steps_per_epoch": 500,
                                             "warmup_steps": 20, "lr": 3e-3})  # fmt: skip
    assert cfg.net.backbone.widths == [32, 64, 128, 256] and cfg.preset == "cpu-small"  # the cpu-small net, on 48 px crops
    run = train_image_run(cfg, tmp_path / "run", show_progress=False)
    est = ImagePoseEstimator.load(run.path)
    result = evaluate_image_source(est.model, open_image_source(test), cfg.augment.pad).summary
    base = result["baseline_mean_pose"]
    print("learning check:", {k: result[k] for k in ("pck_02", "mpjpe_mm", "p_mpjpe_mm")}, "mean pose:", base)
    assert result["n"] == 100 and result["n_3d"] == 100
    assert 0.1 < base["pck_02"] < 0.4 and 200 < base["mpjpe_mm"] < 400  # the trivial predictor, as measured
    assert result["pck_02"] > base["pck_02"] + 0.07  # 2D: clearly better than the mean pose (measured: +0.11)
    assert result["mpjpe_mm"] < 0.97 * base["mpjpe_mm"]  # 3D: better than the mean pose (measured: -5 %)


def _first_batch(cfg, workers: int) -> dict:
    sources, weights = open_training_sources(cfg)
    sampler = MixtureSampler([len(s) for s in sources], weights, cfg.batch_size, 2, cfg.seed)
    loader = make_loader(CropDataset(sources, cfg.net.input_size, cfg.augment, cfg.seed), sampler, workers)
    sampler.set_epoch(1)
    return next(iter(loader))


def test_same_seed_same_batches_and_weights(renders, tmp_path):
    train, _ = renders
    cfg = resolve_image_config("cpu-small", {**TINY, "data": [f"{train}:0.5", f"{MPII_FIXTURE}:0.25", f"{COCO_FIXTURE}:0.25"], "seed": 5})
    a, b = _first_batch(cfg, workers=0), _first_batch(cfg, workers=2)  # also: independent of the worker count
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert a["source"].tolist().count(0) == 4 and a["image"].dtype == torch.uint8 and a["image"].shape == (8, 3, 64, 64)
    other = _first_batch(cfg.model_copy(update={"seed": 6}), workers=0)
    assert not torch.equal(a["image"], other["image"])
    runs = [train_image_run(cfg, tmp_path / f"r{k}", show_progress=False) for k in range(2)]
    w = [ImagePoseEstimator.load(r.path).model.state_dict() for r in runs]
    assert all(torch.equal(w[0][k], w[1][k]) for k in w[0])
    initial = build_model(cfg, torch.device("cpu")).state_dict()  # the seeded initial weights: training moved them
    assert not torch.equal(w[0]["out.weight"], initial["out.weight"]) and not torch.equal(w[0]["mean_2d"], initial["mean_2d"])


@pytest.fixture(scope="module")
def tiny_run(renders, tmp_path_factory):
    train, _ = renders
    cfg = resolve_image_config("cpu-small", {**TINY, "data": [f"{train}:0.6", f"{MPII_FIXTURE}:0.2", f"{COCO_FIXTURE}:0.2"]})
    return train_image_run(cfg, tmp_path_factory.mktemp("tiny") / "run", show_progress=False), cfg


def test_resume_continues_bit_for_bit_and_runs_are_not_overwritten(tiny_run, tmp_path):
    run, cfg = tiny_run
    metrics = run.read_metrics()
    assert metrics["epochs"] == 2 and metrics["steps"] == 6 and metrics["samples_seen"] == 48
    assert (run.path / "loss_curves.png").read_bytes()[:4] == b"\x89PNG" and (run.path / "config.yaml").is_file()
    half = train_image_run(cfg.model_copy(update={"epochs": 1}), tmp_path / "half", show_progress=False)
    with pytest.raises(ValueError, match="already exists and is not empty; pass --resume"):
        train_image_run(cfg, half.path, show_progress=False)
    train_image_run(cfg, half.path, resume=True, show_progress=False)
    a, b = ImagePoseEstimator.load(run.path).model.state_dict(), ImagePoseEstimator.load(half.path).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert half.read_metrics()["epochs"] == 2
    with pytest.raises(ValueError, match="cannot resume with a different seed"):
        train_image_run(cfg.model_copy(update={"seed": 9}), half.path, resume=True, show_progress=False)
    train_image_run(cfg.model_copy(update={"epochs": 1}), half.path, overwrite=True, show_progress=False)
    assert half.read_metrics()["epochs"] == 1


def test_evaluate_and_predict_commands(tiny_run, renders, tmp_path):
    run, _ = tiny_run
    _, test = renders
    out = tmp_path / "m.json"
    result = CliRunner().invoke(main, ["evaluate-image", "--checkpoint", str(run.path), "--data", str(test), "--json", str(out), "--workers", "0"])
    assert result.exit_code == 0, result.output
    m = json.loads(out.read_text())
    assert m["n"] == 100 and 0 <= m["pck_02"] <= 1 and m["mpjpe_mm"] > 0 and m["p_mpjpe_mm"] <= m["mpjpe_mm"] and "abs_mpjpe_mm" in m
    assert len(m["per_joint"]) == 17 and {"pck_02", "n", "mpjpe_mm"} <= set(m["per_joint"][0]) and "| PCK@0.2 (torso) |" in result.output
    # photos without 3D: no 3D metric, and joints the data lacks are left out of PCK
    result = CliRunner().invoke(main, ["evaluate-image", "--checkpoint", str(run.path), "--data", str(COCO_FIXTURE), "--json", str(out), "--workers", "0"])
    assert result.exit_code == 0, result.output
    m = json.loads(out.read_text())
    assert m["mpjpe_mm"] is None and m["joints_evaluated"] == 15
    assert [r["pck_02"] for r in m["per_joint"] if r["joint"] in ("Head", "Neck/Nose")] == [None, None]
    # predict: one person per COCO box, 2D in the photo, 3D placed with an estimated K
    photos = sorted(COCO_FIXTURE.parent.glob("*.jpg"))
    s = predict_images(run.path, photos, tmp_path / "pred", coco=COCO_FIXTURE)
    coco = json.loads(COCO_FIXTURE.read_text())
    assert s.images == 4 and s.people == sum(1 for a in coco["annotations"] if not a.get("iscrowd")) and len(s.figures) == 4
    pred = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    person = pred["images"][0]["people"][0]
    assert np.asarray(person["keypoints_2d"]).shape == (17, 2) and np.asarray(person["keypoints_3d_camera"]).shape == (17, 3)
    K = np.asarray(person["camera_K"])
    cam = np.asarray(person["keypoints_3d_camera"])
    uv = (cam[:, :2] / cam[:, 2:]) * K[[0, 1], [0, 1]] + K[:2, 2]
    assert np.abs(uv - np.asarray(person["keypoints_2d"])).max() < 0.5  # the search puts the 3D on the 2D's rays
    # bad input: one line, no traceback
    bad = CliRunner().invoke(main, ["evaluate-image", "--checkpoint", str(tmp_path), "--data", str(test)])
    assert bad.exit_code == 1 and "no checkpoint" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(main, ["train-image", "--data", str(tmp_path / "nope.json"), "--out", str(tmp_path / "r")])
    assert bad.exit_code == 1 and "nope.json: no such dataset folder" in bad.output


def test_train_image_smoke_in_a_subprocess(renders, tmp_path):
    train, _ = renders
    cmd = [sys.executable, "-m", "posebridge", "train-image", "--data", f"{train}:0.7", "--data", f"{MPII_FIXTURE}:0.3", "--config", "cpu-small",
           "--input-size", "64", "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "2", "--workers", "0", "--out", str(tmp_path / "run"), "--no-progress"]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "image network (cpu-small): 1 epochs, 2 steps" in r.stdout and (tmp_path / "run" / "checkpoint.pt").is_file()
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "--resume" in r.stderr and "Traceback" not in r.stderr


def test_label_lsp_gives_pseudo_3d_the_image_trainer_reads(renders, tmp_path):
    from generator.pairs_io import save_pairs
    from train.config import TrainConfig
    from train.models import NetConfig as LifterNet
    from train.trainer import train_run

    from image_support import lsp_folder
    from train_support import make_pairs

    save_pairs(tmp_path / "pairs.npz", make_pairs(np.random.default_rng(1), 400, right_baseline_mm=500.0))
    lifter = train_run(TrainConfig(data=[str(tmp_path / "pairs.npz")], net=LifterNet(width=32, blocks=1), epochs=1, steps_per_epoch=3,
                                   batch_size=64, threads=1), tmp_path / "lifter", show_progress=False)  # fmt: skip
    folder, _, _ = lsp_folder(tmp_path / "lspet", "lspet", visible_fraction=0.95)
    out = tmp_path / "labels.json"
    result = CliRunner().invoke(main, ["label", "--checkpoint", str(lifter.path), "--lsp", str(folder), "--split", "train", "--out", str(out), "--min-joints", "10"])
    assert result.exit_code == 0, result.output
    labels = json.loads(out.read_text())
    assert labels["format"] == "posebridge-lsp-labels" and labels["layout"] == "lspet" and [e["index"] for e in labels["labels"]] == [0, 1, 2, 3]
    lifted = [e for e in labels["labels"] if e["keypoints_3d"] is not None]
    assert lifted and all(np.asarray(e["keypoints_3d"])[:, 2].min() > 0 for e in lifted)
    src = open_image_source(out)
    assert src.has_pseudo_3d and src.records.has_3d.sum() == len(lifted) and list(src.indices) == [0, 1, 2, 3]
    train, _ = renders
    cfg = resolve_image_config("cpu-small", {**TINY, "epochs": 1, "data": [f"{train}:0.5", f"{out}:0.5"]})
    run = train_image_run(cfg, tmp_path / "run", show_progress=False)
    assert run.read_metrics()["final_loss_3d"] > 0
    bad = CliRunner().invoke(main, ["label", "--checkpoint", str(lifter.path), "--out", str(out)])
    assert bad.exit_code != 0 and "exactly one of --coco FILE and --lsp FOLDER" in bad.output


def test_config_takes_a_preset_or_a_yaml_file(tmp_path):
    from generator.config_file import ConfigError

    small, full = resolve_image_config("cpu-small"), resolve_image_config("gpu-full")
    assert small.net.input_size == 128 and small.total_samples() == 76_800 and small.threads == 1 and small.device == "cpu"
    assert full.net.input_size == 256 and full.net.backbone.block == "bottleneck" and full.net.backbone.depths == [3, 4, 6, 3]
    assert full.net.heatmap_size() == 64 and full.device == "cuda"
    (tmp_path / "c.yaml").write_text("preset: gpu-full\nbatch_size: 16\nnet:\n  input_size: 192\naugment:\n  rotation_deg: 10\n")
    cfg = resolve_image_config(tmp_path / "c.yaml", {"lr": 1e-4})
    assert cfg.preset == "gpu-full" and cfg.batch_size == 16 and cfg.net.input_size == 192 and cfg.net.backbone.block == "bottleneck"
    assert cfg.augment.rotation_deg == 10 and cfg.lr == 1e-4 and cfg.epochs == full.epochs
    (tmp_path / "bad.yaml").write_text("net:\n  widths: [1]\naugment:\n  flip_prob: 2\n")
    with pytest.raises(ConfigError) as e:
        resolve_image_config(tmp_path / "bad.yaml")
    assert "bad.yaml" in str(e.value) and "net.widths" in str(e.value) and "augment.flip_prob" in str(e.value)
    with pytest.raises(ConfigError, match="neither a preset"):
        resolve_image_config("cpu-big")
