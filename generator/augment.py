"""Pose augmentation: global yaw, left/right mirroring and per-subject bone-length scaling.

Pure functions over world-frame poses (..., 17, 3) (mm, z up) with the random generator passed
in. The pair generator and the built-in renderer's scene sampler use mirroring and bone scaling;
they need no yaw, because their camera azimuth is drawn around each person's facing, so
`rotate_yaw` / `augment_poses` serve callers that place people in a world scene. Each keeps the
pelvis where it was and the floor contact: yaw and mirroring move nothing vertically, and bone
scaling puts the lowest joint back at its old height.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .sampling import clipped_normal
from .skeleton import NUM_JOINTS, ROOT, bones_from_joints, flip_left_right, joints_from_bones

FloatRange = tuple[float, float]

# Bones (by child joint) that share one length factor, left and right together.
BONE_GROUPS: dict[str, tuple[int, ...]] = {
    "legs": (2, 3, 5, 6),  # thighs, shins
    "arms": (12, 13, 15, 16),  # upper arms, forearms
    "torso": (1, 4, 7, 8, 11, 14),  # hip and shoulder widths, spine
    "head": (9, 10),  # neck, head
}
# BONE_GROUP_OF[j]: the row of bone j in the factor table of `sample_bone_scales`: 0 is the
# root (always 1), 1 the overall height, 2.. the groups in BONE_GROUPS order.
BONE_GROUP_OF = np.zeros(NUM_JOINTS, dtype=np.int64)
for _g, _bones in enumerate(BONE_GROUPS.values()):
    BONE_GROUP_OF[list(_bones)] = 2 + _g
BONE_GROUP_OF.setflags(write=False)


class BoneScaleConfig(BaseModel):
    """Body-shape variety: an overall height factor times one factor per bone group.

    Defaults: adult stature varies by about 4-5 % (one standard deviation) around the mean, and
    segment proportions by about 3 %; draws are clipped to the ranges.
    """

    model_config = ConfigDict(extra="forbid")

    height_std: float = Field(0.045, ge=0.0)
    height_range: FloatRange = (0.85, 1.15)
    group_std: float = Field(0.03, ge=0.0)
    group_range: FloatRange = (0.9, 1.1)

    @model_validator(mode="after")
    def _check(self) -> "BoneScaleConfig":
        for name in ("height_range", "group_range"):
            low, high = getattr(self, name)
            if not 0.0 < low <= 1.0 <= high:
                raise ValueError(f"{name} must satisfy 0 < low <= 1 <= high, got {(low, high)}")
        return self


class AugmentConfig(BaseModel):
    """Which augmentations to apply, and their ranges."""

    model_config = ConfigDict(extra="forbid")

    yaw_deg: FloatRange | None = (-180.0, 180.0)  # None: keep each pose's facing
    mirror_probability: float = Field(0.5, ge=0.0, le=1.0)
    bone_scale: BoneScaleConfig | None = Field(default_factory=BoneScaleConfig)  # None: keep bone lengths


def sample_bone_scales(rng: np.random.Generator, n: int, config: BoneScaleConfig, dtype=np.float32, bone_axis: int = -1) -> np.ndarray:
    """Per-bone length factors for n subjects: (n, 17) (or (17, n) with bone_axis=0); the root's is 1."""
    factors = np.empty((2 + len(BONE_GROUPS), n), dtype=dtype)
    factors[0] = 1.0
    factors[1] = clipped_normal(rng, n, 1.0, config.height_std, *config.height_range, dtype=dtype)
    factors[2:] = clipped_normal(rng, (len(BONE_GROUPS), n), 1.0, config.group_std, *config.group_range, dtype=dtype)
    factors[2:] *= factors[1]
    scales = factors.take(BONE_GROUP_OF, axis=0)  # (17, n)
    scales[ROOT] = 1.0
    return scales if bone_axis == 0 else np.moveaxis(scales, 0, bone_axis)


def scale_bones(joints: np.ndarray, scales: np.ndarray, keep_floor: bool = True) -> np.ndarray:
    """Scale each bone of poses (..., 17, 3) by `scales` (..., 17): p' = A diag(s) D p.

    The pelvis stays put (its entry in `scales` is ignored); with `keep_floor` the pose is then
    shifted vertically so that its lowest joint keeps its height (feet stay on the floor).
    """
    joints = np.asarray(joints)
    bones = bones_from_joints(joints)
    scales = np.array(scales, dtype=bones.dtype)
    scales[..., ROOT] = 1.0
    bones *= scales[..., None]
    out = joints_from_bones(bones, out=bones)
    if keep_floor:
        out[..., 2] += (joints[..., 2].min(axis=-1) - out[..., 2].min(axis=-1))[..., None]
    return out


def rotate_yaw(joints: np.ndarray, yaw_rad) -> np.ndarray:
    """Rotate poses (..., 17, 3) by `yaw_rad` (... or scalar) about the world z axis through the pelvis."""
    joints = np.asarray(joints)
    yaw = np.asarray(yaw_rad, dtype=joints.dtype)[..., None]
    c, s = np.cos(yaw), np.sin(yaw)
    pelvis = joints[..., ROOT : ROOT + 1, :]
    x = joints[..., 0] - pelvis[..., 0]
    y = joints[..., 1] - pelvis[..., 1]
    out = np.array(joints, copy=True)
    out[..., 0] = pelvis[..., 0] + c * x - s * y
    out[..., 1] = pelvis[..., 1] + s * x + c * y
    return out


def mirror(joints: np.ndarray) -> np.ndarray:
    """Mirror poses (..., 17, 3) left/right through the vertical plane x = pelvis x.

    The person's left becomes their right (`skeleton.flip_left_right`); the pelvis and the
    heights stay put.
    """
    joints = np.asarray(joints)
    pelvis_x = joints[..., ROOT : ROOT + 1, 0]
    out = flip_left_right(joints, axis=0)
    out[..., 0] += 2.0 * pelvis_x
    return out


def augment_poses(rng: np.random.Generator, joints: np.ndarray, config: AugmentConfig) -> np.ndarray:
    """Apply the configured augmentations to poses (n, 17, 3), each pose drawing its own values.

    Order: bone scaling, then mirroring, then yaw (each leaves the pelvis and floor contact).
    """
    out = np.asarray(joints)
    n = out.shape[0]
    if config.bone_scale is not None:
        out = scale_bones(out, sample_bone_scales(rng, n, config.bone_scale, dtype=out.dtype))
    if config.mirror_probability > 0:
        flip = rng.random(n) < config.mirror_probability
        out = np.where(flip[:, None, None], mirror(out), out)
    if config.yaw_deg is not None:
        out = rotate_yaw(out, np.deg2rad(rng.uniform(*config.yaw_deg, n)))
    return np.array(out, copy=out is joints)
