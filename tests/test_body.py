"""The human body: retargeting, constant bone lengths, skinning equal to Anny's own, the GPU's
skinning equal to the CPU's, the person mask against the keypoints, self-occlusion from the
mesh, determinism, and the identity distributions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from generator.body import load_body_model, pose_body, posed_joints, skin_points
from generator.body.model import _anny
from generator.body.pool import BodyPool
from generator.body.rig import SEGMENT_PIVOT_BONE
from generator.body.sampling import HumanConfig, sample_phenotypes
from generator.camera import intrinsics_from_fov, look_at, project_points, world_to_camera
from generator.poses import load_pose_source
from generator.render import HumanRenderer
from generator.scene import Occluders, SceneConfig, sample_scene, scene_ground_truth
from generator.skeleton import JOINT_INDEX, PARENTS, facing_yaw
from test_render import solid

pytestmark = pytest.mark.timeout(180)

J = JOINT_INDEX
SMALL = HumanConfig(identities=6, identity_seed=3)
LIMBS = [(J[a], J[b]) for a, b in (("RHip", "RKnee"), ("RKnee", "RFoot"), ("LHip", "LKnee"), ("LKnee", "LFoot"),
                                    ("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"))]


@pytest.fixture(scope="module")
def bank():
    return load_pose_source("bundled", seed=0)


@pytest.fixture(scope="module")
def pool():
    return BodyPool.for_config(SMALL)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_retargeting_points_every_limb_along_the_pose(bank, pool):
    rows = np.random.default_rng(0).choice(len(bank), 60, replace=False)
    for i, row in enumerate(rows):
        target = bank.joints[row].astype(np.float64)
        rig = pool.rigs[i % len(pool)]
        body = posed_joints(rig, pose_body(rig, target))
        np.testing.assert_allclose(body[J["Hip"]], target[J["Hip"]], atol=1e-6)
        for a, b in LIMBS:
            cos = float(_unit(body[b] - body[a]) @ _unit(target[b] - target[a]))
            assert cos > 1 - 1e-9, (row, a, b, cos)
        # The torso faces where the pose faces.
        assert abs(np.angle(np.exp(1j * (facing_yaw(body[None])[0] - facing_yaw(target[None])[0])))) < np.radians(10)


def test_bone_lengths_stay_constant_for_an_identity(bank, pool):
    rig = pool.rigs[0]
    rows = np.random.default_rng(1).choice(len(bank), 80, replace=False)
    joints = np.stack([posed_joints(rig, pose_body(rig, bank.joints[r].astype(np.float64))) for r in rows])
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, PARENTS[1:]], axis=-1)  # (frames, 16)
    rest = rig.rest_joints()
    rest_lengths = np.linalg.norm(rest[1:] - rest[PARENTS[1:]], axis=-1)
    # Every bone whose ends ride on rigid segments keeps its rest length exactly ...
    rigid = [c - 1 for c in range(1, 17) if c not in (J["Spine"], J["Thorax"], J["Neck/Nose"], J["Head"])]
    np.testing.assert_allclose(lengths[:, rigid], np.broadcast_to(rest_lengths[rigid], lengths[:, rigid].shape), rtol=1e-9)
    # ... the head rides on one segment too, and the spine and neck bones, chords across bending
    # segments, shorten a little as the back or neck bends (at most 11 % and 5 % on these poses).
    flex = [c - 1 for c in (J["Spine"], J["Thorax"], J["Neck/Nose"], J["Head"])]
    change = np.abs(lengths[:, flex] / rest_lengths[flex] - 1).max(axis=0)
    assert change[3] < 1e-9 and change.max() < 0.15, change
    # Different bodies do have different bones.
    other = np.linalg.norm(pool.rigs[1].rest_joints()[1:] - pool.rigs[1].rest_joints()[PARENTS[1:]], axis=-1)
    assert np.abs(other - rest_lengths).max() > 10.0


def _anny_world_bone_poses(pool, identity: int, pose) -> tuple[torch.Tensor, torch.Tensor]:
    """Anny's rest bone poses of an identity and the world bone poses our segment motions give (metres)."""
    model = _anny()
    phenotype = torch.as_tensor(pool.identities.phenotype[identity : identity + 1])
    empty = phenotype.new_zeros((1, 0))
    coeffs = model._get_phenotype_blendshape_coefficients(phenotype, empty, empty)
    rest = model.get_rest_model(coeffs)["rest_bone_poses"][0].numpy()  # (B, 4, 4), metres
    seg = pool.model.segment_of_bone
    world = np.tile(np.eye(4), (len(seg), 1, 1))
    world[:, :3, :3] = pose.rotations[seg] @ rest[:, :3, :3]
    world[:, :3, 3] = (np.einsum("bij,bj->bi", pose.rotations[seg], rest[:, :3, 3] * 1000.0) + pose.translations[seg]) / 1000.0
    return coeffs, torch.as_tensor(world[None])


