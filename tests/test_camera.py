"""Camera math in the project's conventions, with hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator import camera as cam

K_HAND = cam.intrinsics_matrix(1000.0, 1000.0, 320.0, 240.0)


def test_projection_by_hand():
    uv = cam.project_points(np.array([[100.0, -50.0, 2000.0]]), K_HAND)
    np.testing.assert_allclose(uv, [[370.0, 215.0]])  # 1000*100/2000 + 320, 1000*(-50)/2000 + 240


def test_projection_keeps_float32_and_broadcasts_per_sample_K(rng):
    pts = rng.uniform([-500, -500, 1000], [500, 500, 5000], size=(4, 17, 3)).astype(np.float32)
    K = np.stack([cam.intrinsics_matrix(f, f, 300, 200) for f in (500.0, 800.0, 1000.0, 1200.0)])
    uv = cam.project_points(pts, K.astype(np.float32))
    assert uv.dtype == np.float32 and uv.shape == (4, 17, 2)
    np.testing.assert_allclose(uv[2, 0, 0], 1000.0 * pts[2, 0, 0] / pts[2, 0, 2] + 300, rtol=1e-5)


def test_skew_enters_u_only():
    K = K_HAND.copy()
    K[0, 1] = 10.0
    uv = cam.project_points(np.array([[0.0, 1000.0, 1000.0]]), K)
    np.testing.assert_allclose(uv, [[320.0 + 10.0, 240.0 + 1000.0]])


def test_ideal_principal_point_is_the_image_centre_under_the_pixel_corner_convention():
    K = cam.intrinsics_from_fov(90.0, 640, 480)
    assert K[0, 0] == pytest.approx(320.0) and K[1, 1] == pytest.approx(320.0)  # f = W/2 / tan(45 deg)
    assert (K[0, 2], K[1, 2]) == (320.0, 240.0)  # W/2, H/2: the corner shared by the 4 central pixels
    # The optical axis hits u = W/2 exactly; pixel (i, j)'s centre is (i + 0.5, j + 0.5), so the
    # ray through the centre of pixel (0, 0) has a negative x and y.
    np.testing.assert_allclose(cam.project_points(np.array([[0.0, 0.0, 7.0]]), K), [[320.0, 240.0]])
    ray = cam.backproject(np.array([[0.5, 0.5]]), np.array([1.0]), K)[0]
    np.testing.assert_allclose(ray, [(0.5 - 320.0) / 320.0, (0.5 - 240.0) / 320.0, 1.0])


def test_focal_and_fov_are_inverse():
    f = cam.focal_from_fov(60.0, 1920)
    assert f == pytest.approx(960.0 / np.tan(np.deg2rad(30.0)))
    assert cam.fov_from_focal(f, 1920) == pytest.approx(60.0)


def test_in_image_edges():
    size = np.array([640, 480])
    uv = np.array([[0.0, 0.0], [639.999, 479.999], [640.0, 10.0], [10.0, 480.0], [-0.001, 10.0], [10.0, -1e-3]])
    assert cam.in_image(uv, size).tolist() == [True, True, False, False, False, False]
    depth = np.array([1.0, 0.0, 1.0, 1.0, 1.0, -5.0])
    assert cam.in_image(uv[:2], size, depth[:2]).tolist() == [True, False]  # z <= 0 is never in the image
    # Per-sample sizes (N, 2) broadcast over the joints.
    sizes = np.array([[640, 480], [320, 240]])
    pts = np.array([[[400.0, 100.0]], [[400.0, 100.0]]])
    assert cam.in_image(pts, sizes).tolist() == [[True], [False]]


def test_right_view_in_camera_coordinates_and_pixels():
    p = np.array([[100.0, -50.0, 2000.0]])
    right = cam.right_view_points(p, 500.0)
    np.testing.assert_allclose(right, [[-400.0, -50.0, 2000.0]])  # (x - b, y, z)
    uv_right = cam.project_points(right, K_HAND)
    np.testing.assert_allclose(uv_right, [[370.0 - 1000.0 * 500.0 / 2000.0, 215.0]])  # u - fx b / z
    np.testing.assert_allclose(cam.right_view_u(np.array([370.0]), np.array([2000.0]), 1000.0, 500.0), [120.0])


def test_right_view_pixel_shift_equals_reprojection(rng):
    pts = rng.uniform([-800, -800, 1500], [800, 800, 6000], size=(50, 17, 3))
    K = cam.intrinsics_matrix(rng.uniform(500, 1500, 50), rng.uniform(500, 1500, 50), 320, 240)
    K[:, 0, 1] = 3.0  # skew does not change the shift
    b = rng.uniform(100, 900, 50)
    uv = cam.project_points(pts, K)
    expected = cam.project_points(cam.right_view_points(pts, b), K)
    u_right = cam.right_view_u(uv[..., 0], pts[..., 2], K[:, 0, 0, None], b[:, None])
    np.testing.assert_allclose(u_right, expected[..., 0], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(expected[..., 1], uv[..., 1])


def test_right_view_extrinsics_move_the_camera_by_the_baseline_along_its_x_axis(rng):
    R, t = cam.look_at(np.array([3000.0, 1000.0, 1600.0]), np.array([0.0, 0.0, 900.0]), 0.1)
    R_r, t_r = cam.right_view_extrinsics(R, t, 500.0)
    np.testing.assert_allclose(cam.camera_center(R_r, t_r) - cam.camera_center(R, t), 500.0 * R[0], atol=1e-9)
    world = rng.normal(size=(17, 3)) * 300
    np.testing.assert_allclose(cam.world_to_camera(world, R_r, t_r), cam.right_view_points(cam.world_to_camera(world, R, t), 500.0))


def test_look_at_from_the_x_axis_by_hand():
    d = 4000.0
    R, t = cam.look_at(np.array([d, 0.0, 0.0]), np.zeros(3))
    np.testing.assert_allclose(R[2], [-1.0, 0.0, 0.0], atol=1e-12)  # z (forward) = -x_world
    np.testing.assert_allclose(R[1], [0.0, 0.0, -1.0], atol=1e-12)  # y (down) = -z_world
    np.testing.assert_allclose(R[0], [0.0, 1.0, 0.0], atol=1e-12)  # x (right) = +y_world
    np.testing.assert_allclose(t, [0.0, 0.0, d], atol=1e-9)
    assert np.linalg.det(R) == pytest.approx(1.0)
    # A point above the target appears above the image centre, one at +y_world to its right.
    up, left = cam.project_points(cam.world_to_camera(np.array([[0, 0, 100.0], [0, 100.0, 0]]), R, t), K_HAND)
    assert up[1] < 240.0 and up[0] == pytest.approx(320.0)
    assert left[0] > 320.0 and left[1] == pytest.approx(240.0)


def test_roll_sign_turns_the_camera_clockwise_seen_from_behind():
    R, t = cam.look_at(np.array([4000.0, 0.0, 0.0]), np.zeros(3), roll_rad=np.deg2rad(90.0))
    # Rolled +90 degrees clockwise (seen from behind), the camera's x axis points down the world.
    np.testing.assert_allclose(R[0], [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(R[1], [0.0, -1.0, 0.0], atol=1e-12)
    # So the image content turns counter-clockwise: a point above the target moves to the left.
    R10, t10 = cam.look_at(np.array([4000.0, 0.0, 0.0]), np.zeros(3), roll_rad=np.deg2rad(10.0))
    up = cam.project_points(cam.world_to_camera(np.array([[0.0, 0.0, 500.0]]), R10, t10), K_HAND)[0]
    assert up[0] < 320.0 and up[1] < 240.0


def test_orbit_camera_equals_look_at(rng):
    n = 200
    target = rng.normal(size=(n, 3)) * 1000
    d, az = rng.uniform(500, 8000, n), rng.uniform(-np.pi, np.pi, n)
    el, roll = rng.uniform(-1.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)
    R, t = cam.orbit_camera(target, d, az, el, roll)
    offset = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=1)
    R2, t2 = cam.look_at(target + d[:, None] * offset, target, roll)
    np.testing.assert_allclose(R, R2, atol=1e-12)
    np.testing.assert_allclose(t, t2, atol=1e-8)
    # The target sits on the optical axis at depth d.
    np.testing.assert_allclose(cam.world_to_camera(target[:, None], R, t)[:, 0], np.stack([0 * d, 0 * d, d], 1), atol=1e-8)
    f32 = cam.orbit_rotation_components(az.astype(np.float32), el.astype(np.float32), roll.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(np.moveaxis(f32, (0, 1), (-2, -1)), R, atol=1e-6)


def test_world_camera_round_trip_and_centre(rng):
    R, t = cam.look_at(np.array([1000.0, -2000.0, 1500.0]), np.array([0.0, 0.0, 1000.0]), 0.2)
    world = rng.normal(size=(3, 17, 3)) * 500
    back = cam.camera_to_world(cam.world_to_camera(world, R, t), R, t)
    np.testing.assert_allclose(back, world, atol=1e-9)
    np.testing.assert_allclose(cam.camera_center(R, t), [1000.0, -2000.0, 1500.0], atol=1e-9)
    np.testing.assert_allclose(cam.world_to_camera(world, R, t), np.einsum("ij,nkj->nki", R, world) + t, atol=1e-9)


def test_backproject_inverts_project(rng):
    pts = rng.uniform([-900, -900, 800], [900, 900, 7000], size=(20, 17, 3))
    K = K_HAND.copy()
    K[0, 1] = 2.5
    uv = cam.project_points(pts, K)
    np.testing.assert_allclose(cam.backproject(uv, pts[..., 2], K), pts, rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(cam.project_points(cam.backproject(uv, pts[..., 2] * 0 + 3000, K), K), uv, atol=1e-8)


def test_distortion_by_hand():
    K = K_HAND
    p = np.array([[1000.0, 0.0, 2000.0]])  # xn = 0.5, yn = 0
    np.testing.assert_allclose(cam.project_points_distorted(p, K, None), cam.project_points(p, K))
    np.testing.assert_allclose(cam.project_points_distorted(p, K, np.zeros(5)), cam.project_points(p, K))
    uv = cam.project_points_distorted(p, K, np.array([0.1, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(uv, [[1000.0 * 0.5 * (1 + 0.1 * 0.25) + 320.0, 240.0]])  # radial 1 + k1 r^2


def test_camera_model_validates_at_the_boundary():
    good = dict(K=K_HAND.tolist(), image_size=(640, 480), R=np.eye(3).tolist(), t=[0.0, 0.0, 0.0])
    K, size, R, t = cam.CameraModel(**good).arrays()
    assert size.dtype == np.int32 and K.shape == (3, 3)
    for bad in (dict(K=[[1.0, 0.0], [0.0, 1.0]]), dict(image_size=(0, 480)), dict(t=[0.0, float("nan"), 0.0]), dict(dist=[0.1]), dict(extra=1)):
        with pytest.raises(ValidationError):
            cam.CameraModel(**{**good, **bad})
