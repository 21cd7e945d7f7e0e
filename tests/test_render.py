"""The built-in renderer: projection against the ground truth, visibility, backgrounds,
determinism and GL context life cycle (moderngl on headless EGL)."""

from __future__ import annotations

import dataclasses
import gc
import logging

import numpy as np
import pytest
from PIL import Image

from generator.camera import intrinsics_from_fov, intrinsics_matrix, look_at, project_points, world_to_camera
from generator.poses import load_pose_source
from generator.masks import decode_mask_png, encode_mask_png
from generator.render import MannequinRenderer, PhotoFolderError, PrimitiveRenderer, mannequin_primitives
from generator.render.mannequin import CAPSULES, ELLIPSOIDS, Primitives
from generator.render.meshes import box_mesh, capsule_mesh, cylinder_mesh, sphere_mesh
from generator.render.visibility import capsule_exit_distance, ellipsoid_exit_distance
from generator.scene import Background, Lighting, Occluders, SceneConfig, sample_scene, scene_ground_truth
from generator.skeleton import JOINT_INDEX
from test_scene import make_bank, standing_pose

# A wedged EGL/llvmpipe call fails the test instead of blocking the suite.
pytestmark = pytest.mark.timeout(60)

J = JOINT_INDEX
BG = np.array([0.2, 0.4, 0.6])  # the solid background of the hand-made scenes
W, H = 256, 256


def solid(color=BG) -> Background:
    return Background(
        kind="solid",
        colors=np.array([color, color]),
        direction=np.array([1.0, 0.0]),
        cell_px=8.0,
        roughness=0.5,
        offset=np.zeros(2),
        photo=0.0,
        crop_scale=1.0,
        crop_position=np.zeros(2),
        flip=False,
    )


def posed_scene(pose, camera_pos, target, fov_deg=50.0, size=(W, H), occluders=None, background=None):
    """A sampled scene (body style, light) with the pose, camera and background replaced."""
    config = SceneConfig(body_model="mannequin", image_size=size, body={"mirror_probability": 0.0, "bone_scale": None}, occluders={"probability": 0.0})
    scene = sample_scene(config, make_bank(pose[None]), seed=0, frame_id=0)
    R, t = look_at(np.asarray(camera_pos, float), np.asarray(target, float))
    return dataclasses.replace(
        scene,
        joints_world=np.asarray(pose, dtype=np.float64),
        K=intrinsics_from_fov(fov_deg, *size),
        R=R,
        t=t,
        background=background or solid(),
        occluders=occluders or Occluders.none(),
    )


def is_background(rgb: np.ndarray, uv) -> bool:
    u, v = int(uv[0]), int(uv[1])
    return bool(np.all(np.abs(rgb[v, u].astype(int) - np.round(BG * 255)) <= 1))


@pytest.fixture(scope="module")
def renderer():
    with MannequinRenderer(W, H) as r:
        yield r


# ------------------------------------------------------------------------------------------------
# Projection


def _marker_light() -> Lighting:
    white = np.ones(3)
    return Lighting(direction=np.array([0.0, 0.0, 1.0]), color=np.zeros(3), sky=white, ground=white)


def _sphere(center, radius) -> Primitives:
    ell = np.concatenate([center, [radius, 0, 0, 0, radius, 0, 0, 0, radius], [1.0, 1.0, 1.0]])[None].astype(np.float32)
    empty = np.zeros((0, 15), np.float32)
    return Primitives(capsules=np.zeros((0, 11), np.float32), ellipsoids=ell, boxes=empty, cylinders=empty)


