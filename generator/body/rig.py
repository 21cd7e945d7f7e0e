"""Anny's 104-bone rig reduced to the 16 segments that h36m17 poses can drive, the h36m17 joints
defined on the body, and retargeting: the segment rotations that point the body's limbs along a
target pose's limbs.

A segment is a group of bones that move rigidly together (fingers move with the forearm, toes with
the shin). Posing gives each segment a rotation Q and translation t in world millimetres; a rest
point x of that segment goes to Q x + t. Vertices blend up to eight segments (linear blend
skinning); the same formula runs in the vertex shader and in `skin_points`.

Retargeting solves for directions only, so the body keeps its own bone lengths: the posed body's
joints lie on the target's limb directions, at the body's own distances. The ground truth of a
rendered frame is therefore the posed body's joints (`posed_joints`), never the target's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..skeleton import JOINT_INDEX

# (name, parent segment, the bones that start it). Bones not named inherit their parent bone's segment.
SEGMENTS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("pelvis", None, ("root", "pelvis.L", "pelvis.R", "spine05")),
    ("spine04", "pelvis", ("spine04",)),
    ("spine03", "spine04", ("spine03",)),
    ("spine02", "spine03", ("spine02",)),
    ("chest", "spine02", ("spine01",)),
    ("neck01", "chest", ("neck01",)),
    ("neck02", "neck01", ("neck02",)),
    ("head", "neck02", ("neck03",)),
    ("thigh.L", "pelvis", ("upperleg01.L",)),
    ("shin.L", "thigh.L", ("lowerleg01.L",)),
    ("thigh.R", "pelvis", ("upperleg01.R",)),
    ("shin.R", "thigh.R", ("lowerleg01.R",)),
    ("upperarm.L", "chest", ("upperarm01.L",)),
    ("forearm.L", "upperarm.L", ("lowerarm01.L",)),
    ("upperarm.R", "chest", ("upperarm01.R",)),
    ("forearm.R", "upperarm.R", ("lowerarm01.R",)),
)
SEGMENT_INDEX = {name: i for i, (name, _, _) in enumerate(SEGMENTS)}
SEGMENT_PARENT = np.array([-1 if p is None else SEGMENT_INDEX[p] for _, p, _ in SEGMENTS])
SEGMENT_PIVOT_BONE = tuple(bones[0] for _, _, bones in SEGMENTS)  # the segment rotates about this bone's head

# The h36m17 joints on the body: each is the mean of bone heads and named vertices (landmarks),
# with the meanings of docs/conventions.md's h36m17 table and mocap name maps: the pelvis is the
# mid-hip, the spine halfway to the thorax, the thorax the base of the neck where the clavicles
# start, Neck/Nose the upper neck at chin level, the head its top.
BODY_JOINTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Hip": (("upperleg01.L", "upperleg01.R"), ()),
    "RHip": (("upperleg01.R",), ()),
    "RKnee": (("lowerleg01.R",), ()),
    "RFoot": (("foot.R",), ()),
    "LHip": (("upperleg01.L",), ()),
    "LKnee": (("lowerleg01.L",), ()),
    "LFoot": (("foot.L",), ()),
    "Spine": (("upperleg01.L", "upperleg01.R", "clavicle.L", "clavicle.R"), ()),
    "Thorax": (("clavicle.L", "clavicle.R"), ()),
    "Neck/Nose": (("neck03", "head"), ()),
    "Head": ((), ("head_top",)),
    "LShoulder": (("upperarm01.L",), ()),
    "LElbow": (("lowerarm01.L",), ()),
    "LWrist": (("wrist.L",), ()),
    "RShoulder": (("upperarm01.R",), ()),
    "RElbow": (("lowerarm01.R",), ()),
    "RWrist": (("wrist.R",), ()),
}
LANDMARKS = ("head_top",)
# Below this limb bend (sine of the angle) the hinge axis of a knee or elbow is taken from the rest twist.
_HINGE_BEND_SIN = np.sin(np.radians(25.0))


def segment_of_bones(labels: tuple[str, ...], parents: np.ndarray) -> np.ndarray:
    """(B,) segment id of every bone; bones are listed parents first."""
    named = {bone: i for i, (_, _, bones) in enumerate(SEGMENTS) for bone in bones}
    missing = sorted(set(named) - set(labels))
    if missing:
        raise ValueError(f"the body rig lacks the bones {missing}")
    seg = np.empty(len(labels), np.int64)
    for b, label in enumerate(labels):
        seg[b] = named[label] if label in named else seg[parents[b]]
    return seg


@dataclasses.dataclass(frozen=True)
class BodyPose:
    """Where each segment goes: rest point x of segment s moves to rotations[s] @ x + translations[s]."""

    rotations: np.ndarray  # (S, 3, 3)
    translations: np.ndarray  # (S, 3) mm

    def rows(self) -> np.ndarray:
        """(S, 3, 4) float32 [Q | t], the layout of the vertex shader's uniform."""
        return np.concatenate([self.rotations, self.translations[:, :, None]], axis=2).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class JointRig:
    """What retargeting and the joints need from one identity: rest pivots and joint anchors."""

    pivots: np.ndarray  # (S, 3) rest position of each segment's pivot, mm
    anchor_points: np.ndarray  # (A, 3) rest positions of the joint bones' heads and the landmarks, mm
    anchor_segments: np.ndarray  # (A, k) segment ids
    anchor_weights: np.ndarray  # (A, k)
    joint_matrix: np.ndarray  # (17, A): joints = joint_matrix @ anchors

    def rest_joints(self) -> np.ndarray:
        return self.joint_matrix @ self.anchor_points


