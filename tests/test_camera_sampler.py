"""The random camera sampler: its ranges, its facing-relative azimuth and the rejection rule."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator import camera_sampler as cs
from generator.camera import camera_center, fov_from_focal
from generator.prior import PriorConfig, sample_prior_poses


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_drawn_parameters_stay_within_each_profiles_ranges(dtype):
    config = cs.CameraSamplerConfig()
    params = cs.draw_camera_params(np.random.default_rng(0), 20_000, cs.CameraTables(config, dtype))
    assert params.distance.dtype == dtype and params.look_at_offset.shape == (3, 20_000)
    deg = np.rad2deg
    tol = 1e-3
    for i, profile in enumerate(config.profiles):
        m = params.profile == i
        assert m.sum() > 8000  # weights 1:1
        for value, (low, high) in (
            (params.distance[m], profile.distance_mm),
            (deg(params.azimuth[m]), profile.azimuth_deg),
            (deg(params.elevation[m]), profile.elevation_deg),
            (deg(params.roll[m]), profile.roll_deg),
        ):
            assert value.min() >= low - tol * max(1, abs(low)) and value.max() <= high + tol * max(1, abs(high))
            assert value.max() - value.min() > 0.95 * (high - low)  # the whole range is used
        sizes = {tuple(s) for s in params.image_size[m].tolist()}
        assert sizes == {tuple(s) for s in profile.image_sizes}
        long_side = params.image_size[m].max(axis=1)
        fov = fov_from_focal(params.focal[m].astype(np.float64), long_side)
        assert fov.min() >= profile.fov_deg[0] - 1e-3 and fov.max() <= profile.fov_deg[1] + 1e-3
        w, h = params.image_size[m, 0], params.image_size[m, 1]
        j = profile.principal_point_jitter
        assert np.all(np.abs(params.cx[m] - w / 2) <= j * w + 1e-3) and np.all(np.abs(params.cy[m] - h / 2) <= j * h + 1e-3)
        assert np.std(params.look_at_offset[:, m]) == pytest.approx(profile.look_at_jitter_mm, rel=0.05)


def test_profile_weights_and_focal_length_profiles():
    config = cs.CameraSamplerConfig(
        profiles=[
            cs.CameraProfile(name="a", weight=3.0, distance_mm=(1000, 2000), elevation_deg=(0, 0), focal_px=(800, 900), image_sizes=[(640, 480)]),
            cs.CameraProfile(name="b", weight=1.0, distance_mm=(1000, 2000), elevation_deg=(0, 0), fov_deg=(50, 50), image_sizes=[(640, 480)]),
        ]
    )
    params = cs.draw_camera_params(np.random.default_rng(1), 40_000, cs.CameraTables(config))
    a = params.profile == 0
    assert a.mean() == pytest.approx(0.75, abs=0.01)
    assert params.focal[a].min() >= 800 and params.focal[a].max() <= 900
    np.testing.assert_allclose(params.focal[~a], 320.0 / np.tan(np.deg2rad(25.0)))


def test_sampled_cameras_sit_at_the_drawn_distance_and_elevation():
    config = cs.CameraSamplerConfig()
    n = 5000
    target = np.random.default_rng(2).normal(size=(n, 3)) * 1000
    cams = cs.sample_cameras(np.random.default_rng(3), target, config)
    # Re-draw the same parameters: same generator state, same draw order.
    params = cs.draw_camera_params(np.random.default_rng(3), n, cs.CameraTables(config))
    look_at = target + params.look_at_offset.T
    offset = camera_center(cams.R, cams.t) - look_at
    np.testing.assert_allclose(np.linalg.norm(offset, axis=1), params.distance, rtol=1e-9)
    np.testing.assert_allclose(np.arcsin(offset[:, 2] / params.distance), params.elevation, atol=1e-9)
    np.testing.assert_allclose(cams.R[:, 2], -offset / params.distance[:, None], atol=1e-9)  # looking at it
    np.testing.assert_array_equal(cams.profile, params.profile)


def test_azimuth_is_measured_from_the_persons_facing():
    profile = cs.CameraProfile(name="front", distance_mm=(3000, 3000), azimuth_deg=(0, 0), elevation_deg=(0, 0), fov_deg=(60, 60), image_sizes=[(1000, 1000)])
    config = cs.CameraSamplerConfig(profiles=[profile])
    poses = sample_prior_poses(np.random.default_rng(4), 200, PriorConfig(yaw_deg=(90, 90), lying_fraction=0, crouch_fraction=0))
    cams, accepted = cs.sample_cameras_for_poses(np.random.default_rng(5), poses, config)
    to_camera = camera_center(cams.R, cams.t) - poses[:, 0]
    # Facing +y (yaw 90 degrees, up to the hip/shoulder twist of the pose): the camera is in front.
    assert np.median(to_camera[:, 1] / np.linalg.norm(to_camera[:, :2], axis=1)) > 0.95


def test_min_in_frame_count_by_hand():
    count = lambda f: cs.min_in_frame_count(cs.CameraSamplerConfig(min_in_frame_fraction=f))  # noqa: E731
    assert count(0.9) == 16  # 15/17 = 0.88 < 0.9 <= 16/17
    assert count(1.0) == 17
    assert count(0.0) == 0
    assert count(15 / 17) == 15


def test_rejection_rule_is_honoured():
    poses = sample_prior_poses(np.random.default_rng(6), 3000)
    config = cs.CameraSamplerConfig(min_in_frame_fraction=1.0, max_rounds=5)
    cams, accepted = cs.sample_cameras_for_poses(np.random.default_rng(7), poses, config)
    counts = cs.in_frame_count(poses, cams)
    assert (counts[accepted] == 17).all()
    assert (counts[~accepted] < 17).all()
    assert 0.5 < accepted.mean() <= 1.0
    # One draw only, fewer accepted: the redraws are what rescue the rest.
    _, once = cs.sample_cameras_for_poses(np.random.default_rng(7), poses, config.model_copy(update={"max_rounds": 1}))
    assert once.mean() < accepted.mean()
    # Cameras closer than the person is tall cannot frame every joint.
    close = cs.CameraProfile(name="close", distance_mm=(300, 300), elevation_deg=(0, 0), fov_deg=(40, 40), image_sizes=[(100, 100)])
    _, none = cs.sample_cameras_for_poses(np.random.default_rng(8), poses[:50], cs.CameraSamplerConfig(profiles=[close], min_in_frame_fraction=1.0, max_rounds=3))
    assert not none.any()


def test_with_image_size_keeps_fov_ranges():
    config = cs.CameraSamplerConfig().with_image_size(640, 480)
    assert all(p.image_sizes == [(640, 480)] for p in config.profiles)
    assert [p.fov_deg for p in config.profiles] == [p.fov_deg for p in cs.CameraSamplerConfig().profiles]


def test_same_seed_same_cameras():
    target = np.zeros((100, 3))
    a = cs.sample_cameras(np.random.default_rng(9), target, cs.CameraSamplerConfig())
    b = cs.sample_cameras(np.random.default_rng(9), target, cs.CameraSamplerConfig())
    np.testing.assert_array_equal(a.R, b.R)
    np.testing.assert_array_equal(a.K, b.K)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(distance_mm=(5000, 3000)), "distance_mm low"),
        (dict(fov_deg=None), "exactly one of fov_deg and focal_px"),
        (dict(focal_px=(800, 900)), "exactly one of fov_deg and focal_px"),
        (dict(elevation_deg=(0, 95)), "elevation_deg"),
        (dict(image_sizes=[]), "image_sizes"),
        (dict(distance_mm=(0, 10)), "distance_mm must be positive"),
        (dict(colour="red"), "colour"),
    ],
)
def test_profile_validation_names_the_problem(bad, message):
    good = dict(name="p", distance_mm=(1000, 2000), elevation_deg=(0, 10), fov_deg=(50, 60), image_sizes=[(640, 480)])
    with pytest.raises(ValidationError, match=message):
        cs.CameraProfile(**{**good, **bad})


def test_cameras_stay_above_the_floor():
    """Low elevations at long distances would put the phone camera under the ground; the rule redraws them."""
    poses = sample_prior_poses(np.random.default_rng(3), 3000)
    phone = cs.CameraSamplerConfig(profiles=[cs.PHONE_PROFILE], min_in_frame_fraction=0.0)
    free = phone.model_copy(update={"min_camera_height_mm": None})

    cams, ok = cs.sample_cameras_for_poses(np.random.default_rng(0), poses, free)
    height = camera_center(cams.R, cams.t)[:, 2] - poses[..., 2].min(axis=1)
    assert ok.all() and (height < 0).sum() > 50  # without the rule, many cameras are underground

    cams, ok = cs.sample_cameras_for_poses(np.random.default_rng(0), poses, phone)
    height = camera_center(cams.R, cams.t)[:, 2] - poses[..., 2].min(axis=1)
    assert ok.all()
    assert height.min() >= phone.min_camera_height_mm - 1e-6


def test_pair_generator_honours_the_floor_rule():
    """Pairs keep no world frame, so check through a rule no camera can meet: every block must fail."""
    from generator.pairs import PairsConfig, generate_pairs
    from generator.poses import ClipInfo, PoseBank

    poses = sample_prior_poses(np.random.default_rng(1), 64)
    bank = PoseBank(poses, np.zeros(64, np.int32), np.arange(64, dtype=np.int32), [ClipInfo("p", "p", "p", "prior", 0)])
    camera = cs.CameraSamplerConfig(min_camera_height_mm=1e6, max_rounds=2)
    with pytest.raises(cs.CameraRuleError, match="camera at least 1e[+]06 mm above the lowest joint"):
        generate_pairs(bank, 10, 0, PairsConfig(camera=camera))


def test_crop_framing_fills_the_frame_with_the_person():
    """The crop profile's person spans most of the image and sits in its middle; wide shots don't."""
    from generator.camera import project_points, world_to_camera
    from generator.camera_sampler import CROP_PROFILE, H36M_PROFILE, SUBJECT_MARGIN, CameraSamplerConfig, sample_cameras_for_poses
    from generator.poses import load_pose_source

    poses = load_pose_source("bundled").joints[::40].astype(np.float64)
    rng = np.random.default_rng(0)
    spans = {}
    for profile in (CROP_PROFILE, H36M_PROFILE.model_copy(update={"image_sizes": [(256, 256)]})):
        config = CameraSamplerConfig(profiles=[profile])
        cams, accepted = sample_cameras_for_poses(rng, poses, config)
        assert accepted.mean() > 0.95
        uv = project_points(world_to_camera(poses, cams.R, cams.t), cams.K)
        lo, hi = uv.min(axis=1), uv.max(axis=1)
        spans[profile.name] = np.linalg.norm(hi - lo, axis=1) / 256.0
        if profile.name == "crop":
            centre = 0.5 * (lo + hi)
            assert np.abs(centre - cams.K[:, :2, 2]).max() < 0.2 * 256
    # The joint box's diagonal spans fill / SUBJECT_MARGIN of the short side (perspective aside).
    assert 0.6 / SUBJECT_MARGIN * 0.8 < np.median(spans["crop"]) < 0.95 / SUBJECT_MARGIN * 1.2
    assert np.median(spans["h36m"]) < 0.7 * np.median(spans["crop"])