def test_rendered_markers_land_on_the_projected_joints():
    """A sphere at each joint, drawn alone, has its pixel centroid on project_points (< 0.5 px).

    A non-square image, fx != fy and an off-centre principal point catch any swapped or flipped
    axis; the asymmetric pose catches a mirrored image.
    """
    w, h = 240, 180
    K = intrinsics_matrix(300.0, 280.0, 131.3, 83.7)
    pose = standing_pose()
    R, t = look_at(np.array([3200.0, 900.0, 1500.0]), np.array([0.0, 0.0, 1000.0]), roll_rad=0.1)
    cam = world_to_camera(pose, R, t)
    expected, cam_z = project_points(cam, K), cam[:, 2]
    radius = 45.0
    black = solid(np.zeros(3))
    with PrimitiveRenderer(w, h) as gl:
        for j in range(17):
            gl.draw(K, R, t, _sphere(pose[j], radius), _marker_light(), black)
            rgb = gl.read_rgb()
            mask = rgb[..., 0] > 127
            rows, cols = np.nonzero(mask)
            assert 20 < mask.sum() < 2000, f"joint {j}: marker covers {mask.sum()} px"
            centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])  # pixel centres
            err = np.linalg.norm(centroid - expected[j])
            assert err < 0.5, f"joint {j}: marker centroid {centroid} vs projected {expected[j]} ({err:.3f} px)"
            # The depth buffer at the marker's centre pixel is the sphere's front, in camera mm.
            z = gl.read_depth(np.floor(expected[j])[None].astype(int))[0]
            assert abs(z - (cam_z[j] - radius)) < 3.0
            assert np.isinf(gl.read_depth(np.array([[0, 0]]))[0])


def test_front_faces_face_the_camera():
    """Lit from the camera, a sphere's centre is bright; culling the wrong faces would show its
    inside, lit from behind (dark)."""
    K = intrinsics_from_fov(40.0, 64, 64)
    R, t = look_at(np.array([3000.0, 0.0, 0.0]), np.zeros(3))
    light = Lighting(direction=np.array([1.0, 0.0, 0.0]), color=np.ones(3), sky=np.zeros(3), ground=np.zeros(3))
    with PrimitiveRenderer(64, 64) as gl:
        gl.draw(K, R, t, _sphere(np.zeros(3), 400.0), light, solid(np.zeros(3)))
        rgb = gl.read_rgb()
    assert rgb[32, 32].min() > 200 and rgb[0, 0].max() == 0


def test_the_mannequin_is_not_mirrored(renderer):
    """Seen from the front, the raised left arm is where joints_2d says, on the image's right."""
    pose = standing_pose()
    scene = posed_scene(pose, [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0])
    frame = renderer.render(scene)
    gt = scene_ground_truth(scene)
    lw, rw, pelvis = gt.joints_2d[J["LWrist"]], gt.joints_2d[J["RWrist"]], gt.joints_2d[J["Hip"]]
    assert lw[0] > pelvis[0]  # facing the camera, the person's left is the image's right
    mirrored = np.array([2 * pelvis[0] - lw[0], lw[1]])
    assert not is_background(frame.rgb, lw)
    assert is_background(frame.rgb, mirrored)
    assert not is_background(frame.rgb, rw)
    assert frame.visibility[J["LWrist"]] == 2 and frame.visibility[J["RWrist"]] == 2


# ------------------------------------------------------------------------------------------------
# Visibility


def test_frontal_pose_has_both_wrists_and_the_face_visible(renderer):
    frame = renderer.render(posed_scene(standing_pose(), [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0]))
    assert np.all(frame.visibility == 2), frame.visibility


def test_an_arm_behind_the_torso_is_occluded(renderer):
    pose = standing_pose()
    pose[J["RElbow"]] = [-110.0, -190.0, 1180.0]
    pose[J["RWrist"]] = [-170.0, -20.0, 1050.0]  # behind the back
    front = renderer.render(posed_scene(pose, [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0]))
    assert front.visibility[J["RWrist"]] == 1
    assert front.visibility[J["LWrist"]] == 2
    back = renderer.render(posed_scene(pose, [-3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0]))
    assert back.visibility[J["RWrist"]] == 2  # from behind it shows
    # From the person's left side, the right knee and ankle hide behind the left leg.
    side = renderer.render(posed_scene(standing_pose(), [0.0, 3500.0, 600.0], [0.0, 0.0, 600.0]))
    assert side.visibility[J["RKnee"]] == 1 and side.visibility[J["RFoot"]] == 1
    assert side.visibility[J["LKnee"]] == 2 and side.visibility[J["LFoot"]] == 2