def test_our_skinning_is_annys_own(bank, pool):
    """Segment skinning (the shader's math) gives Anny's vertices for the same bone poses, to 1e-3 mm."""
    model = _anny()
    for identity, row in ((0, 100), (4, 2000)):
        pose = pose_body(pool.rigs[identity], bank.joints[row].astype(np.float64))
        coeffs, world = _anny_world_bone_poses(pool, identity, pose)
        with torch.no_grad():  # the rigged model's forward, which takes blendshape coefficients
            anny_vertices = super(type(model), model).forward(world, coeffs, pose_parameterization="world")["vertices"][0].numpy() * 1000.0
        ours = skin_points(pose, pool.identities.vertices[identity].astype(np.float64), pool.model.influence_segments, pool.model.influence_weights)
        assert np.abs(ours - anny_vertices).max() < 1e-3


def _scene(config: SceneConfig, bank, frame: int):
    return sample_scene(config, bank, seed=11, frame_id=frame)


def test_gpu_skinning_draws_the_cpu_skinned_mesh(bank):
    """Every vertex the CPU skins projects onto the rendered person mask (dilated by a pixel), and
    the mask's extent is the projected mesh's."""
    config = SceneConfig(human=SMALL, occluders={"probability": 0.0})
    pool = BodyPool.for_config(SMALL)
    with HumanRenderer(*config.image_size, pool) as renderer:
        for frame in range(6):
            scene = _scene(config, bank, frame)
            mask = renderer.render(scene).mask.astype(bool)
            h = scene.human
            v = skin_points(h.pose, pool.identities.vertices[h.identity].astype(np.float64), pool.model.influence_segments, pool.model.influence_weights)
            uv = project_points(world_to_camera(v, scene.R, scene.t), scene.K)
            inside = (uv >= 0).all(1) & (uv[:, 0] < mask.shape[1]) & (uv[:, 1] < mask.shape[0])
            px = np.floor(uv[inside]).astype(int)
            grown = mask.copy()
            grown[1:] |= mask[:-1]
            grown[:-1] |= mask[1:]
            grown[:, 1:] |= grown[:, :-1].copy()
            grown[:, :-1] |= grown[:, 1:].copy()
            assert grown[px[:, 1], px[:, 0]].mean() > 0.995, frame
            rows, cols = np.nonzero(mask)
            assert abs(cols.min() - px[:, 0].min()) <= 2 and abs(cols.max() - px[:, 0].max()) <= 2
            assert abs(rows.min() - px[:, 1].min()) <= 2 and abs(rows.max() - px[:, 1].max()) <= 2


def test_visible_joints_lie_on_the_person_and_joints_match_the_ground_truth(bank):
    config = SceneConfig(human=SMALL)
    pool = BodyPool.for_config(SMALL)
    visible = 0
    with HumanRenderer(*config.image_size, pool) as renderer:
        for frame in range(40):
            scene = _scene(config, bank, frame)
            h = scene.human
            np.testing.assert_allclose(scene.joints_world, posed_joints(pool.rigs[h.identity], h.pose), atol=1e-6)
            out = renderer.render(scene)
            gt = scene_ground_truth(scene)
            v = out.visibility == 2
            px = np.floor(gt.joints_2d[v]).astype(int)
            assert out.mask[px[:, 1], px[:, 0]].all() or np.isinf(renderer.gl.read_depth(px)).any(), frame
            visible += int(v.sum())
    assert visible > 0.4 * 40 * 17


