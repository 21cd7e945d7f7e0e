"""`posebridge demo` end to end at a tiny scale: every step runs for real and the report links real files."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from posebridge import main


@pytest.mark.timeout(300)
def test_demo_runs_every_step_and_writes_the_report(tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text("pairs_per_source: 2000\nframes: 24\nworkers: 2\nimage_size: 64\nepochs: 2\nsteps_per_epoch: 3\n"
                      "test_cameras_per_pose: 1\n"
                      "image: {steps: 3, input_size: 32, batch_size: 4, test_frames: 8}\n")
    out = tmp_path / "demo_out"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--config", str(config), "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    report = (out / "report.md").read_text()
    # Every image the report shows exists.
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) == 5 and all((out / p).is_file() and (out / p).stat().st_size > 1000 for p in images)
    # The metrics: each unseen-motion test set, clean and detector-like 2D, with and without the
    # search, which zeroes the reprojection error.
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(m["test"], m["noise"], m["search"]) for m in metrics] == [
        (t, n, s) for t in ("CC actions", "DeepMimic") for n in ("clean", "detector") for s in ("none", "fast")
    ]
    assert all(m["reprojection_px"] < 1e-6 for m in metrics if m["search"] == "fast")
    assert all(m["reprojection_px"] > 0.1 for m in metrics if m["search"] == "none")
    assert "## Accuracy on unseen motions (cross-source: trained on walks, tested on actions)" in report
    assert "| CC actions | clean | fast |" in report and "| DeepMimic | detector-like | none |" in report
    # The recipe is train's default, whatever its values.
    from train.config import TrainConfig

    default = TrainConfig()
    assert f"batch {default.batch_size}" in report and f"width {default.net.width}" in report
    # The rendered dataset is complete; no held-out person is in any training data, and no training
    # pair comes from a test clip (the test clips are other motions, some of the same people).
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["frames"] == 24
    from generator.pairs_io import load_pairs
    from train.accuracy import HELD_OUT_SUBJECTS

    tests = [load_pairs(out / "pairs" / name) for name in ("test_cc_actions.npz", "test_deepmimic.npz")]
    test_clips = {str(s) for t in tests for s in t.sequence}
    assert len(test_clips) > 20 and {str(s) for s in tests[1].subject} == {"deepmimic"}
    for name in ("train_walks.npz", "dataset.npz", "train_prior.npz"):
        train = load_pairs(out / "pairs" / name)
        assert set(HELD_OUT_SUBJECTS).isdisjoint({str(s) for s in train.subject}), name
        assert test_clips.isdisjoint({str(s) for s in train.sequence}), name
    walkers = {str(s) for s in load_pairs(out / "pairs" / "train_walks.npz").subject}
    assert walkers == {"cmu_02", "cmu_06", "cmu_07", "cmu_08", "cmu_12", "cmu_16", "cmu_35"}
    assert {str(s) for s in load_pairs(out / "pairs" / "dataset.npz").subject} <= walkers
    labels = json.loads((out / "labels_coco.json").read_text())
    assert any("keypoints_3d" in a for a in labels["annotations"])
    # the image network: trained, tested on renders of the held-out people, predictions on the COCO photos
    assert "| PCK@0.2 (torso), held-out renders |" in report and "image_predictions.png" in report
    from generator.store import load_dataset_arrays

    rendered_test = {str(s) for s in load_dataset_arrays(out / "dataset_heldout", keys=("subject",))["subject"]}
    assert rendered_test and rendered_test <= set(HELD_OUT_SUBJECTS) and rendered_test.isdisjoint(walkers)
    predictions = json.loads((out / "predictions_image" / "predictions.json").read_text())
    assert len(predictions["images"]) == 4 and all(len(i["people"]) >= 1 for i in predictions["images"])

    # A second run into the same folder needs --resume (keep the frames) or --overwrite (issue 10, case 6).
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--config", str(config), "--no-progress"])
    assert again.exit_code == 1 and "--resume" in again.output and "--overwrite" in again.output
    assert (out / "report.md").read_text() == report