def test_joints_outside_the_image_are_zero(renderer):
    # Close and aimed at the shins: the head and the raised hand leave the image.
    scene = posed_scene(standing_pose(), [1500.0, 0.0, 300.0], [0.0, 0.0, 300.0], fov_deg=50.0)
    frame = renderer.render(scene)
    gt = scene_ground_truth(scene)
    assert not gt.in_image[J["Head"]] and gt.in_image[J["RFoot"]]
    np.testing.assert_array_equal(frame.visibility == 0, ~gt.in_image)
    assert frame.visibility[J["RFoot"]] == 2


def test_an_occluder_makes_joints_occluded(renderer):
    box = Occluders(
        kind=np.array([0]),
        center=np.array([[1800.0, 0.0, 1400.0]]),
        axes=np.diag([40.0, 500.0, 150.0])[None],  # hides about 1.2-1.9 m of height at the body
        color=np.array([[0.9, 0.1, 0.1]]),
    )
    frame = renderer.render(posed_scene(standing_pose(), [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0], occluders=box))
    for name in ("Thorax", "Neck/Nose", "Head", "LShoulder", "RShoulder"):
        assert frame.visibility[J[name]] == 1, name
    for name in ("Hip", "LFoot", "RFoot", "LKnee"):
        assert frame.visibility[J[name]] == 2, name


def test_exit_distances_match_the_shapes():
    up = np.array([[0.0, 0.0, 1.0]])
    ell = np.array([[0, 0, 0, 100, 0, 0, 0, 50, 0, 0, 0, 30]], dtype=float)
    assert ellipsoid_exit_distance(np.zeros((1, 3)), up, ell)[0] == pytest.approx(30.0)
    assert ellipsoid_exit_distance(np.array([[0.0, 0.0, 10.0]]), up, ell)[0] == pytest.approx(20.0)
    assert ellipsoid_exit_distance(np.array([[0.0, 0.0, 40.0]]), up, ell)[0] == 0.0  # outside it
    cap = np.array([[0, 0, 0, 20, 0, 0, 300, 20]], dtype=float)  # along z from 0 to 300
    assert capsule_exit_distance(np.zeros((1, 3)), up, cap)[0] == pytest.approx(320.0)  # along the axis
    side = np.array([[1.0, 0.0, 0.0]])
    assert capsule_exit_distance(np.array([[0.0, 0.0, 150.0]]), side, cap)[0] == pytest.approx(20.0)


def test_visibility_agrees_with_the_ground_truth_on_sampled_scenes(renderer):
    bank = load_pose_source("bundled")
    config = SceneConfig(body_model="mannequin", image_size=(W, H), occluders={"probability": 0.5})
    counts = np.zeros(3, int)
    for f in range(40):
        scene = sample_scene(config, bank, seed=11, frame_id=f)
        frame = renderer.render(scene)
        gt = scene_ground_truth(scene)
        assert frame.rgb.shape == (H, W, 3) and frame.rgb.dtype == np.uint8 and frame.visibility.dtype == np.uint8
        np.testing.assert_array_equal(frame.visibility == 0, ~gt.in_image)
        counts += np.bincount(frame.visibility, minlength=3)
    # Most joints show, but self-occlusion and occluders hide a real share of them.
    assert counts[2] > 0.5 * counts.sum() and counts[1] > 0.05 * counts.sum()


@pytest.mark.parametrize("mesh", [capsule_mesh, sphere_mesh, box_mesh, cylinder_mesh])
def test_meshes_are_closed_and_consistently_wound(mesh):
    """Every directed edge appears once and its reverse once: closed, one orientation throughout
    (the sphere test above checks that orientation faces outwards). Vertices that share a
    position (flat faces repeat them with their own normals) count as one."""
    verts, tris = mesh()
    positions = verts[:, :3] if verts.shape[1] == 6 else verts  # the capsule template is (around, t, end)
    _, vertex_id = np.unique(np.round(positions, 5), axis=0, return_inverse=True)
    tris = vertex_id.ravel()[tris]
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)


