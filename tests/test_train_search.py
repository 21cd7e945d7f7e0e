"""Geometric search: zero reprojection, exact root depth on clean input, grid and fast agree."""

from __future__ import annotations

import numpy as np
import pytest

from generator.camera import intrinsics_matrix, project_points
from generator.prior import sample_prior_poses
from train.metrics import reprojection_errors, root_align
from train.normalization import pixels_to_normalized
from train.search import GridConfig, fast_root_depth, geometric_search, grid_root_depth, rigid_translation


def _scene(rng, n=64, integer_depth=True):
    """Prior poses placed in front of cameras with varied K; returns (absolute joints, pixels, K)."""
    pose = sample_prior_poses(rng, n).astype(np.float64)
    pose = root_align(pose[..., [1, 2, 0]] * np.array([1.0, -1.0, 1.0]))  # world z-up -> camera y-down
    depth = rng.integers(3000, 7000, n).astype(np.float64) if integer_depth else rng.uniform(3000, 7000, n)
    offset = np.stack([rng.uniform(-900, 900, n), rng.uniform(-400, 400, n), depth], axis=1)
    joints = pose + offset[:, None, :]
    K = intrinsics_matrix(rng.uniform(600, 1600, n), rng.uniform(600, 1600, n), rng.uniform(300, 700, n), rng.uniform(200, 600, n))
    K[:, 0, 1] = rng.uniform(-2, 2, n)  # a little skew: the rays must honour it too
    return joints, project_points(joints, K), K


@pytest.mark.parametrize("method", ["fast", "grid"])
def test_clean_input_recovers_pose_and_depth_with_zero_reprojection(rng, method):
    joints, pixels, K = _scene(rng)
    placed = geometric_search(root_align(joints), pixels, K, method=method)
    np.testing.assert_allclose(placed.root_depth, joints[:, 0, 2], atol=1e-6)
    np.testing.assert_allclose(placed.joints, joints, atol=1e-6)
    assert reprojection_errors(placed.joints, pixels, K).max() < 1e-6


def test_reprojection_is_zero_whatever_the_network_says(rng):
    joints, pixels, K = _scene(rng)
    wrong = root_align(joints) + rng.normal(0, 80, joints.shape)
    wrong[:, 0] = 0
    for method in ("fast", "grid"):
        placed = geometric_search(wrong, pixels, K, method=method)
        assert reprojection_errors(placed.joints, pixels, K).max() < 1e-6
    rigid = geometric_search(wrong, pixels, K, method="none")
    assert reprojection_errors(rigid.joints, pixels, K).mean() > 1.0  # a rigid pose cannot fit noisy rays
    np.testing.assert_allclose(root_align(rigid.joints), wrong, atol=1e-9)  # ... and keeps its shape


def test_grid_with_squared_loss_agrees_with_closed_form(rng):
    joints, pixels, K = _scene(rng, integer_depth=False)
    noisy = root_align(joints) + rng.normal(0, 40, joints.shape)
    noisy[:, 0] = 0
    rays = pixels_to_normalized(pixels, K)
    fast = fast_root_depth(rays, noisy)
    grid = grid_root_depth(rays, noisy, GridConfig(depth_min_mm=1000, depth_max_mm=9999, loss="squared"))
    assert np.abs(grid - fast).max() <= 0.5 + 1e-9  # the grid point nearest the exact optimum
    # The paper's loss (sum of distances) picks a nearby, not identical, optimum.
    paper = grid_root_depth(rays, noisy, GridConfig(depth_min_mm=1000, depth_max_mm=9999))
    assert np.abs(paper - fast).mean() < 100.0


def test_grid_stays_in_its_range_and_fast_keeps_joints_in_front(rng):
    joints, pixels, K = _scene(rng)
    rays = pixels_to_normalized(pixels, K)
    d = grid_root_depth(rays, root_align(joints), GridConfig(depth_min_mm=4000, depth_max_mm=4500, step_mm=10))
    assert d.min() >= 4000 and d.max() <= 4500 and np.allclose(d % 10, 0)
    # A pose that says 'everything is 10 m deep' cannot push the root behind the camera.
    weird = root_align(joints).copy()
    weird[:, 1:, 2] = 10_000.0
    weird[:, 1:, :2] = 0.0
    d = fast_root_depth(rays, weird)
    assert np.all(weird[..., 2] + d[:, None] >= 100.0 - 1e-9)


def test_rigid_translation_recovers_a_translated_pose(rng):
    joints, pixels, K = _scene(rng)
    rays = pixels_to_normalized(pixels, K)
    shift = rigid_translation(rays, root_align(joints))
    np.testing.assert_allclose(shift, joints[:, 0], atol=1e-6)


def test_grid_config_and_method_errors():
    assert GridConfig().depths()[[0, -1]].tolist() == [2800.0, 7199.0]
    assert len(GridConfig().depths()) == 4400
    with pytest.raises(ValueError, match="depth_max_mm"):
        GridConfig(depth_min_mm=5000, depth_max_mm=4000)
    with pytest.raises(ValueError, match="unknown search 'magic'"):
        geometric_search(np.zeros((1, 17, 3)), np.zeros((1, 17, 2)), np.eye(3), method="magic")
