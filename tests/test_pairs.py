"""The fast pair generator: geometry against the generic float64 path, determinism, bounded memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from generator import skeleton as sk
from generator.augment import BoneScaleConfig, mirror
from generator.camera import in_image, orbit_camera, project_points, right_view_points, world_to_camera
from generator.camera_sampler import CameraProfile, CameraRuleError, CameraSamplerConfig
from generator.pairs import PIPELINE_BUFFERS, BLOCK_SIZE, PairAugmentConfig, PairGenerator, PairsConfig, generate_pairs, load_pairs_config, write_pairs_file
from generator.pairs_io import Pairs, load_pairs
from generator.pairs_summary import summarize_pairs
from generator.poses import ClipInfo, PoseBank, load_pose_source
from generator.prior import PriorConfig, sample_prior_poses


@pytest.fixture(scope="module")
def bundled() -> PoseBank:
    return load_pose_source("bundled")


def _bank(*clips: tuple[str, np.ndarray]) -> PoseBank:
    joints = [np.asarray(j, dtype=np.float32).reshape(-1, 17, 3) for _, j in clips]
    return PoseBank(
        joints=np.concatenate(joints),
        clip_index=np.concatenate([np.full(len(j), i, np.int32) for i, j in enumerate(joints)]),
        frame_index=np.concatenate([np.arange(len(j), dtype=np.int32) for j in joints]),
        clips=[ClipInfo(name=name, subject=f"subject_{name}", action=f"action_{name}", path=name, fps=30.0) for name, _ in clips],
    )


def _standing_pose(seed: int = 0) -> np.ndarray:
    config = PriorConfig(crouch_fraction=0, lying_fraction=0, relaxed_fraction=1.0)
    return sample_prior_poses(np.random.default_rng(seed), 1, config)[0].astype(np.float64)


FIXED = CameraProfile(
    name="fixed", distance_mm=(3000, 3000), azimuth_deg=(30, 30), elevation_deg=(10, 10), roll_deg=(5, 5),
    fov_deg=(60, 60), image_sizes=[(1000, 800)],
)  # fmt: skip
PLAIN = PairAugmentConfig(mirror_probability=0.0, bone_scale=None)


def test_pairs_are_valid_and_self_consistent(bundled):
    pairs = generate_pairs(bundled, 20_000, seed=1)
    assert len(pairs) == 20_000
    assert pairs.joints_3d.dtype == np.float32 and pairs.K.shape == (20_000, 3, 3) and pairs.visibility.dtype == np.uint8
    assert pairs.baseline_mm.shape == () and float(pairs.baseline_mm) == 500.0
    from generator.pairs_io import validate_pairs

    validate_pairs(pairs.arrays())
    j3 = pairs.joints_3d.astype(np.float64)
    K = pairs.K.astype(np.float64)
    np.testing.assert_allclose(pairs.joints_2d, project_points(j3, K), rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(pairs.joints_2d_right, project_points(right_view_points(j3, 500.0), K), rtol=1e-5, atol=2e-3)
    inside = in_image(project_points(j3, K), pairs.image_size, j3[..., 2])
    assert (pairs.visibility == np.where(inside, 2, 0)).mean() > 0.9999  # float32 vs float64 at the edges
    assert set(np.unique(pairs.visibility)) <= {0, 2}  # no occlusion test without rendering
    # The rejection rule: at least 90 % of the joints (16 of 17) in the image, in every sample.
    assert ((pairs.visibility > 0).sum(axis=1) >= 16).all()
    # Bone lengths are preserved by the camera transform, up to the bone scaling: each pair's bones
    # are those of the bank pose it was drawn from (mirrored or not) times one height factor and
    # one factor per bone group, within their ranges.
    ratio = _bone_ratios(bundled, pairs, PairsConfig())
    scale = BoneScaleConfig()
    low, high = scale.height_range[0] * scale.group_range[0], scale.height_range[1] * scale.group_range[1]
    assert low - 1e-4 < ratio.min() and ratio.max() < high + 1e-4
    assert ratio.std() > 0.02  # the bodies do vary
    for left, right in sk.LEFT_RIGHT_PAIRS:  # a left bone and its right twin scale alike
        np.testing.assert_allclose(ratio[:, left - 1], ratio[:, right - 1], rtol=1e-4)
    assert set(np.unique(pairs.camera)) == {"h36m", "phone"}
    assert (pairs.image_size[pairs.camera == "h36m"] == [1000, 1000]).all()


def _bone_ratios(bank: PoseBank, pairs: Pairs, config: PairsConfig, seed: int = 1) -> np.ndarray:
    """Bone lengths (N, 16) of the first block of `pairs` (generated from `bank` with `config` and
    `seed`) over those of the bank poses they were drawn from (rows M.. are the mirrored poses)."""
    _, rows, _ = PairGenerator(bank, config, seed).block(0)
    poses = bank.joints.astype(np.float64)
    if config.augment.mirror_probability > 0:
        poses = np.concatenate([poses, mirror(poses)])
    n = min(len(pairs), BLOCK_SIZE)
    return sk.bone_lengths(pairs.joints_3d[:n].astype(np.float64))[:, 1:] / sk.bone_lengths(poses[rows[:n]])[:, 1:]


def test_the_camera_transform_keeps_every_bone_length(bundled):
    config = PairsConfig(augment=PLAIN)
    pairs = generate_pairs(bundled, BLOCK_SIZE, seed=1, config=config)
    np.testing.assert_allclose(_bone_ratios(bundled, pairs, config), 1.0, atol=1e-4)


@pytest.mark.parametrize("mirrored", [False, True])
def test_geometry_matches_the_generic_float64_path(mirrored):
    world = _standing_pose()
    config = PairsConfig(
        camera=CameraSamplerConfig(profiles=[FIXED]),
        augment=PairAugmentConfig(mirror_probability=1.0 if mirrored else 0.0, bone_scale=None),
    )
    pairs = generate_pairs(_bank(("one", world)), 100, seed=3, config=config)
    posed = mirror(world) if mirrored else world
    R, t = orbit_camera(posed[0], 3000.0, sk.facing_yaw(posed) + np.deg2rad(30.0), np.deg2rad(10.0), np.deg2rad(5.0))
    expected = world_to_camera(posed, R, t)
    np.testing.assert_allclose(pairs.joints_3d, np.broadcast_to(expected, (100, 17, 3)), atol=0.05)
    f = 500.0 / np.tan(np.deg2rad(30.0))  # 60 degrees across the longer side, 1000 px
    np.testing.assert_allclose(pairs.K[0], [[f, 0, 500], [0, f, 400], [0, 0, 1]], rtol=1e-6)
    np.testing.assert_allclose(pairs.joints_2d[0], project_points(expected, pairs.K[0].astype(np.float64)), atol=1e-2)
    # The camera looks at the pelvis from 3 m, in front of the person (azimuth 30 degrees off the facing).
    assert np.linalg.norm(pairs.joints_3d[0, 0]) == pytest.approx(3000.0, abs=0.05)
    nose_side = (pairs.joints_3d[0, 9] - pairs.joints_3d[0, 8])[2]
    assert nose_side < 0  # the nose points towards the camera


def test_bone_scaling_varies_bodies_within_the_configured_ranges():
    world = _standing_pose(1)
    scale = BoneScaleConfig()
    config = PairsConfig(camera=CameraSamplerConfig(profiles=[FIXED]), augment=PairAugmentConfig(mirror_probability=0, bone_scale=scale))
    pairs = generate_pairs(_bank(("one", world)), 5000, seed=4, config=config)
    ratio = sk.bone_lengths(pairs.joints_3d.astype(np.float64))[:, 1:] / sk.bone_lengths(world)[1:]
    low, high = scale.height_range[0] * scale.group_range[0], scale.height_range[1] * scale.group_range[1]
    assert ratio.min() > low - 1e-3 and ratio.max() < high + 1e-3
    assert ratio[:, 1].std() > 0.03  # thighs vary from body to body
    np.testing.assert_allclose(ratio[:, 1], ratio[:, 4], rtol=1e-4)  # left and right thigh alike (index = joint - 1)
    np.testing.assert_allclose(ratio[:, 11], ratio[:, 14], rtol=1e-4)  # upper arms


def test_provenance_strings_name_the_clip_each_pose_came_from():
    a = _standing_pose(2)
    b = sk.joints_from_bones(sk.bones_from_joints(a) * np.r_[1.0, np.full(16, 1.25)][:, None])  # a taller body
    config = PairsConfig(camera=CameraSamplerConfig(profiles=[FIXED]), augment=PLAIN)
    pairs = generate_pairs(_bank(("A", a[None].repeat(3, 0)), ("B", b)), 3000, seed=5, config=config)
    thigh = sk.bone_lengths(pairs.joints_3d.astype(np.float64))[:, 2]
    from_b = pairs.sequence == "B"
    assert 0.1 < from_b.mean() < 0.4  # 1 of 4 poses
    np.testing.assert_allclose(thigh[from_b], 1.25 * sk.bone_lengths(a)[2], rtol=1e-4)
    np.testing.assert_allclose(thigh[~from_b], sk.bone_lengths(a)[2], rtol=1e-4)
    assert (pairs.subject[from_b] == "subject_B").all() and (pairs.action[~from_b] == "action_A").all()
    assert (pairs.camera == "fixed").all()


def test_same_seed_same_bits_whatever_the_chunk_size(bundled, tmp_path):
    n = 3 * BLOCK_SIZE + 123
    reference = generate_pairs(bundled, n, seed=11)
    files = []
    for chunk in (BLOCK_SIZE, 2 * BLOCK_SIZE, 10_000):
        path = tmp_path / f"chunk_{chunk}.npz"
        write_pairs_file(path, bundled, n, seed=11, config=PairsConfig(chunk_size=chunk))
        files.append(path.read_bytes())
    assert files[0] == files[1] == files[2]  # bit for bit, header to central directory
    loaded = load_pairs(tmp_path / f"chunk_{BLOCK_SIZE}.npz")
    for key in ("joints_2d", "joints_3d", "joints_2d_right", "K", "image_size", "visibility", "subject", "sequence", "camera"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(reference, key), err_msg=key)
    # A shorter run is a prefix of a longer one; another seed gives other pairs.
    np.testing.assert_array_equal(generate_pairs(bundled, 5000, seed=11).joints_3d, reference.joints_3d[:5000])
    assert not np.array_equal(generate_pairs(bundled, 5000, seed=12).joints_3d, reference.joints_3d[:5000])


def test_memory_stays_bounded_by_the_chunk_not_the_output(bundled, tmp_path):
    config = PairsConfig(chunk_size=BLOCK_SIZE)
    peaks, sizes = [], []
    for n in (4 * BLOCK_SIZE, 24 * BLOCK_SIZE):
        path = tmp_path / f"{n}.npz"
        tracemalloc.start()
        try:
            stats = write_pairs_file(path, bundled, n, seed=0, config=config)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        sizes.append(path.stat().st_size)
        assert len(load_pairs(path, mmap=True)) == n
    assert sizes[1] > 150e6
    # Six times the pairs, the same peak: the pipeline's three chunk buffers and one block's temporaries.
    assert peaks[1] < peaks[0] + 2e6, f"peaks {peaks[0] / 1e6:.1f} MB and {peaks[1] / 1e6:.1f} MB"
    chunk_bytes = sizes[1] / 24
    assert peaks[1] < (PIPELINE_BUFFERS + 2) * chunk_bytes < sizes[1] / 4  # a block's temporaries: about a chunk of one block
    assert stats.samples >= n and stats.camera_draws > stats.samples and 0 < stats.camera_rejection_rate < 0.5


def test_poses_no_camera_can_frame_raise_a_clear_error():
    tight = CameraProfile(name="tight", distance_mm=(400, 400), elevation_deg=(0, 0), fov_deg=(30, 30), image_sizes=[(64, 64)])
    config = PairsConfig(camera=CameraSamplerConfig(profiles=[tight], min_in_frame_fraction=1.0, max_rounds=1), augment=PLAIN)
    with pytest.raises(CameraRuleError, match=r"camera rule cannot be met: 17 of 17 joints in the image \(camera.min_in_frame_fraction = 1\)"):
        generate_pairs(_bank(("one", _standing_pose())), 10, seed=0, config=config)


def test_config_yaml_round_trip_and_errors_name_the_key(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(
        "baseline_mm: 300\n"
        "augment: {mirror_probability: 0.25, bone_scale: null}\n"
        "camera:\n  min_in_frame_fraction: 0.8\n  profiles:\n"
        "    - {name: wide, distance_mm: [2000, 3000], elevation_deg: [0, 10], fov_deg: [70, 80], image_sizes: [[640, 480]]}\n"
    )
    config = load_pairs_config(good)
    assert config.baseline_mm == 300 and config.augment.bone_scale is None and config.camera.profiles[0].name == "wide"
    cases = {
        "camera:\n  profiles:\n    - {name: x, distance_mm: [1, 2], elevation_deg: [0, 1], fov_deg: [50, 60], image_sizes: [[4, 4]], zoom: 2}\n": "camera.profiles.0.zoom",
        "baseline_mm: 500\nseeed: 3\n": "seeed",
        "augment: {mirror_probability: 3}\n": "augment.mirror_probability",
        "- just\n- a list\n": "mapping",
        "camera: {min_in_frame_fraction: [1, 2}\n": "cannot read",
    }
    for i, (text, needle) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(ValueError, match=needle) as err:
            load_pairs_config(path)
        assert str(path) in str(err.value)


def test_the_config_example_in_the_conventions_parses(tmp_path):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "conventions.md").read_text()
    section = doc[doc.index("## Keypoint pairs") :]
    example = section[section.index("```yaml") + len("```yaml") : section.index("```", section.index("```yaml") + 3)]
    path = tmp_path / "example.yaml"
    path.write_text(example)
    config = load_pairs_config(path)
    assert config.camera.profiles[0].name == "h36m" and config.chunk_size == PairsConfig().chunk_size
    assert config.augment.bone_scale == BoneScaleConfig()


def test_summary_by_hand():
    n = 4
    j3 = np.zeros((n, 17, 3), np.float32)
    j3[..., 2] = 1000.0
    j3[:, 0] = [[0, 0, 1000], [0, 0, 2000], [0, 3000, 4000], [0, 0, 4000]]  # pelvis distances 1, 2, 5, 4 m
    vis = np.full((n, 17), 2, np.uint8)
    vis[0, :2] = 0
    pairs = Pairs(
        joints_2d=np.zeros((n, 17, 2), np.float32), joints_3d=j3,
        K=np.repeat(np.diag([800.0, 800.0, 1.0]).astype(np.float32)[None], n, 0), image_size=np.array([[640, 480]] * 3 + [[100, 100]], np.int32),
        visibility=vis, camera=np.array(["a", "b", "a", "a"]),
    )  # fmt: skip
    s = summarize_pairs(pairs)
    assert s.samples == 4
    assert s.distance_percentiles_mm == {"p1": 1000.0, "p5": 1000.0, "p50": 2000.0, "p95": 5000.0, "p99": 5000.0}  # nearest rank
    assert s.joints_in_frame == pytest.approx(1 - 2 / 68)
    assert s.samples_fully_in_frame == pytest.approx(0.75)
    assert s.cameras == {"a": 3, "b": 1}
    assert s.image_sizes == {"640x480": 3, "100x100": 1}
    assert s.focal_percentiles_px["p1"] == pytest.approx(800.0)
    # Without visibility, the in-image test decides: every 2D point at (0, 0) with z > 0 is inside.
    pairs.visibility = None
    assert summarize_pairs(pairs).joints_in_frame == 1.0


def test_summary_while_writing_equals_the_summary_of_the_file(bundled, tmp_path):
    from generator.pairs_summary import SummaryAccumulator

    acc = SummaryAccumulator()
    stats = write_pairs_file(tmp_path / "p.npz", bundled, 3 * BLOCK_SIZE - 5, seed=2, config=PairsConfig(chunk_size=BLOCK_SIZE), on_chunk=acc.add)
    streamed = acc.result(stats)
    from_file = summarize_pairs(load_pairs(tmp_path / "p.npz", mmap=True), stats)
    assert streamed == from_file
    assert streamed.samples == 3 * BLOCK_SIZE - 5 and sum(streamed.cameras.values()) == streamed.samples
    distances = np.linalg.norm(load_pairs(tmp_path / "p.npz").joints_3d[:, 0].astype(np.float64), axis=1)
    for p in (5, 50, 95):  # nearest rank on 1 mm bins: within a millimetre of numpy's interpolation
        assert streamed.distance_percentiles_mm[f"p{p}"] == pytest.approx(np.percentile(distances, p), abs=1.0)


def test_pairs_without_provenance_strings(bundled, tmp_path):
    config = PairsConfig(provenance=False)
    write_pairs_file(tmp_path / "p.npz", bundled, 1000, seed=4, config=config)
    pairs = load_pairs(tmp_path / "p.npz")
    assert pairs.subject is None and pairs.camera is None
    np.testing.assert_array_equal(pairs.joints_3d, generate_pairs(bundled, 1000, seed=4).joints_3d)  # same geometry