def joint_rig(bone_labels, bone_heads: np.ndarray, segment_of_bone: np.ndarray, landmarks: dict[str, int],
              vertices: np.ndarray, influence_segments: np.ndarray, influence_weights: np.ndarray) -> JointRig:
    """The JointRig of one identity from its rest bone heads (B, 3) and rest vertices (V, 3)."""
    bones = sorted({b for bs, _ in BODY_JOINTS.values() for b in bs}, key=bone_labels.index)
    names = list(bones) + list(LANDMARKS)
    bone_ids = [bone_labels.index(b) for b in bones]
    vertex_ids = [landmarks[n] for n in LANDMARKS]
    points = np.concatenate([bone_heads[bone_ids], vertices[vertex_ids]]).astype(np.float64)
    # A bone head moves with its own segment alone (it is that segment's or an inner bone's head).
    segs = np.zeros((len(names), influence_segments.shape[1]), np.int64)
    weights = np.zeros((len(names), influence_segments.shape[1]))
    segs[: len(bones), 0] = segment_of_bone[bone_ids]
    weights[: len(bones), 0] = 1.0
    segs[len(bones):] = influence_segments[vertex_ids]
    weights[len(bones):] = influence_weights[vertex_ids]
    matrix = np.zeros((17, len(names)))
    for joint, (jb, jv) in BODY_JOINTS.items():
        used = [names.index(n) for n in jb + jv]
        matrix[JOINT_INDEX[joint], used] = 1.0 / len(used)
    pivot_ids = [bone_labels.index(b) for b in SEGMENT_PIVOT_BONE]
    return JointRig(bone_heads[pivot_ids].astype(np.float64), points, segs, weights, matrix)


