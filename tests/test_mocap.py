"""Mocap clips → h36m17 world poses: frames, units, name maps, floor, DeepMimic, pose sources."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from generator import deepmimic as dm
from generator import skeleton as sk
from generator.bvh import forward_kinematics, read_bvh
from generator.mocap import (
    DATA_DIR,
    Y_UP_TO_Z_UP,
    ClipError,
    NameMapError,
    find_clips,
    frame_indices,
    leading_outlier_frames,
    load_clip,
    to_world,
)
from generator.poses import PoseSourceError, load_pose_source

J = sk.JOINT_INDEX


# ------------------------------------------------------------------------------------------------
# Frames and units


def test_y_up_to_z_up_is_a_proper_rotation_and_scales_units():
    assert np.isclose(np.linalg.det(Y_UP_TO_Z_UP), 1.0)
    # (x, y, z) in cm, Y up -> (x, -z, y) in mm
    np.testing.assert_allclose(to_world([[1.0, 2.0, 3.0]], 10.0, "y"), [[10.0, -30.0, 20.0]])
    np.testing.assert_allclose(to_world([[1.0, 2.0, 3.0]], 56.444, "z"), [[56.444, 112.888, 169.332]])
    # a right-handed triad stays right-handed: x × y = z before and after
    ex, ey = to_world([[1, 0, 0], [0, 1, 0]], 1.0, "y")
    np.testing.assert_allclose(np.cross(ex, ey), to_world([[0, 0, 1]], 1.0, "y")[0])
    with pytest.raises(ValueError, match="up_axis"):
        to_world([[0, 0, 0]], 1.0, "x")


def test_frame_indices_keep_nearest_source_frames():
    keep, rate = frame_indices(343, 120.0, 30.0)
    assert rate == 30.0 and keep[:3].tolist() == [0, 4, 8] and len(keep) == 86
    assert frame_indices(10, 24.0, 30.0)[0].tolist() == list(range(10))  # never upsampled
    assert frame_indices(10, 120.0, None)[1] == 120.0
    keep, rate = frame_indices(51, 50.0, 30.0)  # non-integer ratio: nearest frames at 30 fps
    assert rate == 30.0 and keep[:4].tolist() == [0, 2, 3, 5] and keep[-1] == 50


# ------------------------------------------------------------------------------------------------
# A hand-made stick figure (cm, Y up, facing +z) read through a user's name map

STICK = """HIERARCHY
ROOT pelvis
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT lhip
  {
    OFFSET 10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT lknee
    {
      OFFSET 0 -45 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT lankle
      {
        OFFSET 0 -45 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 -8 5
        }
      }
    }
  }
  JOINT rhip
  {
    OFFSET -10 0 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT rknee
    {
      OFFSET 0 -45 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      JOINT rankle
      {
        OFFSET 0 -45 0
        CHANNELS 3 Zrotation Xrotation Yrotation
        End Site
        {
          OFFSET 0 -8 5
        }
      }
    }
  }
  JOINT chest
  {
    OFFSET 0 50 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT head
    {
      OFFSET 0 15 0
      CHANNELS 3 Zrotation Xrotation Yrotation
      End Site
      {
        OFFSET 0 10 0
      }
    }
    JOINT lshoulder
    {
      OFFSET 18 0 0
      JOINT lelbow
      {
        OFFSET 0 -28 0
        JOINT lwrist
        {
          OFFSET 0 -25 0
        }
      }
    }
    JOINT rshoulder
    {
      OFFSET -18 0 0
      JOINT relbow
      {
        OFFSET 0 -28 0
        JOINT rwrist
        {
          OFFSET 0 -25 0
        }
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
{frames}
"""
ZERO_JOINTS = " 0" * 24
STICK_MAP = {
    "Hip": {"lhip": 0.5, "rhip": 0.5},
    "RHip": "rhip",
    "RKnee": "rknee",
    "RFoot": "rankle",
    "LHip": "lhip",
    "LKnee": "lknee",
    "LFoot": "lankle",
    "Spine": {"pelvis": 0.5, "chest": 0.5},
    "Thorax": "chest",
    "Neck/Nose": {"joint": "head", "offset": [0, -4, 0]},
    "Head": "head/End",
    "LShoulder": "lshoulder",
    "LElbow": "lelbow",
    "LWrist": "lwrist",
    "RShoulder": "rshoulder",
    "RElbow": "relbow",
    "RWrist": "rwrist",
}


def _stick(tmp_path: Path, root_y: tuple[float, float] = (100.0, 130.0)) -> Path:
    frames = "\n".join(f"0 {y} 0 0 0 0{ZERO_JOINTS}" for y in root_y)
    path = tmp_path / "stick.bvh"
    path.write_text(STICK.replace("{frames}", frames))
    return path


def _stick_expected(lift_mm: float) -> np.ndarray:
    """World mm: x stays, file z (forward) -> -y, file y (up) -> z; the toe end sites (2 cm above
    file y = 0 in frame 0) are the lowest foot points, so the floor is 20 mm below them."""
    cm = {  # file positions, frame 0 (root at y = 100)
        "Hip": (0, 100, 0), "RHip": (-10, 100, 0), "RKnee": (-10, 55, 0), "RFoot": (-10, 10, 0),
        "LHip": (10, 100, 0), "LKnee": (10, 55, 0), "LFoot": (10, 10, 0), "Spine": (0, 125, 0),
        "Thorax": (0, 150, 0), "Neck/Nose": (0, 161, 0), "Head": (0, 175, 0), "LShoulder": (18, 150, 0),
        "LElbow": (18, 122, 0), "LWrist": (18, 97, 0), "RShoulder": (-18, 150, 0), "RElbow": (-18, 122, 0),
        "RWrist": (-18, 97, 0),
    }  # fmt: skip
    p = np.array([cm[n] for n in sk.JOINT_NAMES], dtype=float) * 10.0
    out = np.stack([p[:, 0], -p[:, 2], p[:, 1] - 20.0], axis=-1)
    out[:, 2] += lift_mm
    return out


def test_user_name_map_units_up_axis_and_floor_on_a_hand_made_figure(tmp_path):
    joints, info = load_clip(_stick(tmp_path), name_map=STICK_MAP, units="cm", up_axis="y", fps=None)
    assert joints.dtype == np.float32 and joints.shape == (2, 17, 3)
    np.testing.assert_allclose(joints[0], _stick_expected(0.0), atol=1e-3)
    np.testing.assert_allclose(joints[1], _stick_expected(300.0), atol=1e-3)  # jumped 30 cm
    assert info.name == "stick" and info.fps == 2.0 and info.subject == "stick"


def test_floor_is_per_clip_whatever_the_root_height(tmp_path):
    low = load_clip(_stick(tmp_path), name_map=STICK_MAP, units="cm", up_axis="y")[0]
    high = load_clip(_stick(tmp_path, (1100.0, 1130.0)), name_map=STICK_MAP, units="cm", up_axis="y")[0]
    np.testing.assert_allclose(low, high, atol=1e-3)


def test_units_and_up_axis_are_guessed_when_not_given(tmp_path, caplog):
    joints = load_clip(_stick(tmp_path), name_map=STICK_MAP, fps=None)[0]
    np.testing.assert_allclose(joints[0], _stick_expected(0.0), atol=1e-3)
    assert "guessed 'cm'" in caplog.text and "guessed 'y'" in caplog.text


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_name_map_from_a_file(tmp_path, suffix):
    path = tmp_path / f"map{suffix}"
    doc = {"joints": STICK_MAP, "units": "cm", "up_axis": "y"}
    if suffix == ".json":
        path.write_text(json.dumps(doc))
    else:
        import yaml

        path.write_text(yaml.safe_dump(doc))
    joints = load_clip(_stick(tmp_path), name_map=path, fps=None)[0]
    np.testing.assert_allclose(joints[0], _stick_expected(0.0), atol=1e-3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"Head": None, "LWrist": None}, "unmapped h36m17 joints: ['Head', 'LWrist']"),
        ({"LKnee": "lknie"}, "no joint or end site named 'lknie' in the skeleton (did you mean 'lknee'"),
        ({"Spine": {"pelvis": 0.5, "chest": 0.6}}, "blend weights sum to 1.1, not 1"),
        ({"Neck/Nose": {"joint": "head", "offset": [0, 1]}}, "offset must be three numbers"),
        ({"Thorax": 3}, "an entry is a joint name"),
        ({"Pelvis": "pelvis"}, "'Pelvis' is not an h36m17 joint"),
    ],
)
def test_bad_name_maps_say_what_is_wrong(tmp_path, change, message):
    bad = {k: v for k, v in {**STICK_MAP, **change}.items() if v is not None}
    with pytest.raises(NameMapError) as err:
        load_clip(_stick(tmp_path), name_map=bad, units="cm", up_axis="y")
    assert message in str(err.value)


def test_bad_name_map_files(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("joints: [unclosed\n")
    with pytest.raises(NameMapError, match="map.yaml: not valid YAML"):
        load_clip(_stick(tmp_path), name_map=path)
    import yaml

    path.write_text(yaml.safe_dump({**STICK_MAP, "RWrist": None}))  # `RWrist: null` is not a mapping
    with pytest.raises(NameMapError, match=r"map.yaml' does not fit this skeleton: unmapped h36m17 joints: \['RWrist'\]"):
        load_clip(_stick(tmp_path), name_map=path, units="cm", up_axis="y")


def test_unknown_skeleton_without_a_map_asks_for_one(tmp_path):
    with pytest.raises(ClipError, match="unknown skeleton .*pass a name map"):
        load_clip(_stick(tmp_path))


# ------------------------------------------------------------------------------------------------
# The vendored skeletons

CLIPS = {
    "cmu walk (120 fps file)": ("cmu_walks/02_01.bvh", "LeftToe", "LeftAnkle", 56.444),
    "cmu 131 hop": ("cmu_131/131_03.bvh", "LeftToe", "LeftAnkle", 56.444),
    "cc run (RL_BoneRoot root)": ("cmu_actions_cc/002_03.bvh", "CC_Base_L_ToeBase", "CC_Base_L_Foot", 10.0),
    "cc jump (hip root)": ("cmu_actions_cc/002_04.bvh", "CC_Base_L_ToeBase", "CC_Base_L_Foot", 10.0),
    "deepmimic walk": ("deepmimic/motions/humanoid3d_walk.txt", None, None, 1000.0),
}


def _facing(rel: str, toe: str | None, ankle: str | None, mm: float) -> np.ndarray:
    """Horizontal facing per frame at the native rate, from the left foot (ankle → toe), world frame."""
    path = DATA_DIR / rel
    if toe is None:
        char = dm.read_character()
        root, quats, _ = dm.resample(dm.read_deepmimic(path), None)
        _, rot = dm.forward_kinematics(char, root, quats)
        forward = to_world(rot[:, char.names.index("left_ankle")] @ [1.0, 0.0, 0.0], 1.0, "y")
    else:
        clip = read_bvh(path)
        pos, _ = forward_kinematics(clip.skeleton, clip.motion)
        w = to_world(pos, mm, "y")
        forward = w[:, clip.skeleton.index(toe)] - w[:, clip.skeleton.index(ankle)]
    forward[:, 2] = 0.0
    return forward / np.linalg.norm(forward, axis=-1, keepdims=True)


@pytest.mark.parametrize("case", sorted(CLIPS))
def test_vendored_skeletons_give_plausible_h36m17_poses(case):
    rel, toe, ankle, mm = CLIPS[case]
    joints, info = load_clip(DATA_DIR / rel, fps=None)
    assert np.isfinite(joints).all() and joints.shape[1:] == (17, 3)
    bones = np.median(sk.bone_lengths(joints), axis=0)
    for thigh, shin in ((J["RKnee"], J["RFoot"]), (J["LKnee"], J["LFoot"])):
        assert 350 < bones[thigh] < 500 and 350 < bones[shin] < 520, bones
    assert 150 < bones[J["LElbow"]] < 330 and 150 < bones[J["LWrist"]] < 300, bones
    assert 50 < bones[J["Neck/Nose"]] < 160, bones  # Neck/Nose sits ~10-12 cm above the thorax
    # standing frames: pelvis above knees above ankles, head on top, thorax between
    z = np.median(joints[..., 2], axis=0)
    assert z[J["Head"]] > z[J["Neck/Nose"]] > z[J["Thorax"]] > z[J["Spine"]] > z[J["Hip"]]
    assert z[J["Hip"]] > z[J["RKnee"]] > z[J["RFoot"]] and z[J["Hip"]] > z[J["LKnee"]] > z[J["LFoot"]]
    assert 700 < z[J["Hip"]] < 1100
    # the floor: feet rest on z = 0 (ankles a few cm above it), nothing far below
    assert 20 < joints[:, [J["RFoot"], J["LFoot"]], 2].min() < 150
    assert joints[..., 2].min() > -30
    # the person's left is on the left: (LHip - RHip) points along up × facing
    left = np.cross([0.0, 0.0, 1.0], _facing(rel, toe, ankle, mm))
    side = np.einsum("fd,fd->f", joints[:, J["LHip"]] - joints[:, J["RHip"]], left)
    assert np.mean(side > 0) > 0.8, np.mean(side > 0)
    assert np.mean(np.einsum("fd,fd->f", joints[:, J["LShoulder"]] - joints[:, J["RShoulder"]], left) > 0) > 0.8


CMU_MAX_TO_MB = {
    "LeftHip": "LeftUpLeg", "LeftKnee": "LeftLeg", "LeftAnkle": "LeftFoot", "LeftToe": "LeftToeBase",
    "RightHip": "RightUpLeg", "RightKnee": "RightLeg", "RightAnkle": "RightFoot", "RightToe": "RightToeBase",
    "lowerback": "LowerBack", "Chest": "Spine", "Chest2": "Spine1", "lowerneck": "Neck", "Neck": "Neck1",
    "LeftCollar": "LeftShoulder", "LeftShoulder": "LeftArm", "LeftElbow": "LeftForeArm", "LeftWrist": "LeftHand",
    "lhand": "LeftFingerBase", "LFingers": "LeftHandIndex1",
    "RightCollar": "RightShoulder", "RightShoulder": "RightArm", "RightElbow": "RightForeArm",
    "RightWrist": "RightHand", "rhand": "RightFingerBase", "RFingers": "RightHandIndex1",
}  # fmt: skip


def test_cmu_motionbuilder_names_map_to_the_same_joints(tmp_path):
    """cgspeed's two CMU releases differ only in joint names; both must give the same poses."""
    out = []
    for line in (DATA_DIR / "cmu_walks/07_01.bvh").read_text().splitlines():
        head, _, name = line.partition("JOINT ")
        out.append(head + "JOINT " + CMU_MAX_TO_MB.get(name.strip(), name.strip()) if name else line)
    renamed = tmp_path / "07_01.bvh"
    renamed.write_text("\n".join(out) + "\n")
    assert "LeftUpLeg" in read_bvh(renamed).skeleton.names
    np.testing.assert_array_equal(load_clip(renamed)[0], load_clip(DATA_DIR / "cmu_walks/07_01.bvh")[0])


def test_both_cc_root_conventions_land_on_the_floor():
    """002_03 has its root on the floor and the hips 105 cm above it; 002_04 has the root at the pelvis."""
    a = load_clip(DATA_DIR / "cmu_actions_cc/002_03.bvh")[0]
    b = load_clip(DATA_DIR / "cmu_actions_cc/002_04.bvh")[0]
    ankle_a, ankle_b = (x[:, [J["RFoot"], J["LFoot"]], 2].min() for x in (a, b))
    assert abs(ankle_a - ankle_b) < 20
    assert abs(np.median(a[:, J["Hip"], 2]) - np.median(b[:, J["Hip"], 2])) < 60


def test_a_prepended_rest_pose_frame_is_dropped(tmp_path, caplog):
    """Some exporters put a T-pose at the origin before the motion; it must not set the floor."""
    caplog.set_level(logging.INFO, logger="generator.mocap")
    lines = (DATA_DIR / "cmu_walks/02_01.bvh").read_bytes().split(b"\n")
    first = next(i for i, x in enumerate(lines) if x.startswith(b"Frame Time")) + 1
    without = lines[: first - 2] + [b"Frames: 342", lines[first - 1]] + lines[first + 1 :]
    (tmp_path / "without.bvh").write_bytes(b"\n".join(without))
    lines[first] = b" ".join([b"0"] * 96)  # every channel zero: the rest pose, root at the origin
    (tmp_path / "with.bvh").write_bytes(b"\n".join(lines))
    joints = load_clip(tmp_path / "with.bvh", fps=None)[0]
    assert len(joints) == 342 and "dropped the first 1 frame(s)" in caplog.text
    # the same poses and the same floor as the clip without that frame
    np.testing.assert_allclose(joints, load_clip(tmp_path / "without.bvh", fps=None)[0], atol=1e-3)


def test_leading_outlier_frames():
    rng = np.random.default_rng(0)
    walk = np.cumsum(rng.normal(0, 4, (40, 17, 3)), axis=0) + np.linspace(0, 8000, 40)[:, None, None] * [1, 0, 0]
    assert leading_outlier_frames(walk) == 0  # fast (200 mm/frame) but smooth: kept
    glitch = walk.copy()
    glitch[:2, 13] += 700.0  # a wrist off by 70 cm in the first two frames (as in CMU 16_15)
    assert leading_outlier_frames(glitch) == 2
    late = walk.copy()
    late[10:, 13] += 700.0  # a jump later on is not a leading outlier
    assert leading_outlier_frames(late) == 0


def test_subsampling_and_metadata():
    j30, info = load_clip(DATA_DIR / "cmu_walks/02_01.bvh")
    jall, info_all = load_clip(DATA_DIR / "cmu_walks/02_01.bvh", fps=None)
    assert (len(j30), info.fps, len(jall), info_all.fps) == (86, 30.0, 343, 120.0)
    np.testing.assert_array_equal(j30, jall[::4])
    assert (info.name, info.subject, info.action) == ("02_01", "cmu_02", "walk")
    cc = load_clip(DATA_DIR / "cmu_actions_cc/002_04.bvh")[1]
    assert (cc.subject, cc.action) == ("cmu_02", "jump, balance")  # same person as 02_01
    d = load_clip(DATA_DIR / "deepmimic/motions/humanoid3d_backflip.txt")[1]
    assert (d.subject, d.action, d.fps) == ("deepmimic", "backflip", 30.0)


# ------------------------------------------------------------------------------------------------
# DeepMimic


def _dm_clip(tmp_path: Path, frames: list, name: str = "humanoid3d_test.txt") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"Loop": "none", "Frames": frames}))
    return path


