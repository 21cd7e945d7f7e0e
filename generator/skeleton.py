"""The `h36m17` skeleton and the COCO-17 mapping (docs/conventions.md is the reference).

Everything here is a constant or a pure function over arrays of shape (..., 17, D).
"""

from __future__ import annotations

import numpy as np

SKELETON_NAME = "h36m17"
NUM_JOINTS = 17

JOINT_NAMES: tuple[str, ...] = (
    "Hip",  # 0 pelvis, the root
    "RHip",  # 1
    "RKnee",  # 2
    "RFoot",  # 3 (ankle)
    "LHip",  # 4
    "LKnee",  # 5
    "LFoot",  # 6 (ankle)
    "Spine",  # 7
    "Thorax",  # 8
    "Neck/Nose",  # 9
    "Head",  # 10 (top of the head)
    "LShoulder",  # 11
    "LElbow",  # 12
    "LWrist",  # 13
    "RShoulder",  # 14
    "RElbow",  # 15
    "RWrist",  # 16
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
ROOT = 0

PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15], dtype=np.int64)
PARENTS.setflags(write=False)

LEFT_JOINTS = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS = (1, 2, 3, 14, 15, 16)
LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = tuple(zip(LEFT_JOINTS, RIGHT_JOINTS))

# Index permutation that swaps every left joint with its right twin (used by mirroring).
FLIP_PERMUTATION = np.arange(NUM_JOINTS)
FLIP_PERMUTATION[list(LEFT_JOINTS)] = RIGHT_JOINTS
FLIP_PERMUTATION[list(RIGHT_JOINTS)] = LEFT_JOINTS
FLIP_PERMUTATION.setflags(write=False)

# Bones as (child, parent), one per non-root joint, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((j, int(PARENTS[j])) for j in range(1, NUM_JOINTS))

# Depth of each joint in the tree (root = 0); FK can loop over levels instead of joints.
DEPTH = np.zeros(NUM_JOINTS, dtype=np.int64)
for _j in range(1, NUM_JOINTS):
    DEPTH[_j] = DEPTH[PARENTS[_j]] + 1
DEPTH.setflags(write=False)

# ANCESTORS[j, k] = 1 when k is j or an ancestor of j (root included). With bone vectors
# b_k = p_k - p_parent(k) (b_root = p_root), joints are p = ANCESTORS @ b.
ANCESTORS = np.zeros((NUM_JOINTS, NUM_JOINTS), dtype=np.float64)
for _j in range(NUM_JOINTS):
    _k = _j
    while _k >= 0:
        ANCESTORS[_j, _k] = 1.0
        _k = PARENTS[_k]
ANCESTORS.setflags(write=False)

# BONE_OPERATOR @ p gives the bone vectors b (the inverse of ANCESTORS).
BONE_OPERATOR = np.eye(NUM_JOINTS)
BONE_OPERATOR[np.arange(1, NUM_JOINTS), PARENTS[1:]] = -1.0
BONE_OPERATOR.setflags(write=False)

# Mean Human3.6M bone lengths in mm (training subjects), by child joint; used by the pose prior
# and the mannequin as a reference body.
H36M_BONE_LENGTHS_MM = np.array(
    [0.0, 133.0, 443.0, 454.0, 133.0, 443.0, 454.0, 234.0, 252.0, 116.0, 115.0, 151.0, 279.0, 250.0, 151.0, 279.0, 250.0]
)
H36M_BONE_LENGTHS_MM.setflags(write=False)

# Drawing: one palette for every figure, contact sheet and viewer. Bones and joints take the
# colour of their (child) joint's side: the person's left blue, right red, the midline green.
SIDE_COLOURS_RGB: dict[str, tuple[int, int, int]] = {"left": (40, 110, 255), "right": (235, 50, 50), "centre": (40, 190, 80)}


def joint_side(j: int) -> str:
    """'left', 'right' or 'centre' (the spine, neck and head)."""
    return "left" if j in LEFT_JOINTS else "right" if j in RIGHT_JOINTS else "centre"