def skin_points(pose: BodyPose, points: np.ndarray, segments: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Linear blend skinning of rest points (N, 3) with (N, k) segment ids and weights: the vertex shader's math."""
    moved = np.einsum("nkij,nj->nki", pose.rotations[segments], points) + pose.translations[segments]
    return np.einsum("nk,nki->ni", weights, moved)


def posed_joints(rig: JointRig, pose: BodyPose) -> np.ndarray:
    """The h36m17 joints (17, 3) mm of the posed body."""
    return rig.joint_matrix @ skin_points(pose, rig.anchor_points, rig.anchor_segments, rig.anchor_weights)


def body_joints_rest(rig: JointRig) -> np.ndarray:
    return rig.rest_joints()


# ------------------------------------------------------------------------------------------------
# Rotation helpers, batched over a leading axis: posing runs three dependency levels, each one call.


_YZX, _ZXY = [1, 2, 0], [2, 0, 1]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a[..., _YZX] * b[..., _ZXY] - a[..., _ZXY] * b[..., _YZX]  # np.cross, without its axis handling


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt((v * v).sum(axis=-1, keepdims=True))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(_norm(v), 1e-12)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1, keepdims=True)


def _frame(lateral: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotations (n, 3, 3) whose columns are lateral, up x lateral and up, orthonormalized on up."""
    z = _unit(up)
    x = _unit(lateral - _dot(lateral, z) * z)
    return np.stack([x, _cross(z, x), z], axis=-1)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotations (n, 3, 3) about unit axes (n, 3) by angles (n,)."""
    x, y, z = _unit(axis).T
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(-1, 3, 3)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotations (n, 3, 3) taking directions a (n, 3) to directions b (n, 3)."""
    a, b = _unit(a), _unit(b)
    axis = _cross(a, b)
    s, c = _norm(axis)[..., 0], _dot(a, b)[..., 0]
    # Opposite directions: half a turn about any axis across a.
    helper = np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    axis = np.where((s < 1e-9)[:, None], _cross(a, helper), axis)
    return _axis_angle(axis, np.where((s < 1e-9) & (c > 0), 0.0, np.arctan2(s, c)))


def _log(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (n, 3) of rotations (n, 3, 3)."""
    angle = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0))
    v = np.stack([R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], axis=-1)
    sin = np.sin(angle)
    scale = np.where(angle < 1e-9, 0.5, angle / (2.0 * np.where(sin > 1e-12, sin, 1.0)))
    out = v * scale[:, None]
    half = np.pi - angle < 1e-6  # a half turn: the axis is the column of R + I with the largest norm
    if half.any():
        m = R[half] + np.eye(3)
        col = np.argmax(np.linalg.norm(m, axis=1), axis=-1)
        out[half] = _unit(m[np.arange(len(m)), :, col]) * angle[half, None]
    return out


