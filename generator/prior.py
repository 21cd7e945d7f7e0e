"""A pose prior that needs no data: random joint angles within anatomical limits.

Each bone of the h36m17 tree gets a local rotation from three angles (flexion about the
person's left-right axis, abduction about the front-back axis, twist about the bone's rest
axis), drawn uniformly within the limits of a `PriorConfig`. Forward kinematics over the tree,
with the Human3.6M mean bone lengths and an upright rest pose, turns them into joints. Three
kinds of pose come out:

* standing (most): one leg is the stance leg, with small hip and knee angles; the other leg,
  the spine, neck and arms range over their full limits; the root leans a little;
* crouching: both legs deeply flexed, the trunk leaning forward;
* lying: the body laid down on its back, front or side, every joint free.

Poses are in the world frame (mm, z up) with their lowest joint on the floor z = 0 (for
standing and crouching poses that is a foot), the pelvis above the origin, facing a yaw drawn
from `yaw_deg` (0 faces +x, the person's left is then +y).

Limits follow the usual clinical ranges of motion (AAOS), trimmed towards what people do in
everyday motion. Angles in the config are degrees; positive flexion bends a joint forward (the
knee backward), positive abduction moves a limb away from the midline, positive twist of a limb
is internal rotation; right limbs mirror left ones.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .skeleton import DEPTH_LEVELS, H36M_BONE_LENGTHS_MM, NUM_JOINTS, PARENTS

FloatRange = tuple[float, float]


class PriorConfig(BaseModel):
    """Joint limits (degrees) and pose-kind fractions of the pose prior."""

    model_config = ConfigDict(extra="forbid")

    # Root: facing and lean of standing poses (pitch > 0 leans forward, roll > 0 to the right).
    yaw_deg: FloatRange = (-180.0, 180.0)
    lean_forward_deg: FloatRange = (-10.0, 20.0)
    lean_side_deg: FloatRange = (-10.0, 10.0)
    crouch_fraction: float = Field(0.1, ge=0.0, le=1.0)
    lying_fraction: float = Field(0.05, ge=0.0, le=1.0)
    # Everyday poses: this fraction of samples draws every angle from its range shrunk towards
    # the rest angle (0, or the nearest limit) by `relaxed_scale`; the rest use the full ranges.
    relaxed_fraction: float = Field(0.5, ge=0.0, le=1.0)
    relaxed_scale: float = Field(0.35, gt=0.0, le=1.0)

    # Spine, split into a lumbar (pelvis -> spine) and a thoracic (spine -> thorax) segment.
    lumbar_flex_deg: FloatRange = (-15.0, 40.0)
    lumbar_bend_deg: FloatRange = (-20.0, 20.0)
    lumbar_twist_deg: FloatRange = (-15.0, 15.0)
    thoracic_flex_deg: FloatRange = (-10.0, 30.0)
    thoracic_bend_deg: FloatRange = (-15.0, 15.0)
    thoracic_twist_deg: FloatRange = (-25.0, 25.0)
    neck_flex_deg: FloatRange = (-40.0, 50.0)
    neck_bend_deg: FloatRange = (-30.0, 30.0)
    neck_twist_deg: FloatRange = (-60.0, 60.0)
    head_flex_deg: FloatRange = (-20.0, 20.0)

    # Legs (a free leg; the stance leg of a standing pose uses the stance_* limits).
    hip_flex_deg: FloatRange = (-20.0, 120.0)
    hip_abduct_deg: FloatRange = (-25.0, 45.0)
    hip_rotate_deg: FloatRange = (-40.0, 45.0)
    knee_flex_deg: FloatRange = (0.0, 150.0)
    stance_hip_flex_deg: FloatRange = (-15.0, 35.0)
    stance_hip_abduct_deg: FloatRange = (-10.0, 20.0)
    stance_knee_flex_deg: FloatRange = (0.0, 35.0)
    crouch_hip_flex_deg: FloatRange = (60.0, 125.0)
    crouch_knee_flex_deg: FloatRange = (80.0, 150.0)
    crouch_lean_forward_deg: FloatRange = (10.0, 45.0)

    # Arms. Shoulder flexion raises the arm forward (180 = overhead), abduction sideways.
    clavicle_elevate_deg: FloatRange = (-5.0, 15.0)
    clavicle_protract_deg: FloatRange = (-10.0, 15.0)
    shoulder_flex_deg: FloatRange = (-50.0, 180.0)
    shoulder_abduct_deg: FloatRange = (-30.0, 90.0)
    shoulder_rotate_deg: FloatRange = (-80.0, 80.0)
    elbow_flex_deg: FloatRange = (0.0, 145.0)

    @model_validator(mode="after")
    def _check(self) -> "PriorConfig":
        for name, value in self:
            if name.endswith("_deg") and value[0] > value[1]:
                raise ValueError(f"{name}: low {value[0]} > high {value[1]}")
        if self.knee_flex_deg[0] < 0 or self.stance_knee_flex_deg[0] < 0 or self.crouch_knee_flex_deg[0] < 0:
            raise ValueError("knee flexion limits must be >= 0 (a knee does not bend backwards)")
        if self.elbow_flex_deg[0] < 0:
            raise ValueError("elbow_flex_deg must be >= 0 (an elbow does not bend backwards)")
        if self.crouch_fraction + self.lying_fraction > 1.0:
            raise ValueError("crouch_fraction + lying_fraction must not exceed 1")
        return self


# Rest pose in the body frame (x forward, y the person's left, z up): unit bone directions,
# scaled by the Human3.6M mean bone lengths. Arms hang down, the nose sits forward of the neck.
_REST_DIRECTIONS = np.array(
    [
        [0.0, 0.0, 0.0],  # 0 Hip (root)
        [0.0, -1.0, 0.0],  # 1 RHip
        [0.0, 0.0, -1.0],  # 2 RKnee
        [0.0, 0.0, -1.0],  # 3 RFoot
        [0.0, 1.0, 0.0],  # 4 LHip
        [0.0, 0.0, -1.0],  # 5 LKnee
        [0.0, 0.0, -1.0],  # 6 LFoot
        [0.0, 0.0, 1.0],  # 7 Spine
        [0.0, 0.0, 1.0],  # 8 Thorax
        [0.5, 0.0, 0.866],  # 9 Neck/Nose
        [-0.3, 0.0, 0.954],  # 10 Head
        [0.0, 0.995, -0.1],  # 11 LShoulder
        [0.0, 0.0, -1.0],  # 12 LElbow
        [0.0, 0.0, -1.0],  # 13 LWrist
        [0.0, -0.995, -0.1],  # 14 RShoulder
        [0.0, 0.0, -1.0],  # 15 RElbow
        [0.0, 0.0, -1.0],  # 16 RWrist
    ]
)
_REST_DIRECTIONS[1:] /= np.linalg.norm(_REST_DIRECTIONS[1:], axis=1, keepdims=True)
REST_OFFSETS_MM = _REST_DIRECTIONS * H36M_BONE_LENGTHS_MM[:, None]
REST_OFFSETS_MM.setflags(write=False)

# Which config limits drive each bone's (flexion, abduction, twist), and the sign that turns the
# anatomical angle into a rotation about the body axes (y for flexion, x for abduction, z for
# twist). A rotation about +y swings a downward bone backward and an upward bone forward; one
# about +x swings a downward bone to the left. Right limbs negate abduction and twist (mirror).
_LEFT, _RIGHT = 1.0, -1.0
_BONE_ANGLES: dict[int, tuple[tuple[str | None, str | None, str | None], tuple[float, float, float]]] = {
    2: (("hip_flex_deg", "hip_abduct_deg", "hip_rotate_deg"), (-1.0, _RIGHT, -_RIGHT)),
    3: (("knee_flex_deg", None, None), (1.0, 0.0, 0.0)),
    5: (("hip_flex_deg", "hip_abduct_deg", "hip_rotate_deg"), (-1.0, _LEFT, -_LEFT)),
    6: (("knee_flex_deg", None, None), (1.0, 0.0, 0.0)),
    7: (("lumbar_flex_deg", "lumbar_bend_deg", "lumbar_twist_deg"), (1.0, -1.0, 1.0)),
    8: (("thoracic_flex_deg", "thoracic_bend_deg", "thoracic_twist_deg"), (1.0, -1.0, 1.0)),
    9: (("neck_flex_deg", "neck_bend_deg", "neck_twist_deg"), (1.0, -1.0, 1.0)),
    10: (("head_flex_deg", None, None), (1.0, 0.0, 0.0)),
    # Clavicles: elevation lifts the shoulder (about x), protraction brings it forward (about z).
    11: ((None, "clavicle_elevate_deg", "clavicle_protract_deg"), (0.0, _LEFT, -_LEFT)),
    12: (("shoulder_flex_deg", "shoulder_abduct_deg", "shoulder_rotate_deg"), (-1.0, _LEFT, -_LEFT)),
    13: (("elbow_flex_deg", None, None), (-1.0, 0.0, 0.0)),
    14: ((None, "clavicle_elevate_deg", "clavicle_protract_deg"), (0.0, _RIGHT, -_RIGHT)),
    15: (("shoulder_flex_deg", "shoulder_abduct_deg", "shoulder_rotate_deg"), (-1.0, _RIGHT, -_RIGHT)),
    16: (("elbow_flex_deg", None, None), (-1.0, 0.0, 0.0)),
}
_SIGNS = np.zeros((NUM_JOINTS, 3))
for _bone, (_names, _signs) in _BONE_ANGLES.items():
    _SIGNS[_bone] = _signs

POSE_STANDING, POSE_CROUCHING, POSE_LYING = 0, 1, 2
_BLOCK = 16384  # samples per FK pass: bounds the (block, 17, 3, 3) rotation temporaries


def _limit_table(config: PriorConfig, kind: int, stance_right: bool, relaxed: bool) -> np.ndarray:
    """(17, 3, 2) radians: low/high of each bone's three angles for one kind of pose."""
    table = np.zeros((NUM_JOINTS, 3, 2))
    for bone, (names, _) in _BONE_ANGLES.items():
        for axis, name in enumerate(names):
            if name is not None:
                table[bone, axis] = getattr(config, name)
    if kind == POSE_STANDING:
        stance_thigh, stance_shin = (2, 3) if stance_right else (5, 6)
        table[stance_thigh, 0] = config.stance_hip_flex_deg
        table[stance_thigh, 1] = config.stance_hip_abduct_deg
        table[stance_shin, 0] = config.stance_knee_flex_deg
    elif kind == POSE_CROUCHING:
        for thigh, shin in ((2, 3), (5, 6)):
            table[thigh, 0] = config.crouch_hip_flex_deg
            table[shin, 0] = config.crouch_knee_flex_deg
            table[thigh, 1] = (max(0.0, config.hip_abduct_deg[0]), config.hip_abduct_deg[1])
    if relaxed:
        rest = np.clip(0.0, table[..., 0], table[..., 1])  # the rest angle 0, clipped into [lo, hi]
        table = rest[..., None] + (table - rest[..., None]) * config.relaxed_scale
    return np.deg2rad(table)


