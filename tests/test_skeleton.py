"""The h36m17 skeleton, the bone operator and the COCO-17 mapping, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from generator import skeleton as sk


def test_joint_order_and_parents_follow_the_convention():
    assert sk.JOINT_NAMES == (
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax",
        "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
    )  # fmt: skip
    assert sk.PARENTS.tolist() == [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]
    assert sk.DEPTH.tolist() == [0, 1, 2, 3, 1, 2, 3, 1, 2, 3, 4, 3, 4, 5, 3, 4, 5]
    levels = np.concatenate(sk.DEPTH_LEVELS)
    assert sorted(levels.tolist()) == list(range(1, 17))
    for depth, level in enumerate(sk.DEPTH_LEVELS, start=1):
        assert (sk.DEPTH[level] == depth).all()


def test_left_right_pairs_name_mirror_twins():
    for left, right in sk.LEFT_RIGHT_PAIRS:
        assert sk.JOINT_NAMES[left].startswith("L") and sk.JOINT_NAMES[right] == "R" + sk.JOINT_NAMES[left][1:]


def test_flip_permutation_is_an_involution_that_swaps_left_and_right_names():
    perm = sk.FLIP_PERMUTATION
    assert (perm[perm] == np.arange(17)).all()
    for j, name in enumerate(sk.JOINT_NAMES):
        twin = sk.JOINT_NAMES[perm[j]]
        if name[0] in "LR" and name not in ("Hip",):
            assert twin == {"L": "R", "R": "L"}[name[0]] + name[1:]
        else:
            assert twin == name


def test_coco_flip_permutation_is_an_involution_that_swaps_left_and_right_names():
    perm = sk.COCO_FLIP_PERMUTATION
    assert (perm[perm] == np.arange(17)).all()
    for j, name in enumerate(sk.COCO_JOINT_NAMES):
        twin = sk.COCO_JOINT_NAMES[perm[j]]
        if name.startswith("left_"):
            assert twin == "right_" + name[5:]
        elif name.startswith("right_"):
            assert twin == "left_" + name[6:]
        else:
            assert twin == name == "nose"


def test_flip_left_right_negates_one_axis_and_swaps_twins():
    p = np.arange(51, dtype=float).reshape(17, 3)
    q = sk.flip_left_right(p, axis=0)
    assert q[4].tolist() == [-p[1, 0], p[1, 1], p[1, 2]]  # new LHip = mirrored old RHip
    assert q[0].tolist() == [-p[0, 0], p[0, 1], p[0, 2]]
    np.testing.assert_array_equal(sk.flip_left_right(q, axis=0), p)


def test_bone_operator_inverts_the_ancestor_matrix():
    np.testing.assert_allclose(sk.ANCESTORS @ sk.BONE_OPERATOR, np.eye(17), atol=0)
    # Row j of ANCESTORS marks j and its ancestors, e.g. LWrist <- LElbow <- LShoulder <- Thorax <- Spine <- Hip.
    assert np.flatnonzero(sk.ANCESTORS[13]).tolist() == [0, 7, 8, 11, 12, 13]


def test_bones_from_joints_matches_the_operator_and_round_trips(rng):
    p = rng.normal(size=(4, 5, 17, 3))
    b = sk.bones_from_joints(p)
    np.testing.assert_allclose(b, np.einsum("jk,...kd->...jd", sk.BONE_OPERATOR, p), atol=1e-12)
    np.testing.assert_allclose(b[..., 0, :], p[..., 0, :])  # the root's "bone" is its position
    np.testing.assert_allclose(b[..., 3, :], p[..., 3, :] - p[..., 2, :])  # RFoot - RKnee
    np.testing.assert_allclose(sk.joints_from_bones(b), p, atol=1e-12)
    np.testing.assert_allclose(np.einsum("jk,...kd->...jd", sk.ANCESTORS, b), p, atol=1e-12)


def test_joints_from_bones_with_the_joint_axis_first_and_in_place(rng):
    p = rng.normal(size=(17, 3, 10)).astype(np.float32)
    b = sk.bones_from_joints(p, joint_axis=0)
    q = sk.joints_from_bones(b, joint_axis=0, out=b)
    assert q is b
    np.testing.assert_allclose(q, p, atol=1e-5)


def test_bone_lengths_by_hand():
    p = np.zeros((17, 3))
    p[1] = [3.0, 4.0, 0.0]  # RHip 5 from the pelvis
    p[2] = p[1] + [0.0, 0.0, -2.0]  # RKnee 2 below it
    lengths = sk.bone_lengths(p)
    assert lengths[0] == 0.0 and lengths[1] == 5.0 and lengths[2] == 2.0
    assert lengths[3] == pytest.approx(np.linalg.norm(p[2]))  # RFoot sits at the origin


def _coco_points() -> np.ndarray:
    return np.arange(34, dtype=float).reshape(17, 2) * [1.0, 10.0]


def test_coco_to_h36m_derives_pelvis_thorax_spine_and_head():
    c = _coco_points()
    idx = {n: i for i, n in enumerate(sk.COCO_JOINT_NAMES)}
    h, conf = sk.coco_to_h36m(c)
    assert (conf == 1).all()
    np.testing.assert_allclose(h[0], (c[idx["left_hip"]] + c[idx["right_hip"]]) / 2)  # Hip = mid-hip
    np.testing.assert_allclose(h[8], (c[idx["left_shoulder"]] + c[idx["right_shoulder"]]) / 2)  # Thorax
    np.testing.assert_allclose(h[7], (h[0] + h[8]) / 2)  # Spine halfway from pelvis to thorax
    np.testing.assert_allclose(h[9], c[idx["nose"]])
    np.testing.assert_allclose(h[10], (c[idx["left_ear"]] + c[idx["right_ear"]]) / 2)
    np.testing.assert_allclose(h[3], c[idx["right_ankle"]])
    np.testing.assert_allclose(h[13], c[idx["left_wrist"]])
    np.testing.assert_allclose(sk.COCO_TO_H36M.sum(axis=1), 1.0)


def test_coco_confidence_of_a_derived_joint_is_the_minimum_of_its_sources():
    idx = {n: i for i, n in enumerate(sk.COCO_JOINT_NAMES)}
    conf = np.full(17, 0.8)
    conf[idx["right_hip"]] = 0.3
    conf[idx["left_ear"]] = 0.0  # missing
    conf[idx["left_wrist"]] = 0.6
    _, out = sk.coco_to_h36m(_coco_points(), conf)
    assert out[0] == pytest.approx(0.3)  # Hip <- both hips
    assert out[7] == pytest.approx(0.3)  # Spine <- both hips and shoulders
    assert out[10] == 0.0  # Head <- a missing ear
    assert out[13] == pytest.approx(0.6)  # LWrist keeps its own
    assert out[4] == pytest.approx(0.8)  # LHip unaffected by the right hip


def test_h36m_to_coco_maps_shared_joints_and_places_face_points_on_the_head(rng):
    h = rng.normal(size=(17, 3))
    c = sk.h36m_to_coco(h)
    idx = {n: i for i, n in enumerate(sk.COCO_JOINT_NAMES)}
    np.testing.assert_allclose(c[idx["left_knee"]], h[5])
    np.testing.assert_allclose(c[idx["right_shoulder"]], h[14])
    np.testing.assert_allclose(c[idx["nose"]], h[9])
    for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
        np.testing.assert_allclose(c[idx[name]], (h[9] + h[10]) / 2)
    assert sk.COCO_DERIVED_FROM_H36M.sum() == 4
    # The 13 shared joints survive a round trip h36m -> COCO -> h36m.
    back, _ = sk.coco_to_h36m(c)
    for j in (1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16):
        np.testing.assert_allclose(back[j], h[j])


def test_facing_yaw_by_hand():
    p = np.zeros((17, 3))
    p[[4, 11], 1] = 100.0  # left hip and shoulder at +y
    p[[1, 14], 1] = -100.0
    assert sk.facing_yaw(p) == pytest.approx(0.0)  # left is +y, so the person faces +x
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +90 degrees about z
    assert sk.facing_yaw(p @ rot.T) == pytest.approx(np.pi / 2)
    assert sk.facing_yaw(np.stack([p, p @ rot.T])).shape == (2,)