def _dm_frame(dt: float, root_x: float, right_knee: float) -> list[float]:
    ident = [1.0, 0.0, 0.0, 0.0]
    #      dt   root pos          root   chest  neck   r_hip  r_knee        r_ankle r_shoulder r_elbow
    return [dt, root_x, 0.9, 0.0, *ident, *ident, *ident, *ident, right_knee, *ident, *ident, 0.0,
            *ident, 0.0, *ident, *ident, 0.0]  # l_hip, l_knee, l_ankle, l_shoulder, l_elbow  # fmt: skip


def test_deepmimic_fk_by_hand(tmp_path):
    char = dm.read_character()
    hip, thigh, shin = (char.offsets[char.names.index(n)] for n in ("right_hip", "right_knee", "right_ankle"))
    sole = char.soles["right_ankle"][:, 1].min()  # sole below the ankle joint (negative y)
    path = _dm_clip(tmp_path, [_dm_frame(0.5, 0.0, 0.0), _dm_frame(0.0, 1.0, -math.pi / 2)])
    joints, info = load_clip(path, fps=None)
    assert joints.shape == (2, 17, 3) and info.fps == 2.0
    floor = 0.9 + hip[1] + thigh[1] + shin[1] + sole  # frame 0: feet flat, lowest sole point
    # frame 0, character frame (x forward, y up, z right): right ankle straight below the right hip
    ankle0 = np.array([0.0, 0.9, 0.0]) + hip + thigh + shin
    # frame 1: knee -90° about z swings the shin (0, -l, 0) to (-l, 0, 0): backwards
    ankle1 = np.array([1.0, 0.9, 0.0]) + hip + thigh + np.array([shin[1], 0.0, 0.0])
    for frame, ankle in ((0, ankle0), (1, ankle1)):
        want = to_world(ankle, 1000.0, "y") - [0.0, 0.0, floor * 1000.0]
        np.testing.assert_allclose(joints[frame, J["RFoot"]], want, atol=1e-3)
    assert joints[0, J["RHip"], 1] < 0 < joints[0, J["LHip"], 1]  # facing +x, the right is -y
    np.testing.assert_allclose(joints[0, J["Hip"]], [0, 0, (0.9 - floor) * 1000], atol=1e-3)