def _slerp(R0: np.ndarray, R1: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Rotations f (n,) of the way from R0 to R1 (n, 3, 3)."""
    w = _log(np.swapaxes(R0, 1, 2) @ R1)
    return R0 @ _axis_angle(w, f * _norm(w)[..., 0])


def _hinged(parent_q: np.ndarray, d_rest: np.ndarray, d_target: np.ndarray, hinge_rest: np.ndarray, child_target: np.ndarray) -> np.ndarray:
    """Rotations (n, 3, 3) of upper limbs: the direction from the target, the twist from the plane
    the limb bends in (knee, elbow), falling back to the least twist from the parent when straight."""
    swing = _swing(np.einsum("nij,nj->ni", parent_q, d_rest), d_target) @ parent_q
    fallback = np.einsum("nij,nj->ni", swing, hinge_rest)
    bend = _cross(_unit(d_target), _unit(child_target))
    w = np.minimum(_norm(bend) / _HINGE_BEND_SIN, 1.0)
    hinge = w * _unit(bend) + (1.0 - w) * fallback
    # Where the bend axis opposes the rest twist half-way, keep the rest twist.
    hinge = np.where(_norm(hinge) < 0.3, fallback, hinge)
    d_t, d_r = _unit(d_target), _unit(d_rest)
    h_t = _unit(hinge - _dot(hinge, d_t) * d_t)
    h_r = _unit(hinge_rest - _dot(hinge_rest, d_r) * d_r)
    target = np.stack([d_t, h_t, _cross(d_t, h_t)], axis=-1)
    rest = np.stack([d_r, h_r, _cross(d_r, h_r)], axis=-1)
    return target @ np.swapaxes(rest, 1, 2)


def _pairs(P: np.ndarray, names: list[tuple[str, str]]) -> np.ndarray:
    """(n, 3) vectors P[b] - P[a] for named joint pairs (a, b)."""
    return P[[JOINT_INDEX[y] for _, y in names]] - P[[JOINT_INDEX[x] for x, _ in names]]


_TORSO = [("RHip", "LHip"), ("Hip", "Spine"), ("RShoulder", "LShoulder"), ("Spine", "Thorax")]
_LIMBS = [(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in (("Hip", "Knee"), ("Shoulder", "Elbow"))]  # thigh.L, upperarm.L, ...
_ENDS = [(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in (("Knee", "Foot"), ("Elbow", "Wrist"))]  # shin.L, forearm.L, ...
_LIMB_SEGMENTS = [f"{k}.{s}" for s in "LR" for k in ("thigh", "upperarm")]
_END_SEGMENTS = [f"{k}.{s}" for s in "LR" for k in ("shin", "forearm")]
_SPINE = [("spine04", 0.25), ("spine03", 0.5), ("spine02", 0.75)]


def pose_body(rig: JointRig, target: np.ndarray) -> BodyPose:
    """Segment rotations that align the body's limbs with the target h36m17 joints (17, 3) mm, and
    translations that put the body's Hip on the target's Hip."""
    J = np.asarray(target, dtype=np.float64)
    B = rig.rest_joints()
    s = SEGMENT_INDEX
    Q = np.zeros((len(SEGMENTS), 3, 3))
    # Level 0: the pelvis from the hips and the lower spine, the chest from the shoulders and the upper spine.
    tj, tb = _pairs(J, _TORSO), _pairs(B, _TORSO)
    pelvis, chest = _frame(tj[[0, 2]], tj[[1, 3]]) @ np.swapaxes(_frame(tb[[0, 2]], tb[[1, 3]]), 1, 2)
    Q[s["pelvis"]], Q[s["chest"]] = pelvis, chest
    # Level 1: the spine between them, the head, the thighs and upper arms.
    Q[[s[n] for n, _ in _SPINE]] = _slerp(np.repeat(pelvis[None], 3, 0), np.repeat(chest[None], 3, 0), np.array([f for _, f in _SPINE]))
    head_rest, head_target = _pairs(B, [("Thorax", "Head")]), _pairs(J, [("Thorax", "Head")])
    head = (_swing(head_rest @ chest.T, head_target) @ chest)[0]
    Q[s["head"]] = head
    parents = np.stack([pelvis, chest, pelvis, chest])
    lateral = _unit(tb[0])
    arm_hinge = _cross(_unit(_pairs(B, _LIMBS)), _unit(_pairs(B, _ENDS)))
    hinge_rest = np.stack([lateral, arm_hinge[1], lateral, arm_hinge[3]])
    limbs = _hinged(parents, _pairs(B, _LIMBS), _pairs(J, _LIMBS), hinge_rest, _pairs(J, _ENDS))
    Q[[s[n] for n in _LIMB_SEGMENTS]] = limbs
    # Level 2: the neck, the shins and forearms.
    Q[[s["neck01"], s["neck02"]]] = _slerp(np.stack([chest, chest]), np.stack([head, head]), np.array([1.0, 2.0]) / 3.0)
    ends_rest = np.einsum("nij,nj->ni", limbs, _pairs(B, _ENDS))
    Q[[s[n] for n in _END_SEGMENTS]] = _swing(ends_rest, _pairs(J, _ENDS)) @ limbs
    t = np.zeros((len(SEGMENTS), 3))
    t[0] = J[JOINT_INDEX["Hip"]] - pelvis @ B[JOINT_INDEX["Hip"]]
    for k in range(1, len(SEGMENTS)):  # parents come first in SEGMENTS
        p = SEGMENT_PARENT[k]
        t[k] = t[p] + (Q[p] - Q[k]) @ rig.pivots[k]
    return BodyPose(Q, t)