def joint_colour_rgb(j: int) -> tuple[int, int, int]:
    """The drawing colour (0-255 RGB) of joint j and of the bone that ends at it."""
    return SIDE_COLOURS_RGB[joint_side(j)]


# ------------------------------------------------------------------------------------------------
# COCO-17
COCO_JOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
COCO_FLIP_PERMUTATION = np.array([0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15])
COCO_FLIP_PERMUTATION.setflags(write=False)


def _coco_to_h36m_matrix() -> np.ndarray:
    c = {n: i for i, n in enumerate(COCO_JOINT_NAMES)}
    m = np.zeros((NUM_JOINTS, len(COCO_JOINT_NAMES)))

    def put(joint: str, weights: dict[str, float]) -> None:
        for name, w in weights.items():
            m[JOINT_INDEX[joint], c[name]] = w

    put("Hip", {"left_hip": 0.5, "right_hip": 0.5})
    put("RHip", {"right_hip": 1.0})
    put("RKnee", {"right_knee": 1.0})
    put("RFoot", {"right_ankle": 1.0})
    put("LHip", {"left_hip": 1.0})
    put("LKnee", {"left_knee": 1.0})
    put("LFoot", {"left_ankle": 1.0})
    # Spine: halfway between the pelvis (mid-hip) and the thorax (mid-shoulder).
    put("Spine", {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25})
    put("Thorax", {"left_shoulder": 0.5, "right_shoulder": 0.5})
    put("Neck/Nose", {"nose": 1.0})
    # Head (top of head) has no COCO counterpart: the mid-point of the ears, the closest stable
    # landmark on the skull; documented as an approximation in docs/conventions.md.
    put("Head", {"left_ear": 0.5, "right_ear": 0.5})
    put("LShoulder", {"left_shoulder": 1.0})
    put("LElbow", {"left_elbow": 1.0})
    put("LWrist", {"left_wrist": 1.0})
    put("RShoulder", {"right_shoulder": 1.0})
    put("RElbow", {"right_elbow": 1.0})
    put("RWrist", {"right_wrist": 1.0})
    return m


# h36m = COCO_TO_H36M @ coco (rows sum to 1, so the map commutes with translation and scaling).
COCO_TO_H36M = _coco_to_h36m_matrix()
COCO_TO_H36M.setflags(write=False)


def _h36m_to_coco_matrix() -> np.ndarray:
    m = np.zeros((len(COCO_JOINT_NAMES), NUM_JOINTS))
    c = {n: i for i, n in enumerate(COCO_JOINT_NAMES)}
    direct = {
        "nose": "Neck/Nose",
        "left_shoulder": "LShoulder",
        "right_shoulder": "RShoulder",
        "left_elbow": "LElbow",
        "right_elbow": "RElbow",
        "left_wrist": "LWrist",
        "right_wrist": "RWrist",
        "left_hip": "LHip",
        "right_hip": "RHip",
        "left_knee": "LKnee",
        "right_knee": "RKnee",
        "left_ankle": "LFoot",
        "right_ankle": "RFoot",
    }
    for coco, h36m in direct.items():
        m[c[coco], JOINT_INDEX[h36m]] = 1.0
    # Eyes and ears have no h36m17 counterpart: they are placed on the head, halfway between the
    # nose and the top of the head, and marked as derived (COCO_DERIVED_FROM_H36M).
    for name in ("left_eye", "right_eye", "left_ear", "right_ear"):
        m[c[name], JOINT_INDEX["Neck/Nose"]] = 0.5
        m[c[name], JOINT_INDEX["Head"]] = 0.5
    return m


H36M_TO_COCO = _h36m_to_coco_matrix()
H36M_TO_COCO.setflags(write=False)
COCO_DERIVED_FROM_H36M = np.array([n in ("left_eye", "right_eye", "left_ear", "right_ear") for n in COCO_JOINT_NAMES])


