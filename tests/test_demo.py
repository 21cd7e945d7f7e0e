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
                      "image: {steps: 3, input_size: 32, batch_size: 4, test_frames: 8}\n")
    out = tmp_path / "demo_out"
    result = CliRunner().invoke(main, ["demo", "--out", str(out), "--config", str(config), "--no-progress"])
    assert result.exit_code == 0, result.output + repr(result.exception)

    report = (out / "report.md").read_text()
    # Every image the report shows exists.
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) == 5 and all((out / p).is_file() and (out / p).stat().st_size > 1000 for p in images)
    # The metrics: clean and noisy, with and without the search, which zeroes the reprojection error.
    metrics = json.loads((out / "metrics.json").read_text())
    assert [(m["noise_px"], m["search"]) for m in metrics] == [(0.0, "none"), (0.0, "fast"), (5.0, "none"), (5.0, "fast")]
    assert all(m["reprojection_px"] < 1e-6 for m in metrics if m["search"] == "fast")
    assert all(m["reprojection_px"] > 0.1 for m in metrics if m["search"] == "none")
    assert "| clean | fast |" in report
    # The rendered dataset is complete, and no held-out person appears in any training data.
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["frames"] == 24
    from generator.pairs_io import load_pairs

    held_out = set(load_pairs(out / "pairs" / "test_cmu_heldout.npz").subject)
    for name in ("train_cmu.npz", "dataset.npz"):
        assert held_out.isdisjoint(set(load_pairs(out / "pairs" / name).subject)), name
    labels = json.loads((out / "labels_coco.json").read_text())
    assert any("keypoints_3d" in a for a in labels["annotations"])
    # the image network: trained, tested on renders of the held-out people, predictions on the COCO photos
    assert "| PCK@0.2 (torso), held-out renders |" in report and "image_predictions.png" in report
    predictions = json.loads((out / "predictions_image" / "predictions.json").read_text())
    assert len(predictions["images"]) == 4 and all(len(i["people"]) >= 1 for i in predictions["images"])

    # A second run into the same folder needs --resume (keep the frames) or --overwrite (issue 10, case 6).
    again = CliRunner().invoke(main, ["demo", "--out", str(out), "--config", str(config), "--no-progress"])
    assert again.exit_code == 1 and "--resume" in again.output and "--overwrite" in again.output
    assert (out / "report.md").read_text() == report
