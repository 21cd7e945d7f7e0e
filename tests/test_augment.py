"""Augmentation: yaw about the pelvis, mirroring, and bone-length scaling through the bone operator."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator import skeleton as sk
from generator.augment import (
    BONE_GROUPS,
    AugmentConfig,
    BoneScaleConfig,
    augment_poses,
    mirror,
    rotate_yaw,
    sample_bone_scales,
    scale_bones,
)
from generator.prior import sample_prior_poses


@pytest.fixture(scope="module")
def poses() -> np.ndarray:
    p = sample_prior_poses(np.random.default_rng(0), 200).astype(np.float64)
    p[..., :2] += np.random.default_rng(1).normal(size=(200, 1, 2)) * 1000  # people stand anywhere
    return p


def test_rotate_yaw_by_hand():
    p = np.zeros((17, 3))
    p[:, 0] = 100.0  # pelvis at (100, 50, 0)
    p[:, 1] = 50.0
    p[4] = [110.0, 50.0, 7.0]  # LHip 10 mm along +x from the pelvis
    q = rotate_yaw(p, np.pi / 2)
    np.testing.assert_allclose(q[4], [100.0, 60.0, 7.0], atol=1e-12)  # +x turns to +y, about the pelvis
    np.testing.assert_allclose(q[0], p[0])


def test_rotate_yaw_keeps_pelvis_heights_and_bones(poses):
    yaw = np.random.default_rng(2).uniform(-np.pi, np.pi, len(poses))
    q = rotate_yaw(poses, yaw)
    np.testing.assert_allclose(q[:, 0], poses[:, 0], atol=1e-9)
    np.testing.assert_allclose(q[..., 2], poses[..., 2])
    np.testing.assert_allclose(sk.bone_lengths(q), sk.bone_lengths(poses), atol=1e-9)
    wrapped = np.angle(np.exp(1j * (sk.facing_yaw(q) - sk.facing_yaw(poses) - yaw)))
    np.testing.assert_allclose(wrapped, 0.0, atol=1e-9)


def test_mirror_swaps_sides_about_the_pelvis(poses):
    m = mirror(poses)
    np.testing.assert_allclose(m[:, 0], poses[:, 0], atol=1e-9)
    np.testing.assert_allclose(m[..., 2], poses[..., 2][:, sk.FLIP_PERMUTATION])
    # The new left hand is the old right hand reflected through the plane x = pelvis x.
    expected = poses[:, 16].copy()
    expected[:, 0] = 2 * poses[:, 0, 0] - expected[:, 0]
    np.testing.assert_allclose(m[:, 13], expected, atol=1e-9)
    np.testing.assert_allclose(mirror(m), poses, atol=1e-9)
    # Reflecting alone would put the left hip on the person's right; swapping the labels too
    # keeps a valid person: (left hip - right hip) x (up the spine) still points forward, to the nose.
    def handedness(p):
        return np.einsum("ni,ni->n", np.cross(p[:, 4] - p[:, 1], p[:, 8] - p[:, 0]), p[:, 9] - p[:, 8])
    assert (np.sign(handedness(m)) == np.sign(handedness(poses))).all()
    reflected_only = poses * [-1, 1, 1]
    assert (np.sign(handedness(reflected_only)) == -np.sign(handedness(poses))).all()


def test_scale_bones_equals_the_bone_operator(poses):
    s = np.random.default_rng(3).uniform(0.8, 1.2, (len(poses), 17))
    s[:, 0] = 1.0
    expected = np.einsum("jk,nkd->njd", sk.ANCESTORS, s[..., None] * np.einsum("jk,nkd->njd", sk.BONE_OPERATOR, poses))
    np.testing.assert_allclose(scale_bones(poses, s, keep_floor=False), expected, atol=1e-9)
    np.testing.assert_allclose(sk.bone_lengths(scale_bones(poses, s)), s * sk.bone_lengths(poses), atol=1e-9)


def test_scale_bones_keeps_the_pelvis_and_the_floor(poses):
    q = scale_bones(poses, np.full(17, 1.1))
    np.testing.assert_allclose(q[..., 2].min(axis=1), poses[..., 2].min(axis=1), atol=1e-9)  # feet on the floor
    np.testing.assert_allclose(q[:, 0, :2], poses[:, 0, :2], atol=1e-9)
    # Uniform scaling without the floor rule scales every joint about the pelvis.
    r = scale_bones(poses, np.full(17, 2.0), keep_floor=False)
    np.testing.assert_allclose(r - r[:, :1], 2 * (poses - poses[:, :1]), atol=1e-9)
    # Any leading shape works: (2, 100, 17, 3).
    assert scale_bones(poses.reshape(2, 100, 17, 3), np.ones((2, 100, 17))).shape == (2, 100, 17, 3)


def test_sample_bone_scales_share_groups_left_and_right():
    config = BoneScaleConfig()
    s = sample_bone_scales(np.random.default_rng(4), 20_000, config, dtype=np.float64)
    assert s.shape == (20_000, 17)
    assert (s[:, 0] == 1.0).all()
    for bones in BONE_GROUPS.values():
        for b in bones[1:]:
            np.testing.assert_array_equal(s[:, b], s[:, bones[0]])  # one factor per group: L == R
    low = config.height_range[0] * config.group_range[0]
    high = config.height_range[1] * config.group_range[1]
    assert s.min() >= low - 1e-9 and s.max() <= high + 1e-9
    legs, head = s[:, 2], s[:, 9]
    assert np.std(np.log(legs)) == pytest.approx(np.hypot(config.height_std, config.group_std), rel=0.1)
    assert np.corrcoef(legs, head)[0, 1] > 0.5  # the shared height factor couples the groups
    t = sample_bone_scales(np.random.default_rng(4), 20_000, config, dtype=np.float32, bone_axis=0)
    assert t.shape == (17, 20_000) and t.dtype == np.float32
    assert (t[0] == 1).all() and (t[3] == t[6]).all() and low - 1e-6 <= t.min() and t.max() <= high + 1e-6


def test_augment_poses_applies_each_switch(poses):
    none = AugmentConfig(yaw_deg=None, mirror_probability=0.0, bone_scale=None)
    np.testing.assert_array_equal(augment_poses(np.random.default_rng(5), poses, none), poses)
    only_mirror = AugmentConfig(yaw_deg=None, mirror_probability=1.0, bone_scale=None)
    np.testing.assert_allclose(augment_poses(np.random.default_rng(5), poses, only_mirror), mirror(poses))
    full = augment_poses(np.random.default_rng(5), poses, AugmentConfig())
    again = augment_poses(np.random.default_rng(5), poses, AugmentConfig())
    np.testing.assert_array_equal(full, again)
    np.testing.assert_allclose(full[:, 0, :2], poses[:, 0, :2], atol=1e-6)  # the pelvis stays put (but for its height)
    np.testing.assert_allclose(full[..., 2].min(axis=1), poses[..., 2].min(axis=1), atol=1e-6)
    assert not np.allclose(sk.bone_lengths(full), sk.bone_lengths(poses))


def test_config_validation():
    with pytest.raises(ValidationError, match="height_range"):
        BoneScaleConfig(height_range=(1.1, 1.2))
    with pytest.raises(ValidationError, match="mirror_probability"):
        AugmentConfig(mirror_probability=2)
    with pytest.raises(ValidationError, match="twist"):
        AugmentConfig(twist=True)