def _euler_yxz(a_y: np.ndarray, a_x: np.ndarray, a_z: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of Ry(a_y) Rx(a_x) Rz(a_z) (intrinsic y, then x, then z)."""
    cy, sy = np.cos(a_y), np.sin(a_y)
    cx, sx = np.cos(a_x), np.sin(a_x)
    cz, sz = np.cos(a_z), np.sin(a_z)
    R = np.empty(a_y.shape + (3, 3))
    R[..., 0, 0] = cy * cz + sy * sx * sz
    R[..., 0, 1] = -cy * sz + sy * sx * cz
    R[..., 0, 2] = sy * cx
    R[..., 1, 0] = cx * sz
    R[..., 1, 1] = cx * cz
    R[..., 1, 2] = -sx
    R[..., 2, 0] = -sy * cz + cy * sx * sz
    R[..., 2, 1] = sy * sz + cy * sx * cz
    R[..., 2, 2] = cy * cx
    return R


def forward_kinematics(local_rotations: np.ndarray, root_rotation: np.ndarray, offsets: np.ndarray = REST_OFFSETS_MM) -> np.ndarray:
    """Pelvis-relative joints (n, 17, 3) from per-bone local rotations (n, 17, 3, 3).

    Bone j's frame is its parent's frame times its local rotation (the root's frame is
    `root_rotation` (n, 3, 3)), and joint j sits at its parent plus that frame applied to the rest
    offset of bone j. The loop runs over the tree's depth levels, never over samples.
    """
    n = local_rotations.shape[0]
    frames = np.empty((n, NUM_JOINTS, 3, 3))
    joints = np.zeros((n, NUM_JOINTS, 3))
    frames[:, 0] = root_rotation
    for level in DEPTH_LEVELS:
        parent = PARENTS[level]
        frames[:, level] = frames[:, parent] @ local_rotations[:, level]
        joints[:, level] = joints[:, parent] + np.einsum("nkij,kj->nki", frames[:, level], offsets[level])
    return joints


def _sample_block(rng: np.random.Generator, n: int, config: PriorConfig) -> np.ndarray:
    u = rng.random(n)
    kind = np.where(u < config.lying_fraction, POSE_LYING, np.where(u < config.lying_fraction + config.crouch_fraction, POSE_CROUCHING, POSE_STANDING))
    stance_right = rng.random(n) < 0.5
    relaxed = rng.random(n) < config.relaxed_fraction
    # Limits per sample: one table per (kind, stance side, relaxed), picked by index.
    tables = np.stack([_limit_table(config, k, s, r) for k in (0, 1, 2) for s in (False, True) for r in (False, True)])
    limits = tables[kind * 4 + stance_right * 2 + relaxed]  # (n, 17, 3, 2)
    angles = limits[..., 0] + rng.random((n, NUM_JOINTS, 3)) * (limits[..., 1] - limits[..., 0])
    angles *= _SIGNS
    local = _euler_yxz(angles[..., 0], angles[..., 1], angles[..., 2])

    # Root: yaw, then a lean (pitch about the body's y, roll about its x); lying poses are laid
    # down on their back or front (pitch +-90 deg, +-10) and spun about their long axis first.
    rad = np.pi / 180.0
    yaw = rng.uniform(*config.yaw_deg, n) * rad
    lean = np.where(kind == POSE_CROUCHING, rng.uniform(*config.crouch_lean_forward_deg, n), rng.uniform(*config.lean_forward_deg, n)) * rad
    side = rng.uniform(*config.lean_side_deg, n) * rad
    lying = kind == POSE_LYING
    lay = np.where(rng.random(n) < 0.5, 90.0, -90.0) + rng.uniform(-10.0, 10.0, n)
    pitch = np.where(lying, lay * rad, lean)
    spin = np.where(lying, rng.uniform(-np.pi, np.pi, n), 0.0)
    zeros = np.zeros(n)
    root = _euler_yxz(zeros, zeros, yaw) @ _euler_yxz(pitch, np.where(lying, 0.0, side), spin)

    joints = forward_kinematics(local, root)
    joints[..., 2] -= joints[..., 2].min(axis=1, keepdims=True)  # the lowest joint on the floor
    return joints


def sample_prior_poses(rng: np.random.Generator, n: int, config: PriorConfig | None = None) -> np.ndarray:
    """n random plausible poses (n, 17, 3) float32, world frame (mm, z up), lowest joint at z = 0."""
    config = config or PriorConfig()
    out = np.empty((n, NUM_JOINTS, 3), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        stop = min(n, start + _BLOCK)
        out[start:stop] = _sample_block(rng, stop - start, config)
    return out