def test_mannequin_instances():
    scene = posed_scene(standing_pose(), [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0])
    prims, surfaces = mannequin_primitives(scene)
    assert prims.capsules.shape == (len(CAPSULES), 11) and prims.ellipsoids.shape == (len(ELLIPSOIDS), 15)
    assert np.all(np.isfinite(prims.capsules)) and np.all(np.isfinite(prims.ellipsoids))
    # Thicker bodies have thicker limbs.
    fat = dataclasses.replace(scene, body=dataclasses.replace(scene.body, thickness=scene.body.thickness * 1.2))
    np.testing.assert_allclose(mannequin_primitives(fat)[0].capsules[:, 3], prims.capsules[:, 3] * 1.2, rtol=1e-6)
    # Every joint has its own surface: a capsule end sphere or an enclosing ellipsoid.
    own = surfaces.sphere_radius > 0
    own[surfaces.ellipsoid_pairs[:, 0]] = True
    assert own.all()


# ------------------------------------------------------------------------------------------------
# Person mask


def test_the_mask_is_the_persons_visible_pixels(renderer):
    """Alone on a solid background, the mask is exactly the pixels that are not background; an
    occluder in front removes the pixels it covers (and only those) and is never in the mask."""
    pose = standing_pose()
    at = ([3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0])
    bg = np.round(BG * 255).astype(int)
    alone = renderer.render(posed_scene(pose, *at))
    assert alone.mask.dtype == np.uint8 and alone.mask.shape == (H, W) and alone.mask.flags.c_contiguous
    assert set(np.unique(alone.mask).tolist()) == {0, 1}
    drawn = (np.abs(alone.rgb.astype(int) - bg) > 1).any(axis=-1)
    np.testing.assert_array_equal(alone.mask.astype(bool), drawn)
    assert 2000 < alone.mask.sum() < 0.2 * H * W

    box = Occluders(kind=np.array([0]), center=np.array([[1800.0, 0.0, 1400.0]]), axes=np.diag([40.0, 500.0, 150.0])[None],
                    color=np.array([[0.9, 0.1, 0.1]]))
    hidden = renderer.render(posed_scene(pose, *at, occluders=box))
    person, covered = alone.mask.astype(bool), hidden.mask.astype(bool)
    assert (covered <= person).all()  # an occluder only ever removes person pixels
    lost = person & ~covered
    assert lost.sum() > 500
    # Where the person was lost, the box is drawn (red); where it stayed, the image is unchanged.
    assert (hidden.rgb[lost][:, 0].astype(int) - hidden.rgb[lost][:, 1] > 60).all()
    np.testing.assert_array_equal(hidden.rgb[covered], alone.rgb[covered])
    box_pixels = (np.abs(hidden.rgb.astype(int) - bg) > 1).any(axis=-1) & ~covered
    assert box_pixels.sum() > lost.sum() and not hidden.mask[box_pixels].any()


def test_depth_image_is_optional_and_agrees_with_the_mask():
    scene = posed_scene(standing_pose(), [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0], size=(96, 64))
    with MannequinRenderer(96, 64) as plain, MannequinRenderer(96, 64, depth=True) as deep:
        assert plain.render(scene).depth is None
        frame = deep.render(scene)
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (64, 96)
    np.testing.assert_array_equal(np.isfinite(frame.depth), frame.mask.astype(bool))  # no occluders here
    z = frame.depth[np.isfinite(frame.depth)]
    assert 3000 < z.min() < z.max() < 4000  # the body's front, about 3.5 m away


def test_visible_joints_lie_inside_the_mask_on_sampled_scenes(renderer):
    """Every joint marked visible projects onto the mask (within 2 px) on 200 random frames with
    occluders; occluded joints often do not (the mask is not just everything)."""
    bank = load_pose_source("bundled")
    config = SceneConfig(body_model="mannequin", image_size=(W, H), occluders={"probability": 0.5})
    offsets = np.stack(np.meshgrid(np.arange(-2, 3), np.arange(-2, 3)), axis=-1).reshape(-1, 2)
    visible = occluded = occluded_off = 0
    for f in range(200):
        scene = sample_scene(config, bank, seed=5, frame_id=f)
        frame = renderer.render(scene)
        uv = np.floor(scene_ground_truth(scene).joints_2d).astype(int)
        near = np.clip(uv[:, None, :] + offsets, 0, [W - 1, H - 1])  # (17, 25, 2) pixels around each joint
        in_mask = frame.mask[near[..., 1], near[..., 0]].any(axis=1)
        vis = frame.visibility
        misses = np.flatnonzero((vis == 2) & ~in_mask)
        assert len(misses) == 0, f"frame {f}: visible joints {misses.tolist()} are off the mask"
        visible += int((vis == 2).sum())
        at = np.clip(uv, 0, [W - 1, H - 1])
        occluded += int((vis == 1).sum())
        occluded_off += int(((vis == 1) & (frame.mask[at[:, 1], at[:, 0]] == 0)).sum())
    assert visible > 2000 and occluded > 300 and occluded_off > 0.2 * occluded