def coco_to_h36m(keypoints: np.ndarray, confidence: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Map COCO-17 keypoints (..., 17, D) to h36m17 (..., 17, D).

    Returns the joints and a per-joint confidence (..., 17): the minimum confidence of the COCO
    keypoints each joint is built from (1 where none is given). A derived joint whose sources
    are missing (confidence 0) therefore gets confidence 0; callers decide what to do with it,
    nothing is silently NaN.
    """
    keypoints = np.asarray(keypoints)
    joints = np.einsum("jk,...kd->...jd", COCO_TO_H36M, keypoints)
    if confidence is None:
        return joints, np.ones(joints.shape[:-1], dtype=np.float32)
    conf = np.asarray(confidence, dtype=np.float32)
    used = COCO_TO_H36M > 0  # (17, 17) which COCO points feed each joint
    masked = np.where(used, conf[..., None, :], np.inf)
    return joints, masked.min(axis=-1).astype(np.float32)


def h36m_to_coco(joints: np.ndarray) -> np.ndarray:
    """Map h36m17 joints (..., 17, D) to COCO-17 (..., 17, D); eyes/ears are derived (see above)."""
    return np.einsum("kj,...jd->...kd", H36M_TO_COCO, np.asarray(joints))


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Bone lengths (..., 17) by child joint (entry 0, the root, is 0)."""
    joints = np.asarray(joints)
    diff = joints - joints[..., PARENTS.clip(min=0), :]
    return np.linalg.norm(diff, axis=-1)


def flip_left_right(joints: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mirror a pose: negate one coordinate axis and swap left/right joints."""
    out = np.array(joints[..., FLIP_PERMUTATION, :], copy=True)
    out[..., axis] = -out[..., axis]
    return out


# ------------------------------------------------------------------------------------------------
# Bones and facing

# Joints grouped by depth in the tree (level 1 first): forward kinematics and the bone-to-joint
# sum loop over these 5 levels, never over joints or samples.
DEPTH_LEVELS: tuple[np.ndarray, ...] = tuple(np.flatnonzero(DEPTH == d) for d in range(1, int(DEPTH.max()) + 1))


def bones_from_joints(joints: np.ndarray, joint_axis: int = -2) -> np.ndarray:
    """Bone vectors b = BONE_OPERATOR @ p: b_j = p_j - p_parent(j), and b_root = p_root."""
    joints = np.asarray(joints)
    p = np.moveaxis(joints, joint_axis, 0)
    b = p - p[PARENTS.clip(min=0)]
    b[ROOT] = p[ROOT]
    return np.moveaxis(b, 0, joint_axis)


def joints_from_bones(bones: np.ndarray, joint_axis: int = -2, out: np.ndarray | None = None) -> np.ndarray:
    """Joints p = ANCESTORS @ b, summed level by level down the tree (the inverse of `bones_from_joints`).

    `out` may be `bones` itself to convert in place.
    """
    bones = np.asarray(bones)
    if out is None:
        out = np.array(bones, copy=True)
    elif out is not bones:
        np.copyto(out, bones)
    p = np.moveaxis(out, joint_axis, 0)
    for level in DEPTH_LEVELS:
        p[level] += p[PARENTS[level]]
    return out


def facing_yaw(joints: np.ndarray) -> np.ndarray:
    """The direction a world-frame pose (..., 17, 3) faces, as a yaw angle (...,) in radians about z.

    Forward is left x up, where "left" is the horizontal part of the hip and shoulder lines
    (LHip - RHip + LShoulder - RShoulder). Yaw 0 faces +x (the person's left is then +y).
    A pose whose hip and shoulder lines are both vertical (lying on its side) gets a yaw from
    whatever horizontal remainder is left, and 0 if there is none.
    """
    joints = np.asarray(joints)
    left = joints[..., 4, :2] - joints[..., 1, :2] + joints[..., 11, :2] - joints[..., 14, :2]
    # forward = left x up = (left_y, -left_x, 0)
    return np.arctan2(-left[..., 0], left[..., 1])
