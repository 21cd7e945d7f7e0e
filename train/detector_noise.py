"""A vectorized model of a 2D keypoint detector's errors, applied to clean (synthetic) 2D poses.

The label generator is trained on perfect projected 2D, but in the wild it lifts what a 2D
detector (Stacked Hourglass, COCO-style top-down or bottom-up networks) reports. Those errors are
not i.i.d. Gaussian; the error analyses of COCO keypoints (Ronchi & Perona, "Benchmarking and
Error Diagnosis in Multi-Instance Pose Estimation", ICCV 2017: jitter, inversion, swap, miss) and
the lifting literature (Martinez et al. 2017 train on SH detections for this reason) name:

1. **Definition bias**: a detector's joints are defined elsewhere than ours (COCO has no thorax,
   neck or head top: a "thorax" is the shoulder mid-point, a head comes from the ears, a pelvis
   from the hip mid-point), so Thorax, Neck/Nose, Head and the pelvis sit off along the body's
   up axis by a per-sample amount.
2. **Jitter**: small localization noise that grows towards the extremities (wrists and ankles
   are localized worst, the torso best).
3. **Inversion (left/right swap)** of a limb's distal joints: the classic detector confusion.
4. **Gross errors** (Ronchi & Perona's "miss" and "swap"): a head, hand or foot joint put on
   some other image structure or person, far from the truth.
5. **Missing detections** (a low score, dropped): importers fill the joint in, here on its parent.

`detector_noise` applies them in that order (bias, Gaussian, swaps, displacements, misses), so
a missed joint sits exactly on its parent's *reported* position, as an importer would put it.
Every term is relative to the per-sample 2D torso size, so the function works in any 2D units
where x and y share a scale (pixels, normalized image coordinates) and commutes with scaling
and translation. The random draws per sample are fixed in number and order, whatever the
config: the same rng state gives the same noise, and switching one term off leaves the others'
draws unchanged.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from generator.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS

_PELVIS = JOINT_INDEX["Hip"]
_THORAX = JOINT_INDEX["Thorax"]
_NECK = JOINT_INDEX["Neck/Nose"]
_HEAD = JOINT_INDEX["Head"]
_L_SHOULDER, _R_SHOULDER = JOINT_INDEX["LShoulder"], JOINT_INDEX["RShoulder"]

# The torso: joints a detector localizes best; hop distances are counted from this set.
TORSO_JOINTS: tuple[int, ...] = tuple(
    JOINT_INDEX[n] for n in ("Hip", "RHip", "LHip", "Spine", "Thorax", "LShoulder", "RShoulder")
)


def _torso_hops() -> np.ndarray:
    """Each joint's hops along the tree from the nearest torso joint (the torso is a connected
    subtree holding the root, so it is the parent's count + 1): knees, elbows, neck 1; ankles,
    wrists, head 2."""
    hops = np.zeros(NUM_JOINTS, dtype=np.int64)
    for j in range(NUM_JOINTS):  # parents come before children in h36m17
        if j not in TORSO_JOINTS:
            hops[j] = hops[PARENTS[j]] + 1
    return hops


TORSO_HOPS = _torso_hops()
TORSO_HOPS.setflags(write=False)

# Limbs whose distal joints a detector swaps, as (left joints, right joints): arm, leg.
SWAP_LIMBS: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...] = (
    ((JOINT_INDEX["LElbow"], JOINT_INDEX["LWrist"]), (JOINT_INDEX["RElbow"], JOINT_INDEX["RWrist"])),
    ((JOINT_INDEX["LKnee"], JOINT_INDEX["LFoot"]), (JOINT_INDEX["RKnee"], JOINT_INDEX["RFoot"])),
)
# Joints that can be missed or grossly displaced, parents before children (Neck/Nose before Head,
# so a missed head on a missed neck lands on the neck's filled position).
GROSS_JOINTS: tuple[int, ...] = tuple(JOINT_INDEX[n] for n in ("Neck/Nose", "Head", "LWrist", "RWrist", "LFoot", "RFoot"))
# Joints whose definition differs between detectors and h36m17.
BIAS_JOINTS: tuple[int, ...] = (_PELVIS, _THORAX, _NECK, _HEAD)
# A gross error's offset, in torso sizes.
DISPLACE_MIN, DISPLACE_MAX = 0.3, 1.0
# Torso-size floor, as a fraction of the diagonal of the pose's 2D bounding box (a torso seen
# end-on, or a degenerate input, still gets noise on the person's scale).
TORSO_FLOOR = 0.1


class DetectorNoiseConfig(BaseModel):
    """Strengths of each detector-error term (docs/conventions.md, "Detector-like 2D noise")."""

    model_config = ConfigDict(extra="forbid")

    # Gaussian std (per axis) at the torso joints, as a fraction of the sample's 2D torso size.
    sigma: float = Field(0.03, ge=0)
    # std_j = sigma * (1 + growth * hops_j), hops_j = TORSO_HOPS (0 torso, 1 knees/elbows/neck,
    # 2 ankles/wrists/head): 0.5 makes the extremities' jitter twice the torso's.
    growth: float = Field(0.5, ge=0)
    # Per sample and per limb (arm: elbow+wrist, leg: knee+ankle): chance left and right swap.
    swap_probability: float = Field(0.02, ge=0, le=1)
    # Per sample and per GROSS_JOINTS joint: chance of a gross error, an offset of 0.3-1.0 torso
    # sizes in a uniformly random direction.
    displace_probability: float = Field(0.02, ge=0, le=1)
    # Per sample and per GROSS_JOINTS joint: chance of a miss, filled in on its parent joint.
    missing_probability: float = Field(0.02, ge=0, le=1)
    # Per sample, Thorax, Neck/Nose, Head and pelvis each move along the torso's 2D up axis
    # (pelvis -> thorax) by U(-b, b) torso sizes.
    definition_bias: float = Field(0.1, ge=0)


def torso_size(points: np.ndarray) -> np.ndarray:
    """(N,) 2D torso size: max(|thorax - pelvis|, shoulder span), floored at TORSO_FLOOR x the
    bounding-box diagonal. The max keeps it steady as the body turns (the span shrinks side-on)."""
    spine = np.linalg.norm(points[:, _THORAX] - points[:, _PELVIS], axis=-1)
    span = np.linalg.norm(points[:, _L_SHOULDER] - points[:, _R_SHOULDER], axis=-1)
    extent = np.linalg.norm(points.max(axis=1) - points.min(axis=1), axis=-1)
    return np.maximum(np.maximum(spine, span), TORSO_FLOOR * extent)


def _check(points: np.ndarray, strength: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points)
    if pts.ndim != 3 or pts.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"detector_noise: points must have shape (N, {NUM_JOINTS}, 2), got {pts.shape}")
    if not np.issubdtype(pts.dtype, np.number) or np.issubdtype(pts.dtype, np.complexfloating):
        raise ValueError(f"detector_noise: points must be real numbers, got dtype {pts.dtype}")
    pts = pts.astype(np.float64)  # always a copy: the input is never modified
    bad = int(np.count_nonzero(~np.isfinite(pts)))
    if bad:
        raise ValueError(f"detector_noise: points hold {bad} non-finite values (NaN or inf)")
    s = np.asarray(strength, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(len(pts), float(s))
    if s.shape != (len(pts),):
        raise ValueError(f"detector_noise: strength must be a scalar or shape ({len(pts)},), got {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("detector_noise: strength must be finite and >= 0")
    return pts, s


def detector_noise(
    points: np.ndarray, rng: np.random.Generator, cfg: DetectorNoiseConfig, strength: np.ndarray | float = 1.0
) -> np.ndarray:
    """Clean 2D (N, 17, 2) -> detector-like 2D (N, 17, 2) float64, a new array.

    `strength` (scalar or (N,), >= 0) multiplies the Gaussian std, the definition bias and every
    probability (clipped to [0, 1]); strength 0 returns the input values exactly. Terms in order:
    definition bias, Gaussian jitter, limb swaps, gross displacements, misses (module docstring).
    """
    out, s = _check(points, strength)
    n = len(out)
    torso = torso_size(out)  # (N,) from the clean pose, so every term shares one scale

    # Draws: a fixed count per sample, in a fixed order, whatever the config.
    u_bias = rng.uniform(-1.0, 1.0, size=(n, len(BIAS_JOINTS)))
    gauss = rng.standard_normal((n, NUM_JOINTS, 2))
    u_swap = rng.random((n, len(SWAP_LIMBS)))
    u_gross = rng.random((n, len(GROSS_JOINTS)))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=(n, len(GROSS_JOINTS)))
    radius = rng.uniform(DISPLACE_MIN, DISPLACE_MAX, size=(n, len(GROSS_JOINTS)))

    # 1. Definition bias along the torso's up axis (image up, -y, where pelvis == thorax).
    up = out[:, _THORAX] - out[:, _PELVIS]
    length = np.linalg.norm(up, axis=-1, keepdims=True)
    up = np.where(length > 0, up / np.where(length > 0, length, 1.0), np.array([0.0, -1.0]))
    shift = (cfg.definition_bias * s * torso)[:, None] * u_bias  # (N, 4) signed distances
    out[:, list(BIAS_JOINTS)] += shift[..., None] * up[:, None, :]

    # 2. Gaussian jitter, growing with the hops from the torso.
    std = cfg.sigma * (1.0 + cfg.growth * TORSO_HOPS)  # (17,) in torso sizes
    out += gauss * ((s * torso)[:, None] * std[None, :])[..., None]

    # 3. Left/right swaps of a limb's distal joints.
    p_swap = np.clip(cfg.swap_probability * s, 0.0, 1.0)
    for k, (left, right) in enumerate(SWAP_LIMBS):
        hit = u_swap[:, k] < p_swap
        lr, rl = list(left + right), list(right + left)
        out[np.ix_(hit, lr)] = out[np.ix_(hit, rl)]

    # 4-5. One uniform per (sample, joint) picks a miss (u < p_m) or a gross error (p_m <= u <
    # p_m + p_d): the two are exclusive, so each happens at exactly its configured rate.
    p_miss = np.clip(cfg.missing_probability * s, 0.0, 1.0)[:, None]
    p_disp = np.clip(cfg.displace_probability * s, 0.0, 1.0)[:, None]
    miss = u_gross < p_miss
    disp = ~miss & (u_gross < p_miss + p_disp)
    offset = (radius * torso[:, None])[..., None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    gross = list(GROSS_JOINTS)
    out[:, gross] += np.where(disp[..., None], offset, 0.0)
    for k, j in enumerate(GROSS_JOINTS):  # parents first: a missed head on a missed neck
        out[miss[:, k], j] = out[miss[:, k], PARENTS[j]]
    return out
