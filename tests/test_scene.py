"""The built-in player's scene sampler: determinism, ranges, provenance and ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator.camera import camera_center, project_points, right_view_extrinsics, world_to_camera
from generator.camera_sampler import CameraProfile, CameraRuleError, CameraSamplerConfig
from generator.poses import PRIOR, ClipInfo, PoseBank, load_pose_source
from generator.scene import (
    BACKGROUND_KINDS,
    NEAR_CLEARANCE_MM,
    THICKNESS_GROUPS,
    SceneConfig,
    hsv_to_rgb,
    sample_scene,
    scene_ground_truth,
)
from generator.skeleton import JOINT_INDEX, LEFT_JOINTS, RIGHT_JOINTS

J = JOINT_INDEX


def standing_pose() -> np.ndarray:
    """A hand-made h36m17 pose (mm, world z up, floor at 0) facing +x, its left towards +y.

    Asymmetric on purpose: the left arm is raised sideways, the right one hangs down.
    """
    p = np.zeros((17, 3))
    p[J["Hip"]] = [0, 0, 950]
    p[J["RHip"]], p[J["RKnee"]], p[J["RFoot"]] = [0, -130, 950], [10, -125, 510], [0, -120, 90]
    p[J["LHip"]], p[J["LKnee"]], p[J["LFoot"]] = [0, 130, 950], [10, 125, 510], [0, 120, 90]
    p[J["Spine"]], p[J["Thorax"]] = [0, 0, 1180], [0, 0, 1430]
    p[J["Neck/Nose"]], p[J["Head"]] = [40, 0, 1545], [0, 0, 1660]
    p[J["LShoulder"]], p[J["LElbow"]], p[J["LWrist"]] = [0, 150, 1410], [0, 420, 1440], [0, 660, 1470]
    p[J["RShoulder"]], p[J["RElbow"]], p[J["RWrist"]] = [0, -150, 1410], [0, -215, 1140], [20, -245, 900]
    return p


def make_bank(poses: np.ndarray, path: str = "handmade.bvh") -> PoseBank:
    """A bank with one clip holding `poses` (M, 17, 3)."""
    poses = np.asarray(poses, dtype=np.float32).reshape(-1, 17, 3)
    return PoseBank(
        joints=poses,
        clip_index=np.zeros(len(poses), np.int32),
        frame_index=np.arange(len(poses), dtype=np.int32),
        clips=[ClipInfo(name="stand", subject="s1", action="stand", path=path, fps=30.0)],
    )


@pytest.fixture(scope="module")
def bank() -> PoseBank:
    return load_pose_source("bundled")


def _scene_arrays(scene) -> list[np.ndarray]:
    if scene.human is None:
        figure = [scene.body.thickness, scene.body.colors]
    else:
        c = scene.human.clothing
        figure = [scene.human.pose.rotations, scene.human.pose.translations, np.array([scene.human.identity, c.sleeve_end, c.leg_end]), c.skin, c.top]
    return [
        scene.joints_world,
        scene.K,
        scene.R,
        scene.t,
        *figure,
        scene.lighting.direction,
        scene.lighting.color,
        scene.lighting.sky,
        scene.background.colors,
        scene.background.offset,
        scene.occluders.center,
        scene.occluders.axes,
    ]


@pytest.mark.parametrize("figure", ["human", "mannequin"])
def test_same_seed_and_frame_give_the_same_scene_bit_for_bit(bank, figure):
    config = SceneConfig(body_model=figure, human={"identities": 8})
    a = sample_scene(config, bank, seed=5, frame_id=17)
    # Sampling other frames in between must not matter: a frame depends on (seed, frame_id) only.
    for f in range(5):
        sample_scene(config, bank, seed=5, frame_id=f)
    b = sample_scene(SceneConfig.model_validate(config.model_dump()), bank, seed=5, frame_id=17)
    for x, y in zip(_scene_arrays(a), _scene_arrays(b)):
        assert x.tobytes() == y.tobytes()
    assert a.source == b.source and a.background.kind == b.background.kind and (a.body is None or a.body.sleeve == b.body.sleeve)
    ga, gb = scene_ground_truth(a), scene_ground_truth(b)
    assert ga.joints_2d.tobytes() == gb.joints_2d.tobytes() and ga.joints_3d.tobytes() == gb.joints_3d.tobytes()
    c = sample_scene(config, bank, seed=5, frame_id=18)
    d = sample_scene(config, bank, seed=6, frame_id=17)
    assert not np.array_equal(a.joints_world, c.joints_world) and not np.array_equal(a.K, d.K)


def test_ranges_over_many_scenes(bank):
    config = SceneConfig(body_model="mannequin", image_size=(320, 240))
    scenes = [sample_scene(config, bank, seed=3, frame_id=f) for f in range(300)]
    body, light, bg, occ = config.body, config.lighting, config.background, config.occluders

    for s in scenes:
        assert s.image_size == (320, 240) and s.baseline_mm == 500.0
        gt = scene_ground_truth(s)
        assert gt.in_image.mean() >= config.camera.min_in_frame_fraction  # the camera rule held
        # Principal point within the profiles' jitter (at most 4 %, the crop profile's) of the centre of this size.
        assert abs(s.K[0, 2] - 160) <= 0.04 * 320 + 1e-9 and abs(s.K[1, 2] - 120) <= 0.04 * 240 + 1e-9
        lo, hi = body.girth[0] * (1 - body.group_jitter), body.girth[1] * (1 + body.group_jitter)
        assert s.body.thickness.shape == (len(THICKNESS_GROUPS),) and np.all((s.body.thickness >= lo) & (s.body.thickness <= hi))
        assert np.all((s.body.colors >= 0) & (s.body.colors <= 1))
        elevation = np.rad2deg(np.arcsin(s.lighting.direction[2]))
        assert light.elevation_deg[0] - 1e-9 <= elevation <= light.elevation_deg[1] + 1e-9
        assert np.isclose(np.linalg.norm(s.lighting.direction), 1.0)
        assert s.background.kind in ("solid", "gradient", "noise")  # no photo_dir: no photos
        assert bg.noise_cell_px[0] <= s.background.cell_px <= bg.noise_cell_px[1]
        assert bg.photo_crop_scale[0] <= s.background.crop_scale <= bg.photo_crop_scale[1]
        if len(s.occluders):
            assert occ.count[0] <= len(s.occluders) <= occ.count[1]
            # Every occluder's bounding sphere stays clear of the camera.
            radius = np.linalg.norm(s.occluders.axes, axis=(1, 2))  # Frobenius = |half extents|
            dist = np.linalg.norm(s.occluders.center - camera_center(s.R, s.t), axis=1)
            assert np.all(dist - radius >= NEAR_CLEARANCE_MM - 1e-6)
        assert s.source["kind"] == "clip" and s.source["clip"] in {c.name for c in bank.clips}

    kinds = [s.background.kind for s in scenes]
    # Weights 1:1:2 over 300 draws: noise about half of them.
    assert 0.35 < kinds.count("noise") / len(kinds) < 0.65
    has_occluders = np.mean([len(s.occluders) > 0 for s in scenes])
    assert abs(has_occluders - occ.probability) < 0.1
    assert {s.camera_profile for s in scenes} == {"h36m", "phone", "crop"}
    assert {s.body.sleeve for s in scenes} == {"none", "short", "long"}
    mirrored = np.mean([s.source["mirrored"] for s in scenes])
    assert abs(mirrored - body.mirror_probability) < 0.1
    # The light comes from the camera's side (within +-120 degrees of azimuth).
    for s in scenes[:50]:
        to_cam = camera_center(s.R, s.t)[:2] - s.joints_world[0, :2]
        cos = np.dot(to_cam / np.linalg.norm(to_cam), s.lighting.direction[:2] / np.linalg.norm(s.lighting.direction[:2]))
        assert cos >= np.cos(np.deg2rad(120.0)) - 1e-6


def test_photo_backgrounds_only_with_a_photo_dir(bank, tmp_path):
    config = SceneConfig(body_model="mannequin", background={"weights": {"photo": 1.0, "solid": 1.0}, "photo_dir": tmp_path})
    kinds = {sample_scene(config, bank, 1, f).background.kind for f in range(40)}
    assert kinds == {"photo", "solid"}
    no_dir = SceneConfig(body_model="mannequin", background={"weights": {"photo": 1.0, "solid": 1.0}})
    assert {sample_scene(no_dir, bank, 1, f).background.kind for f in range(20)} == {"solid"}
    assert set(BACKGROUND_KINDS) == {"solid", "gradient", "noise", "photo"}


def test_occluders_obey_their_config(bank):
    config = SceneConfig(body_model="mannequin", occluders={"probability": 1.0, "count": (2, 3), "weights": {"cylinder": 1.0}})
    for f in range(30):
        occ = sample_scene(config, bank, 2, f).occluders
        assert 2 <= len(occ) <= 3 and np.all(occ.kind == 1)
        # Cylinders have a round cross-section: equal first two half extents.
        ext = np.linalg.norm(occ.axes, axis=1)
        assert np.allclose(ext[:, 0], ext[:, 1])
    none = SceneConfig(body_model="mannequin", occluders={"probability": 0.0})
    assert all(len(sample_scene(none, bank, 2, f).occluders) == 0 for f in range(10))


def test_ground_truth_is_the_camera_math_of_the_scene(bank):
    scene = sample_scene(SceneConfig(body_model="mannequin", baseline_mm=350.0), bank, seed=9, frame_id=4)
    gt = scene_ground_truth(scene)
    cam = scene.joints_world @ scene.R.T + scene.t  # X_cam = R X_world + t, written out
    np.testing.assert_allclose(gt.joints_3d, cam, rtol=0, atol=1e-9)
    u = scene.K[0, 0] * cam[:, 0] / cam[:, 2] + scene.K[0, 2]
    v = scene.K[1, 1] * cam[:, 1] / cam[:, 2] + scene.K[1, 2]
    np.testing.assert_allclose(gt.joints_2d, np.stack([u, v], axis=1), atol=1e-9)
    # The right view: camera-frame x minus the baseline, or equivalently a second camera.
    np.testing.assert_allclose(gt.joints_2d_right[:, 0], scene.K[0, 0] * (cam[:, 0] - 350.0) / cam[:, 2] + scene.K[0, 2], atol=1e-9)
    R2, t2 = right_view_extrinsics(scene.R, scene.t, 350.0)
    np.testing.assert_allclose(gt.joints_2d_right, project_points(world_to_camera(scene.joints_world, R2, t2), scene.K), atol=1e-9)
    np.testing.assert_array_equal(gt.joints_3d_world, scene.joints_world)
    w, h = scene.image_size
    expected = (u >= 0) & (u < w) & (v >= 0) & (v < h) & (cam[:, 2] > 0)
    np.testing.assert_array_equal(gt.in_image, expected)


def test_source_provenance_and_mirroring():
    pose = standing_pose()
    config = SceneConfig(body_model="mannequin", body={"mirror_probability": 1.0, "bone_scale": None})
    scene = sample_scene(config, make_bank(pose[None]), seed=0, frame_id=0)
    assert scene.source == {"kind": "clip", "clip": "stand", "frame": 0, "subject": "s1", "action": "stand", "mirrored": True}
    # Mirrored: the raised arm is now the right one, heights unchanged.
    for left, right in zip(LEFT_JOINTS, RIGHT_JOINTS):
        assert scene.joints_world[right, 2] == pytest.approx(pose[left, 2])
    assert scene.joints_world[J["RWrist"], 2] > scene.joints_world[J["LWrist"], 2]
    prior = make_bank(pose[None], path=PRIOR)
    assert sample_scene(SceneConfig(body_model="mannequin"), prior, 0, 0).source["kind"] == "prior"


def test_bone_scale_varies_limb_lengths_and_keeps_the_floor():
    pose = standing_pose()
    bank = make_bank(pose[None])
    config = SceneConfig(body_model="mannequin", body={"mirror_probability": 0.0})
    heights = [sample_scene(config, bank, 0, f).joints_world[J["Head"], 2] for f in range(20)]
    assert np.std(heights) > 10.0  # the stature varies
    s = sample_scene(config, bank, 0, 0)
    assert s.joints_world[:, 2].min() == pytest.approx(pose[:, 2].min())
    fixed = SceneConfig(body_model="mannequin", body={"mirror_probability": 0.0, "bone_scale": None})
    np.testing.assert_allclose(sample_scene(fixed, bank, 0, 3).joints_world, pose, atol=1e-4)


def test_a_pose_the_cameras_cannot_frame_is_reported():
    # A 10 m tall pose seen from 1 m through a 20 degree lens never fits in the image.
    huge = standing_pose() * 6.0
    profile = CameraProfile(name="close", distance_mm=(1000.0, 1000.0), elevation_deg=(0.0, 0.0), fov_deg=(20.0, 20.0), image_sizes=[(64, 64)])
    config = SceneConfig(body_model="mannequin", camera=CameraSamplerConfig(profiles=[profile], min_in_frame_fraction=1.0, max_rounds=2), pose_attempts=3)
    with pytest.raises(CameraRuleError, match=r"no pose out of 3 could be framed .*17 of 17 joints in the image"):
        sample_scene(config, make_bank(huge[None]), 0, 0)
    with pytest.raises(ValueError, match="empty"):
        sample_scene(SceneConfig(body_model="mannequin"), make_bank(np.zeros((0, 17, 3))), 0, 0)


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"body": {"girth": (1.3, 1.0)}}, "girth"),
        ({"lighting": {"elevation_deg": (10.0, 100.0)}}, "elevation_deg"),
        ({"background": {"weights": {"sky": 1.0}}}, "unknown background kinds"),
        ({"background": {"weights": {"photo": 1.0}}}, "photo needs photo_dir"),
        ({"occluders": {"count": (3, 1)}}, "count"),
        ({"occluders": {"weights": {"sphere": 1.0}}}, "unknown occluder kinds"),
        ({"image_size": (0, 256)}, "image_size"),
        ({"lighting": {"brightness": 2.0}}, "brightness"),
    ],
)
def test_bad_config_names_the_problem(bad, where):
    with pytest.raises(ValidationError, match=where):
        SceneConfig.model_validate(bad)


def test_camera_sizes_follow_the_image_size():
    config = SceneConfig(body_model="mannequin", image_size=(200, 100))
    assert all(p.image_sizes == [(200, 100)] for p in config.render_camera.profiles)
    fov = [p.fov_deg for p in config.render_camera.profiles]
    assert fov == [p.fov_deg for p in config.camera.profiles]
    bigger = config.model_copy(update={"image_size": (640, 480)})
    assert all(p.image_sizes == [(640, 480)] for p in bigger.render_camera.profiles)


def test_hsv_to_rgb_primaries():
    hsv = np.array([[0.0, 1.0, 1.0], [1 / 3, 1.0, 1.0], [2 / 3, 1.0, 1.0], [0.5, 0.0, 0.4]])
    np.testing.assert_allclose(hsv_to_rgb(hsv), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.4, 0.4, 0.4]], atol=1e-12)