# ------------------------------------------------------------------------------------------------
# Backgrounds


def _bg(kind, **kw) -> Background:
    return dataclasses.replace(solid(), kind=kind, **kw)


def test_solid_gradient_and_noise_backgrounds(renderer):
    pose = standing_pose()
    at = dict(camera_pos=[4000.0, 0.0, 1300.0], target=[0.0, 0.0, 1000.0])
    red, blue = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    img = renderer.render(posed_scene(pose, **at, background=_bg("solid", colors=np.array([red, red])))).rgb
    assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[-1, -1]) == (255, 0, 0)
    grad = _bg("gradient", colors=np.array([red, blue]), direction=np.array([1.0, 0.0]))
    img = renderer.render(posed_scene(pose, **at, background=grad)).rgb
    row = img[2].astype(int)
    assert row[0, 0] > 250 and row[-1, 2] > 250 and np.all(np.diff(row[:, 2]) >= 0)  # red -> blue, left to right
    noise = _bg("noise", colors=np.array([red, blue]), cell_px=6.0, offset=np.array([13.0, 7.0]))
    a = renderer.render(posed_scene(pose, **at, background=noise)).rgb
    b = renderer.render(posed_scene(pose, **at, background=noise)).rgb
    np.testing.assert_array_equal(a, b)
    assert a[:40, :40, 2].std() > 10  # textured
    moved = renderer.render(posed_scene(pose, **at, background=dataclasses.replace(noise, offset=np.array([100.0, 7.0])))).rgb
    assert np.abs(moved[:40, :40].astype(int) - a[:40, :40]).mean() > 5


def _photo_folder(folder):
    folder.mkdir()
    half = np.zeros((300, 400, 3), np.uint8)
    half[:, :200] = (255, 0, 0)
    half[:, 200:] = (0, 0, 255)
    Image.fromarray(half).save(folder / "a_split.png")
    (folder / "sub").mkdir()
    Image.fromarray(np.full((120, 90, 3), (0, 255, 0), np.uint8)).save(folder / "sub" / "b_green.jpg", quality=95)
    (folder / "c_broken.jpg").write_bytes(b"not a jpeg at all")
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_photo_backgrounds(tmp_path, caplog):
    folder = _photo_folder(tmp_path / "photos")
    pose = standing_pose()
    at = dict(camera_pos=[6000.0, 0.0, 1300.0], target=[0.0, 0.0, 1000.0])
    with caplog.at_level(logging.WARNING):
        r = MannequinRenderer(W, H, photo_dir=folder)
    with r:
        assert len(r.gl.photos) == 2 and "c_broken.jpg" in caplog.text
        split = _bg("photo", photo=0.0, crop_scale=1.0, crop_position=np.array([0.5, 0.5]))
        img = r.render(posed_scene(pose, **at, background=split)).rgb
        assert tuple(img[128, 5]) == (255, 0, 0) and tuple(img[128, -5]) == (0, 0, 255)
        img = r.render(posed_scene(pose, **at, background=dataclasses.replace(split, flip=True))).rgb
        assert tuple(img[128, 5]) == (0, 0, 255) and tuple(img[128, -5]) == (255, 0, 0)
        # A quarter-size crop at the left edge is all red.
        img = r.render(posed_scene(pose, **at, background=dataclasses.replace(split, crop_scale=0.25, crop_position=np.zeros(2)))).rgb
        assert tuple(img[5, -5]) == (255, 0, 0)
        img = r.render(posed_scene(pose, **at, background=dataclasses.replace(split, photo=0.99))).rgb
        assert abs(int(img[5, 5, 1]) - 255) <= 3 and img[5, 5, 0] <= 3  # the green JPEG
        # Sampled scenes with a photo_dir use it.
        config = SceneConfig(body_model="mannequin", background={"weights": {"photo": 1.0}, "photo_dir": folder})
        scene = sample_scene(config, make_bank(pose[None]), 0, 0)
        assert scene.background.kind == "photo"
        r.render(scene)
    with MannequinRenderer(W, H) as plain, pytest.raises(ValueError, match="no photo_dir"):
        plain.render(scene)
    # A cache smaller than one photo keeps only the latest texture and still draws the right one.
    with MannequinRenderer(W, H, photo_dir=folder, photo_cache_mb=0.1) as small:
        green = dataclasses.replace(split, photo=0.99)
        first = small.render(posed_scene(pose, **at, background=split)).rgb
        small.render(posed_scene(pose, **at, background=green))
        assert len(small.gl._photo_cache) == 1
        np.testing.assert_array_equal(small.render(posed_scene(pose, **at, background=split)).rgb, first)


