"""The accuracy experiment's split and the multi-view consistency measure."""

from __future__ import annotations

import numpy as np

from generator.poses import load_pose_source
from train.accuracy import HELD_OUT_SUBJECTS, cmu_split, multiview_consistency


def test_cmu_split_holds_out_whole_people():
    bank = load_pose_source("bundled")
    train, test = cmu_split(bank, HELD_OUT_SUBJECTS)
    train_subjects = {c.subject for c in train.clips}
    test_subjects = {c.subject for c in test.clips}
    assert test_subjects == set(HELD_OUT_SUBJECTS)
    assert not train_subjects & test_subjects and all(s.startswith("cmu_") for s in train_subjects)
    assert not {c.name for c in train.clips} & {c.name for c in test.clips}
    assert len(train) > 500 and len(test) > 500


def test_multiview_consistency_is_zero_for_rotated_copies(rng):
    pose = rng.normal(0, 300, (17, 3))
    angle = 0.7
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    labelled = {
        "images": [{"id": 1, "frame": 0}, {"id": 2, "frame": 0}, {"id": 3, "frame": 5}, {"id": 4, "frame": 5}],
        "annotations": [
            {"image_id": 1, "keypoints_3d": pose.tolist()},
            {"image_id": 2, "keypoints_3d": (pose @ rot.T + 4000).tolist()},
            {"image_id": 3, "keypoints_3d": pose.tolist()},
            {"image_id": 4, "keypoints_3d": None},  # skipped: no pair for frame 5
        ],
    }
    result = multiview_consistency(labelled)
    assert result["view_pairs"] == 1 and result["p_mpjpe_mean_mm"] < 1e-9
    labelled["annotations"][1]["keypoints_3d"] = (pose + np.eye(17, 3) * 34.0).tolist()  # one joint 34 mm off
    assert 0 < multiview_consistency(labelled)["p_mpjpe_mean_mm"] < 34.0
