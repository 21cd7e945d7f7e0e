"""The pose prior: anatomically plausible, well spread, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator import skeleton as sk
from generator.prior import REST_OFFSETS_MM, PriorConfig, forward_kinematics, sample_prior_poses

N = 20_000


@pytest.fixture(scope="module")
def poses() -> np.ndarray:
    return sample_prior_poses(np.random.default_rng(0), N).astype(np.float64)


@pytest.fixture(scope="module")
def upright() -> np.ndarray:
    config = PriorConfig(yaw_deg=(0.0, 0.0), crouch_fraction=0.0, lying_fraction=0.0)
    return sample_prior_poses(np.random.default_rng(1), 5000, config).astype(np.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((_unit(a) * _unit(b)).sum(-1), -1.0, 1.0)))


def test_shape_dtype_and_finite(poses):
    out = sample_prior_poses(np.random.default_rng(0), 10)
    assert out.shape == (10, 17, 3) and out.dtype == np.float32
    assert np.isfinite(poses).all()


def test_bone_lengths_are_the_h36m_means(poses):
    np.testing.assert_allclose(sk.bone_lengths(poses)[:, 1:], np.broadcast_to(sk.H36M_BONE_LENGTHS_MM[1:], (N, 16)), atol=0.05)


def test_lowest_joint_is_on_the_floor_and_standing_poses_stand_on_a_foot(poses, upright):
    np.testing.assert_allclose(poses[..., 2].min(axis=1), 0.0, atol=1e-3)
    lowest = upright[..., 2].argmin(axis=1)
    assert np.isin(lowest, (3, 6)).mean() > 0.99  # RFoot or LFoot
    assert np.median(upright[:, 0, 2]) > 800  # the pelvis of a standing adult


def test_knees_never_bend_backwards(poses):
    left = _unit(poses[:, 4] - poses[:, 1])  # the pelvis's left, the knees' flexion axis at rest
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        thigh, shin = poses[:, knee] - poses[:, hip], poses[:, ankle] - poses[:, knee]
        # Flexion turns the shin backwards about the left axis: thigh x shin points left.
        assert ((np.cross(thigh, shin) * left).sum(1) >= -1e-3 * 443 * 454).all()
        flexion = _angle_deg(thigh, shin)
        assert flexion.max() <= 150.01 and np.percentile(flexion, 99) > 120  # 0-150, fully used


def test_elbows_flex_forward_only_and_within_limits(poses):
    for shoulder, elbow, wrist in ((11, 12, 13), (14, 15, 16)):
        flexion = _angle_deg(poses[:, elbow] - poses[:, shoulder], poses[:, wrist] - poses[:, elbow])
        assert flexion.max() <= 145.01 and np.percentile(flexion, 99) > 120
    # With the upper arm hanging at rest (only twist left free), a bent elbow brings the hand
    # forward, never backward: the twist limit (80 deg) keeps the flexion plane in front.
    hanging = PriorConfig(yaw_deg=(0, 0), crouch_fraction=0, lying_fraction=0, lean_forward_deg=(0, 0), lean_side_deg=(0, 0),
                          lumbar_flex_deg=(0, 0), lumbar_bend_deg=(0, 0), lumbar_twist_deg=(0, 0), thoracic_flex_deg=(0, 0),
                          thoracic_bend_deg=(0, 0), thoracic_twist_deg=(0, 0), clavicle_elevate_deg=(0, 0),
                          clavicle_protract_deg=(0, 0), shoulder_flex_deg=(0, 0), shoulder_abduct_deg=(0, 0),
                          elbow_flex_deg=(30, 145))  # fmt: skip
    p = sample_prior_poses(np.random.default_rng(2), 2000, hanging).astype(np.float64)
    for shoulder, elbow, wrist in ((11, 12, 13), (14, 15, 16)):
        assert ((p[:, elbow] - p[:, shoulder])[:, 2] < -278).all()  # the upper arm hangs straight down
        assert ((p[:, wrist] - p[:, elbow])[:, 0] > 0).all()  # the forearm points forward (+x)


def test_left_joints_are_on_the_left_of_an_upright_person_facing_plus_x(upright):
    # Facing +x, the person's left is +y.
    for left, right in ((4, 1), (11, 14), (6, 3)):
        frac = (upright[:, left, 1] > upright[:, right, 1]).mean()
        assert frac > (0.999 if left != 6 else 0.9), sk.JOINT_NAMES[left]
    assert np.abs(np.degrees(sk.facing_yaw(upright))).max() < 45  # hips and shoulders face +x within the twist


def test_yaw_range_and_pose_kinds(poses):
    facing = sk.facing_yaw(poses[poses[:, 0, 2] > 600])  # standing: hips level
    counts = np.histogram(facing, bins=8, range=(-np.pi, np.pi))[0]
    assert counts.min() > 0.8 * counts.mean()  # facings spread over the full circle
    pelvis_z = poses[:, 0, 2]
    assert 0.02 < (pelvis_z < 400).mean() < 0.12  # lying (5 %) and the deepest crouches (of 10 %)
    narrow = sample_prior_poses(np.random.default_rng(3), 500, PriorConfig(yaw_deg=(30, 40), lying_fraction=0, crouch_fraction=0))
    f = np.degrees(np.asarray(sk.facing_yaw(narrow.astype(np.float64))))
    assert 30 - 45 < f.min() and f.max() < 40 + 45


def test_a_useful_spread_of_poses(poses):
    rel = poses - poses[:, :1]
    spread = rel.std(axis=0).mean(axis=1)  # mm, per joint, pelvis-relative
    assert (spread[[3, 6]] > 200).all() and (spread[[13, 16]] > 250).all() and spread[10] > 150
    wrist_above_head = (poses[:, 13, 2] > poses[:, 10, 2]).mean()
    assert 0.05 < wrist_above_head < 0.4
    hand_behind = ((rel[:, 13] - rel[:, 8]) * _unit(np.cross(rel[:, 4] - rel[:, 1], [0, 0, 1]))).sum(1) < -100
    assert hand_behind.mean() > 0.02  # some hands reach behind the back plane


def test_forward_kinematics_of_the_rest_pose():
    eye = np.broadcast_to(np.eye(3), (1, 17, 3, 3))
    joints = forward_kinematics(eye, np.eye(3)[None])[0]
    np.testing.assert_allclose(joints, sk.joints_from_bones(REST_OFFSETS_MM), atol=1e-9)
    assert joints[4, 1] > 0 and joints[1, 1] < 0 and joints[10, 2] > joints[8, 2] > 0 > joints[3, 2]


def test_same_generator_state_same_poses():
    a = sample_prior_poses(np.random.default_rng(7), 100)
    b = sample_prior_poses(np.random.default_rng(7), 100)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_prior_poses(np.random.default_rng(8), 100))


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(knee_flex_deg=(-10, 150)), "knee"),
        (dict(elbow_flex_deg=(-5, 145)), "elbow"),
        (dict(hip_flex_deg=(120, -20)), "hip_flex_deg"),
        (dict(crouch_fraction=0.7, lying_fraction=0.5), "must not exceed 1"),
        (dict(wings_deg=(0, 1)), "wings_deg"),
    ],
)
def test_config_validation(bad, message):
    with pytest.raises(ValidationError, match=message):
        PriorConfig(**bad)