def test_photo_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(PhotoFolderError, match=f"{empty}.*no readable image"):
        MannequinRenderer(W, H, photo_dir=empty)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(PhotoFolderError, match="1 failed to open"):
        MannequinRenderer(W, H, photo_dir=broken)
    with pytest.raises(PhotoFolderError, match="does not exist"):
        MannequinRenderer(W, H, photo_dir=tmp_path / "missing")


# ------------------------------------------------------------------------------------------------
# Determinism, life cycle, a sample image


def test_same_scene_same_image_and_visibility(tmp_path):
    bank = load_pose_source("bundled")
    config = SceneConfig(body_model="mannequin", occluders={"probability": 1.0})
    scenes = [sample_scene(config, bank, seed=21, frame_id=f) for f in range(3)]
    with MannequinRenderer(W, H) as a:
        first = [a.render(s) for s in scenes]
        again = a.render(sample_scene(config, bank, seed=21, frame_id=0))
    with MannequinRenderer(W, H) as b:
        second = [b.render(s) for s in reversed(scenes)][::-1]
    for x, y in zip(first, second):
        assert x.rgb.tobytes() == y.rgb.tobytes() and x.visibility.tobytes() == y.visibility.tobytes()
        assert encode_mask_png(x.mask) == encode_mask_png(y.mask)  # same seed, same mask bytes
        np.testing.assert_array_equal(decode_mask_png(encode_mask_png(x.mask), (H, W)), x.mask)
    assert again.rgb.tobytes() == first[0].rgb.tobytes() and again.mask.tobytes() == first[0].mask.tobytes()
    assert first[0].rgb.tobytes() != first[1].rgb.tobytes() and first[0].mask.tobytes() != first[1].mask.tobytes()
    path = tmp_path / "sample.png"
    Image.fromarray(first[0].rgb).save(path)
    assert Image.open(path).size == (W, H)


def test_several_renderers_in_one_process():
    """Creating, interleaving, collecting and closing renderers leaves the others working (the
    failure mode of pyrender's EGL renderers)."""
    scene = posed_scene(standing_pose(), [3500.0, 0.0, 1300.0], [0.0, 0.0, 1000.0], size=(96, 64))
    r1, r2, r3 = (MannequinRenderer(96, 64) for _ in range(3))
    first = r1.render(scene)
    reference = first.rgb
    second = r2.render(scene)
    np.testing.assert_array_equal(second.rgb, reference)
    np.testing.assert_array_equal(second.mask, first.mask)
    r3.render(scene)
    del r3  # dropped without close(): its context must not take the others down
    gc.collect()
    r1.close()
    r1.close()  # idempotent
    np.testing.assert_array_equal(r2.render(scene).rgb, reference)
    with pytest.raises(RuntimeError, match="closed"):
        r1.render(scene)
    r2.close()
    with MannequinRenderer(96, 64) as r4:
        np.testing.assert_array_equal(r4.render(scene).rgb, reference)
    with MannequinRenderer(50, 50) as r5, pytest.raises(ValueError, match="image size"):
        r5.render(scene)