def test_deepmimic_resampling_uses_slerp(tmp_path):
    path = _dm_clip(tmp_path, [_dm_frame(0.5, 0.0, 0.0), _dm_frame(0.0, 1.0, -math.pi / 2)])
    joints = load_clip(path, fps=4.0)[0]  # t = 0, 0.25, 0.5
    assert joints.shape[0] == 3
    knee, ankle = joints[1, J["RKnee"]], joints[1, J["RFoot"]]
    shin = ankle - knee
    angle = math.degrees(math.atan2(-shin[0], -shin[2]))  # from straight down, towards -x (backwards)
    assert abs(angle - 45.0) < 1e-3
    assert abs(joints[1, J["Hip"], 0] - 500.0) < 1e-3  # root position interpolated linearly
    q = dm.slerp(np.array([1.0, 0, 0, 0]), np.array([0.0, 0, 0, 1.0]), np.array(0.5))  # 0° → 180° about z
    np.testing.assert_allclose(q, [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-12)


def test_vendored_deepmimic_clip_resampled_to_30fps():
    path = DATA_DIR / "deepmimic/motions/humanoid3d_cartwheel.txt"
    clip = dm.read_deepmimic(path)
    joints, info = load_clip(path)
    assert len(joints) == int(clip.times[-1] * 30 + 1e-9) + 1 and info.fps == 30.0
    keyframes = load_clip(path, fps=None)[0]
    # t = 0 is a keyframe (the floor, the lowest sole point over the frames kept, moves by < 0.1 mm)
    np.testing.assert_allclose(joints[0], keyframes[0], atol=0.1)
    assert joints[..., 2].max() > 1500  # the hands go overhead in a cartwheel


@pytest.mark.parametrize(
    "content, message",
    [
        ("{\"Frames\": [[0.1, 2,]]}", "not valid JSON: Expecting value at line 1 column"),
        ('{"Loop": "wrap"}', 'expected a JSON object with a "Frames" list'),
        ('{"Frames": []}', '"Frames" must be a non-empty list'),
        ('{"Frames": [5]}', "frame 0 is a int, not a list of 44 numbers"),
        (json.dumps({"Frames": [_dm_frame(0.1, 0, 0), _dm_frame(0, 0, 0)[:43]]}), "frame 1 has 43 values, expected 44"),
        (json.dumps({"Frames": [_dm_frame(0.1, 0, 0)[:20] + ["x"] + _dm_frame(0, 0, 0)[21:]]}),
         "frame 0, value 20 (right_knee angle) is 'x', not a finite number"),
        ('{"Frames": [[NaN' + ", 0" * 43 + "]]}", "frame 0, value 0 (dt) is nan"),
        (json.dumps({"Frames": [_dm_frame(-0.1, 0, 0), _dm_frame(0, 0, 0)]}), "frame 0 has a negative dt"),
        (json.dumps({"Frames": [_dm_frame(0.1, 0, 0)[:4] + [0, 0, 0, 0] + _dm_frame(0, 0, 0)[8:]]}),
         "frame 0: the quaternion of 'root' is zero"),
        (json.dumps({"Frames": [_dm_frame(0.1, 0, 0), _dm_frame(0, 1e300, 0)]}), "frame 1, value 1 (root x) is 1e+300, beyond +-10000"),
        (json.dumps({"Frames": [_dm_frame(0.1, 0, 0)[:30] + [-3e7] + _dm_frame(0, 0, 0)[31:]]}), "value 30 (left_hip qw) is -3e+07, beyond +-1e+07"),
        (json.dumps({"Frames": [_dm_frame(1e6, 0, 0), _dm_frame(0, 0, 0)]}), "the dt add up to 1e+06 s, longer than any clip"),
        ('{"Frames": [[1e999' + ", 0" * 43 + "]]}", "frame 0, value 0 (dt) is inf"),
    ],
)  # fmt: skip
def test_malformed_deepmimic_clips_name_file_and_problem(tmp_path, content, message):
    path = tmp_path / "humanoid3d_bad.txt"
    path.write_text(content)
    with pytest.raises(dm.DeepMimicFormatError) as err:
        load_clip(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value), str(err.value)


# ------------------------------------------------------------------------------------------------
# Finding clips and pose sources


def test_find_clips_skips_non_clip_text_files():
    clips = find_clips(DATA_DIR)
    assert clips == sorted(clips)
    names = {p.name for p in clips}
    assert len(clips) == 38 and "humanoid3d.txt" not in names and "SOURCE.txt" not in names
    assert sum(p.suffix == ".txt" for p in clips) == 20


def test_bundled_source_covers_many_people_and_is_deterministic():
    bank = load_pose_source("bundled")
    again = load_pose_source("bundled")
    np.testing.assert_array_equal(bank.joints, again.joints)
    assert bank.joints.dtype == np.float32 and len(bank) > 3000
    walkers = {c.subject for c in bank.clips if "cmu_walks" in c.path}
    assert len(walkers) >= 8
    assert {c.subject for c in bank.clips} >= {"cmu_02", "cmu_131", "cmu_05", "cmu_06", "deepmimic"}
    assert len({c.name for c in bank.clips}) == len(bank.clips)
    # rows point back at their clip and frame
    row = int(np.flatnonzero(bank.sequence_of(np.arange(len(bank))) == "02_01")[5])
    np.testing.assert_array_equal(bank.joints[row], load_clip(DATA_DIR / "cmu_walks/02_01.bvh")[0][5])
    assert bank.frame_index[row] == 5


def test_folder_and_single_file_sources(tmp_path):
    folder = load_pose_source(DATA_DIR / "cmu_walks")
    assert len(folder.clips) == 12 and all(c.action == "walk" for c in folder.clips)
    single = load_pose_source(str(DATA_DIR / "cmu_131" / "131_03.bvh"), fps=10.0)
    assert len(single.clips) == 1 and single.clips[0].fps == 10.0 and len(single) == 92
    # the same file name in two folders: clips are named by relative path
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "07_01.bvh").write_bytes((DATA_DIR / "cmu_walks/07_01.bvh").read_bytes())
    twin = load_pose_source(tmp_path)
    assert [c.name for c in twin.clips] == ["a/07_01", "b/07_01"]