def test_self_occlusion_comes_from_the_mesh(bank, pool):
    """Seen from the person's right, the left hip and shoulder hide behind the body; seen from the
    left, the right ones do; the near side is visible."""
    config = SceneConfig(human=SMALL, occluders={"probability": 0.0}, body={"mirror_probability": 0.0, "bone_scale": None})
    scene = None
    for frame in range(200):  # a standing, upright frame of the bundled clips
        s = _scene(config, bank, frame)
        j = s.joints_world
        upright = j[J["Head"], 2] - j[J["Hip"], 2] > 0.85 * np.linalg.norm(j[J["Head"]] - j[J["Hip"]])
        arms_down = j[J["LWrist"], 2] < j[J["LElbow"], 2] < j[J["LShoulder"], 2] and j[J["RWrist"], 2] < j[J["RElbow"], 2] < j[J["RShoulder"], 2]
        if upright and arms_down:
            scene = s
            break
    assert scene is not None
    j = scene.joints_world
    centre = 0.5 * (j.min(axis=0) + j.max(axis=0))
    right = _unit(j[J["RShoulder"]] - j[J["LShoulder"]] + j[J["RHip"]] - j[J["LHip"]])
    right[2] = 0.0
    right = _unit(right)
    with HumanRenderer(*config.image_size, pool) as renderer:
        for side, near, far in ((1.0, "R", "L"), (-1.0, "L", "R")):
            eye = centre + side * right * 4000.0
            R, t = look_at(eye, centre)
            view = dataclasses.replace(scene, K=intrinsics_from_fov(40.0, *config.image_size), R=R, t=t, background=solid(), occluders=Occluders.none())
            vis = renderer.render(view).visibility
            assert vis[J[f"{far}Hip"]] == 1 and vis[J[f"{far}Shoulder"]] == 1, (side, vis)
            assert vis[J[f"{near}Hip"]] == 2 and vis[J[f"{near}Shoulder"]] == 2, (side, vis)
            assert vis[J["Head"]] == 2


def test_same_seed_same_images_bit_for_bit(bank):
    config = SceneConfig(human=SMALL)
    pool = BodyPool.for_config(SMALL)
    frames = []
    for _ in range(2):
        with HumanRenderer(*config.image_size, pool) as renderer:
            frames.append([renderer.render(_scene(config, bank, f)) for f in (3, 4)])
    for a, b in zip(*frames):
        assert np.array_equal(a.rgb, b.rgb) and np.array_equal(a.mask, b.mask) and np.array_equal(a.visibility, b.visibility)
    other = HumanRenderer(*config.image_size, pool)
    try:
        assert not np.array_equal(other.render(_scene(config, bank, 5)).rgb, frames[0][0].rgb)
    finally:
        other.close()


def test_identity_distribution_spans_children_to_elders():
    config = HumanConfig()
    phenotype = sample_phenotypes(np.random.default_rng(0), config, 2000)
    age = phenotype[:, 1]
    for (lo, hi), share in ((config.child_age, 0.15), (config.adult_age, 0.65), (config.elder_age, 0.2)):
        assert abs(((age >= lo) & (age <= hi)).mean() - share) < 0.04
    assert ((phenotype >= 0) & (phenotype <= 1)).all()
    model = load_body_model()
    ids = model.identities(sample_phenotypes(np.random.default_rng(1), config, 40))
    height = ids.vertices[..., 2].max(axis=1) - ids.vertices[..., 2].min(axis=1)
    assert height.min() < 1300 and height.max() > 1750
    with pytest.raises(ValueError, match="phenotype"):
        model.identities(np.full((1, 6), 1.5))
    with pytest.raises(ValueError, match="unknown age_groups"):
        HumanConfig(age_groups={"toddler": 1.0})


def test_pivots_are_bone_heads(pool):
    """Each segment turns about its first bone's head (what the translations assume)."""
    model = pool.model
    heads = pool.identities.bone_heads[0]
    np.testing.assert_allclose(pool.rigs[0].pivots, heads[[model.bone(b) for b in SEGMENT_PIVOT_BONE]])
