"""train / evaluate / label end to end on tiny data: CLI, resume, and DDP under a real torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from generator.camera import project_points
from generator.pairs_io import save_pairs
from generator.skeleton import coco_to_h36m
from posebridge import main
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.evaluate import SUMMARY_KEYS
from train.label import AISTPP_SLICE, COCO_FIXTURE
from train.trainer import train_run

from train_support import make_pairs

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
TINY = ["--width", "32", "--blocks", "1", "--dropout", "0.1", "--batch-size", "64", "--steps-per-epoch", "6", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(7)
    save_pairs(folder / "synthetic.npz", make_pairs(rng, 600, right_baseline_mm=500.0))
    save_pairs(folder / "other.npz", make_pairs(rng, 300))
    save_pairs(folder / "test.npz", make_pairs(rng, 200, actions=("walk", "dance", "jump")))
    return folder


@pytest.fixture(scope="module")
def stereo_run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "stereo"
    result = CliRunner().invoke(
        main,
        ["train", "--data", f"{data}/synthetic.npz:0.75", "--data", f"{data}/other.npz:0.25", "--model", "stereo", "--epochs", "3", "--out", str(out), *TINY],
    )
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_complete_run_directory(stereo_run):
    metrics = json.loads((stereo_run / "metrics.json").read_text())
    assert metrics["model"] == "stereo" and metrics["epochs"] == 3 and metrics["steps"] == 18
    assert [e["stage"] for e in metrics["history"]] == ["separate", "separate", "end_to_end"]
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"] * 1.5  # it trains, no blow-up
    assert (stereo_run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ckpt = load_checkpoint(stereo_run)
    assert ckpt.epoch == 3 and ckpt.config.data[0].endswith("synthetic.npz:0.75")
    assert float(ckpt.model_state["view.net.in_norm.std"].min()) > 0  # statistics are in the checkpoint


def test_evaluate_cli_prints_markdown_and_writes_json(stereo_run, data, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(stereo_run), "--data", f"{data}/test.npz", "--search", "grid", "--grid-min", "1000", "--grid-max", "9000", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "| MPJPE (P1, mm) |" in result.output and "| dance | " in result.output and "| LWrist |" in result.output
    report = json.loads(out.read_text())
    assert set(SUMMARY_KEYS) <= set(report) and report["n"] == 200
    assert report["reprojection_px"] < 1e-6  # the search places joints on their rays
    assert report["without_search"]["reprojection_px"] > 1.0
    assert len(report["per_joint"]) == 17 and {r["action"] for r in report["per_action"]} == {"walk", "dance", "jump"}
    assert 0 <= report["pck3d_150"] <= 1 and 0 <= report["auc"] <= report["pck3d_150"]


def test_user_errors_are_one_line_messages(stereo_run, data, tmp_path):
    bad = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(tmp_path), "--data", f"{data}/test.npz"])
    assert bad.exit_code == 1 and "no checkpoint" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(main, ["train", "--data", f"{data}/nope.npz", "--out", str(tmp_path / "r"), *TINY])
    assert bad.exit_code == 1 and "nope.npz: no such pairs file" in bad.output
    (tmp_path / "cfg.yaml").write_text("epochs: -2\n")
    bad = CliRunner().invoke(main, ["train", "--data", f"{data}/test.npz", "--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "r")])
    assert bad.exit_code == 1 and "epochs" in bad.output


def test_label_lifts_real_coco_photos(stereo_run, tmp_path):
    coco = json.loads(COCO_FIXTURE.read_text())
    # Make the missing-keypoint cases explicit: one person with no keypoints, one without feet.
    coco["annotations"][0]["keypoints"] = [0] * 51
    feet = coco["annotations"][1]["keypoints"]
    for k in (15, 16):  # left_ankle, right_ankle
        feet[3 * k : 3 * k + 3] = [0, 0, 0]
    src = tmp_path / "coco.json"
    src.write_text(json.dumps(coco))
    out, figure = tmp_path / "labelled.json", tmp_path / "lifted.png"
    result = CliRunner().invoke(
        main, ["label", "--checkpoint", str(stereo_run), "--coco", str(src), "--out", str(out), "--figure", str(figure), "--images", str(COCO_FIXTURE.parent)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    labelled = json.loads(text)
    anns = labelled["annotations"]
    assert len(anns) == len(coco["annotations"]) and labelled["images"][0]["camera_K"][0][0] == pytest.approx(np.hypot(640, 425), abs=1e-3)
    assert anns[0]["keypoints_3d"] is None and anns[0]["keypoints_3d_status"].startswith("skipped: pelvis")
    assert anns[1]["keypoints_3d_status"] == "lifted" and anns[1]["keypoints_3d_valid"][3] == 0 and anns[1]["keypoints_3d_valid"][6] == 0
    images = {img["id"]: img for img in labelled["images"]}
    lifted = [a for a in anns if a["keypoints_3d"] is not None]
    assert len(lifted) >= 8 and labelled["keypoints_3d_info"]["skeleton"] == "h36m17"
    for ann in lifted:
        joints = np.asarray(ann["keypoints_3d"])
        assert joints.shape == (17, 3) and np.all(joints[:, 2] > 0)
        kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        target, _ = coco_to_h36m(kp[:, :2])
        valid = np.asarray(ann["keypoints_3d_valid"], dtype=bool)
        reproj = project_points(joints[None], np.asarray(images[ann["image_id"]]["camera_K"]))[0]
        assert np.abs(reproj - target)[valid].max() < 0.1  # exact up to the 0.1 mm rounding of the JSON
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_resume_continues_bit_for_bit(data, tmp_path):
    common = dict(
        data=[f"{data}/synthetic.npz"], model="stereo", batch_size=32, steps_per_epoch=4, threads=1,
        net={"width": 32, "blocks": 1}, end_to_end_epochs=1,
    )
    straight = train_run(TrainConfig(epochs=3, **common), tmp_path / "straight", show_progress=False)
    stop = lambda record: record["epoch"] == 2  # noqa: E731 - an interruption after epoch 2
    partial = train_run(TrainConfig(epochs=3, **common), tmp_path / "resumed", show_progress=False, stop_after=stop)
    assert load_checkpoint(partial.path).epoch == 2
    resumed = train_run(TrainConfig(epochs=3, **common), tmp_path / "resumed", resume=True, show_progress=False)
    a, b = load_checkpoint(straight.path).model_state, load_checkpoint(resumed.path).model_state
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads(resumed.metrics.read_text())["steps"] == 12
    with pytest.raises(ValueError, match="cannot resume with a different seed"):
        train_run(TrainConfig(epochs=4, seed=9, **common), tmp_path / "resumed", resume=True, show_progress=False)


@pytest.mark.timeout(120)
def test_ddp_under_torchrun(data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(REPO / "posebridge.py"), "train", "--data", f"{data}/synthetic.npz", "--model", "single", "--epochs", "2", "--out", str(out), *TINY,
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 12 and metrics["batch_size"] == 64
    assert load_checkpoint(out).epoch == 2


def test_label_real_detections_with_confidences(stereo_run, tmp_path):
    from generator.skeleton import COCO_TO_H36M
    from train.label import label_coco

    summary = label_coco(stereo_run, AISTPP_SLICE, tmp_path / "aist.json", min_confidence=0.5)
    labelled = json.loads((tmp_path / "aist.json").read_text())
    assert summary.people == 90 and summary.lifted + summary.skipped == 90 and summary.lifted > 30
    assert labelled["images"][0]["camera_K"][0][0] == pytest.approx(np.hypot(1920, 1080), abs=1e-3)
    for ann in labelled["annotations"]:
        conf = np.asarray(ann["keypoints"]).reshape(17, 3)[:, 2]
        # A joint is reliable when every COCO point it is built from scores >= 0.5.
        expected = np.array([conf[COCO_TO_H36M[j] > 0].min() >= 0.5 for j in range(17)])
        np.testing.assert_array_equal(np.asarray(ann["keypoints_3d_valid"], dtype=bool), expected)
        lifted = expected[0] and expected.sum() >= 12
        assert (ann["keypoints_3d"] is not None) == lifted, ann["keypoints_3d_status"]


def test_lifter_synthesizes_a_right_view(stereo_run, data):
    from generator.pairs_io import load_pairs
    from train.inference import Lifter

    test = load_pairs(data / "test.npz")
    lifted = Lifter.load(stereo_run).lift(test.joints_2d, test.K, search="fast")
    right = lifted.right_2d
    np.testing.assert_allclose(right[..., 1], test.joints_2d[..., 1], atol=1e-3)  # same rows: a horizontal baseline
    assert np.mean(right[..., 0] < test.joints_2d[..., 0]) > 0.95  # the right camera sees everything shifted left
    assert np.all(lifted.joints[..., 2] > 0) and lifted.root_depth.shape == (len(test),)


def test_train_from_a_yaml_config_with_flag_overrides(data, tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        f"data: ['{data}/other.npz']\nmodel: single\nepochs: 5\nbatch_size: 32\nsteps_per_epoch: 3\n"
        "net: {width: 16, blocks: 1, dropout: 0.0}\nthreads: 1\nseed: 3\n"
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "cfg.yaml"), "--epochs", "1", "--width", "24", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    cfg = load_checkpoint(out).config
    assert (cfg.epochs, cfg.net.width, cfg.net.blocks, cfg.seed, cfg.model) == (1, 24, 1, 3, "single")  # flags win, the file fills the rest
    assert "epochs: 1" in (out / "config.yaml").read_text()


def test_train_refuses_an_existing_run_unless_resume_or_overwrite(stereo_run, data, tmp_path):
    """Issue 10, case 6: `train --out EXISTING` no longer replaces the run silently."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(stereo_run, run)
    before = (run / "checkpoint.pt").read_bytes()
    args = ["train", "--data", f"{data}/other.npz", "--model", "single", "--epochs", "1", "--out", str(run), *TINY]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "already exists and is not empty" in refused.output and "--overwrite" in refused.output
    assert (run / "checkpoint.pt").read_bytes() == before
    (run / "notes.txt").write_text("mine")
    refused = CliRunner().invoke(main, [*args, "--overwrite"])
    assert refused.exit_code == 1 and "notes.txt" in refused.output and (run / "checkpoint.pt").read_bytes() == before
    (run / "notes.txt").unlink()
    replaced = CliRunner().invoke(main, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert load_checkpoint(run).config.model == "single" and json.loads((run / "metrics.json").read_text())["epochs"] == 1


def test_recipe_flags_reach_the_config_and_evaluate_takes_detector_2d(stereo_run, data, tmp_path):
    out = tmp_path / "run"
    flags = ["--lr-schedule", "cosine", "--warmup-steps", "3", "--weight-decay", "0.01", "--detector-noise"]
    result = CliRunner().invoke(main, ["train", "--data", f"{data}/other.npz", "--model", "single", "--epochs", "1", "--out", str(out), *flags, *TINY])
    assert result.exit_code == 0, result.output
    cfg = load_checkpoint(out).config
    assert (cfg.lr_schedule, cfg.warmup_steps, cfg.weight_decay) == ("cosine", 3, 0.01) and cfg.detector_noise is not None
    lrs = [e["lr"] for e in json.loads((out / "metrics.json").read_text())["history"]]
    assert lrs[-1] < cfg.lr * 0.05  # cosine decayed to lr x lr_final at the last step
    off = CliRunner().invoke(main, ["train", "--data", f"{data}/other.npz", "--model", "single", "--epochs", "1", "--out", str(tmp_path / "r2"), "--no-detector-noise", *TINY])
    assert off.exit_code == 0 and load_checkpoint(tmp_path / "r2").config.detector_noise is None
    reports = {}
    for extra in ([], ["--detector-noise"]):
        path = tmp_path / f"eval{len(extra)}.json"
        res = CliRunner().invoke(main, ["evaluate", "--checkpoint", str(stereo_run), "--data", f"{data}/test.npz", "--search", "none", "--json", str(path), *extra])
        assert res.exit_code == 0, res.output
        reports[len(extra)] = json.loads(path.read_text())
    assert reports[1]["reprojection_px"] > reports[0]["reprojection_px"] + 1.0  # the detector-like 2D is far from the clean 2D the net fits