def test_folder_of_another_skeleton_with_a_name_map(tmp_path):
    _stick(tmp_path)
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"joints": STICK_MAP, "units": "cm", "up_axis": "y"}))
    bank = load_pose_source(tmp_path, name_map=path, fps=None)  # map.json is not a clip: skipped
    assert [c.name for c in bank.clips] == ["stick"]
    np.testing.assert_allclose(bank.joints[0], _stick_expected(0.0), atol=1e-3)


def test_prior_source():
    bank = load_pose_source("prior", seed=3, prior_size=500)
    assert bank.joints.shape == (500, 17, 3) and bank.joints.dtype == np.float32
    assert bank.clips[0].name == "prior" and bank.clips[0].fps == 0.0
    np.testing.assert_array_equal(bank.joints, load_pose_source("prior", seed=3, prior_size=500).joints)
    assert not np.array_equal(bank.joints, load_pose_source("prior", seed=4, prior_size=500).joints)


def test_empty_folder_and_missing_path_are_clear_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("not a clip")
    with pytest.raises(PoseSourceError, match="no .bvh or DeepMimic .txt/.json clips"):
        load_pose_source(tmp_path)
    with pytest.raises(PoseSourceError, match="nowhere: no such file or folder.*'bundled' or 'prior'"):
        load_pose_source(tmp_path / "nowhere")


def test_exclude_subjects_leaves_out_every_clip_of_those_people():
    full = load_pose_source("bundled")
    subjects = sorted({c.subject for c in full.clips})
    held_out = [s for s in subjects if s.startswith("cmu_")][:2]
    bank = load_pose_source("bundled", exclude_subjects=held_out)
    kept = {c.subject for c in bank.clips}
    assert kept == set(subjects) - set(held_out)
    assert len(bank) == sum(int((full.clip_index == i).sum()) for i, c in enumerate(full.clips) if c.subject not in held_out)
    assert bank.clip_index.max() == len(bank.clips) - 1
    with pytest.raises(PoseSourceError, match="cmu_nobody"):
        load_pose_source("bundled", exclude_subjects=["cmu_nobody"])
    with pytest.raises(PoseSourceError, match="leaves no clips"):
        load_pose_source("prior", prior_size=10, exclude_subjects=["prior"])
