"""The mannequin: a scene's pose and body style turned into capsules and ellipsoids.

Limbs, neck, clavicles, hip connectors and spine are tapered capsules between joints; pelvis, belly,
chest, head, hair, nose, hands and feet are ellipsoids oriented by the body's own frame (the
hair sits behind and above the face and the feet and nose point forward, so the front of the
body can be told from its back). Radii are the reference values below (mm) times the scene's
thickness multiplier of each part's group. Pure numpy, a few dozen vector operations per frame.

`JointSurfaces` says which primitives enclose each joint, for the depth-buffer visibility test
(visibility.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..scene import COLOR_GROUPS, LEGWEAR, OCCLUDER_KINDS, SLEEVES, THICKNESS_GROUPS, Occluders, Scene
from ..skeleton import JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX
T = {name: i for i, name in enumerate(THICKNESS_GROUPS)}
C = {name: i for i, name in enumerate(COLOR_GROUPS)}

# Capsules: (first joint, second joint, radius at the first, at the second, thickness group, colour rule).
# A colour rule is a colour group, or "sleeve_upper"/"sleeve_lower"/"leg_lower" that depends on the
# sleeve and leg lengths.
CAPSULES = (
    ("RHip", "RKnee", 86.0, 56.0, "legs", "bottom"),
    ("RKnee", "RFoot", 56.0, 37.0, "legs", "leg_lower"),
    ("LHip", "LKnee", 86.0, 56.0, "legs", "bottom"),
    ("LKnee", "LFoot", 56.0, 37.0, "legs", "leg_lower"),
    ("LShoulder", "LElbow", 47.0, 37.0, "arms", "sleeve_upper"),
    ("LElbow", "LWrist", 36.0, 26.0, "arms", "sleeve_lower"),
    ("RShoulder", "RElbow", 47.0, 37.0, "arms", "sleeve_upper"),
    ("RElbow", "RWrist", 36.0, 26.0, "arms", "sleeve_lower"),
    ("Thorax", "Neck/Nose", 50.0, 44.0, "neck", "skin"),
    ("Thorax", "LShoulder", 58.0, 52.0, "torso", "top"),
    ("Thorax", "RShoulder", 58.0, 52.0, "torso", "top"),
    ("Hip", "LHip", 92.0, 82.0, "legs", "bottom"),
    ("Hip", "RHip", 92.0, 82.0, "legs", "bottom"),
    ("Hip", "Spine", 92.0, 88.0, "torso", "top"),
    ("Spine", "Thorax", 88.0, 80.0, "torso", "top"),
)
CAPSULE_JOINTS = np.array([[J[a], J[b]] for a, b, *_ in CAPSULES])
CAPSULE_RADII = np.array([[ra, rb] for _, _, ra, rb, _, _ in CAPSULES])
CAPSULE_GROUP = np.array([T[g] for *_, g, _ in CAPSULES])

# Ellipsoids, in the order `mannequin_primitives` builds them.
ELLIPSOIDS = ("pelvis", "belly", "chest", "head", "hair", "nose", "lhand", "rhand", "lfoot", "rfoot")
E = {name: i for i, name in enumerate(ELLIPSOIDS)}
ELLIPSOID_COLOR = ("bottom", "top", "top", "skin", "hair", "skin", "skin", "skin", "shoes", "shoes")


def _color_rule(rule: str, sleeve: str, legwear: str) -> str:
    if rule == "sleeve_upper":
        return "skin" if sleeve == "none" else "top"
    if rule == "sleeve_lower":
        return "top" if sleeve == "long" else "skin"
    if rule == "leg_lower":
        return "bottom" if legwear == "long" else "skin"
    return rule


# Colour group of each capsule and ellipsoid, per (sleeve, legwear) style, resolved once.
STYLE_COLORS = {
    (s, l): (
        np.array([C[_color_rule(c[5], s, l)] for c in CAPSULES]),
        np.array([C[g] for g in ELLIPSOID_COLOR]),
    )
    for s in SLEEVES
    for l in LEGWEAR
}


@dataclasses.dataclass
class Primitives:
    """Instance arrays for the renderer (float32, world mm, sRGB colours)."""

    capsules: np.ndarray  # (N, 11): a(3), radius_a, b(3), radius_b, rgb
    ellipsoids: np.ndarray  # (M, 15): centre(3), axis0(3), axis1(3), axis2(3), rgb; axes = half extents
    boxes: np.ndarray  # (B, 15) like ellipsoids, for the unit cube [-1, 1]^3
    cylinders: np.ndarray  # (C, 15) like ellipsoids, for the unit cylinder along axis2


@dataclasses.dataclass
class JointSurfaces:
    """The body's own surface around each joint, for telling self-cover from occlusion.

    `sphere_radius` (17,) is the largest capsule end sphere centred on the joint;
    `ellipsoid_pairs` (P, 2) lists (joint, row of Primitives.ellipsoids) and `capsule_pairs`
    (Q, 2) lists (joint, row of Primitives.capsules) for the torso-like parts the joint belongs to
    as a whole (limbs count through their end sphere only, so a forearm pointing at the camera
    hides its elbow).
    """

    sphere_radius: np.ndarray
    ellipsoid_pairs: np.ndarray
    capsule_pairs: np.ndarray


def _pairs(table: tuple[tuple[str, str], ...], rows: dict[str, int]) -> np.ndarray:
    return np.array([(J[joint], rows[part]) for joint, part in table], dtype=np.int64)


_CAPSULE_ROWS = {f"{a}-{b}": i for i, (a, b, *_) in enumerate(CAPSULES)}
# The parts each joint lies in (beyond its capsule end spheres).
OWN_ELLIPSOIDS = _pairs(
    (
        ("Hip", "pelvis"),
        ("RHip", "pelvis"),
        ("LHip", "pelvis"),
        ("RFoot", "rfoot"),
        ("LFoot", "lfoot"),
        ("Spine", "belly"),
        ("Spine", "chest"),
        ("Thorax", "chest"),
        ("Neck/Nose", "head"),
        ("Head", "head"),
        ("Head", "hair"),
        ("LShoulder", "chest"),
        ("RShoulder", "chest"),
        ("LWrist", "lhand"),
        ("RWrist", "rhand"),
    ),
    E,
)
OWN_CAPSULES = _pairs(
    (
        ("Hip", "Hip-LHip"),
        ("Hip", "Hip-RHip"),
        ("Hip", "Hip-Spine"),
        ("RHip", "Hip-RHip"),
        ("LHip", "Hip-LHip"),
        ("Spine", "Hip-Spine"),
        ("Spine", "Spine-Thorax"),
        ("Thorax", "Spine-Thorax"),
        ("Thorax", "Thorax-LShoulder"),
        ("Thorax", "Thorax-RShoulder"),
        ("Thorax", "Thorax-Neck/Nose"),
        ("Neck/Nose", "Thorax-Neck/Nose"),
        ("LShoulder", "Thorax-LShoulder"),
        ("RShoulder", "Thorax-RShoulder"),
    ),
    _CAPSULE_ROWS,
)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (..., 3) arrays (np.cross costs ~10x more on a few rows)."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.sqrt(np.einsum("...i,...i->...", v, v)), 1e-9)[..., None]


def _frames(up: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """(n, 3, 3) orthonormal frames, rows (left, up, forward), from up and rough left directions (n, 3)."""
    up = _unit(up)
    left = _unit(lateral - np.einsum("ni,ni->n", lateral, up)[:, None] * up)
    return np.stack([left, up, _cross(left, up)], axis=1)  # forward = left x up, right-handed


def _perpendicular(d: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Unit vectors (n, 3) perpendicular to the unit rows of d, as close to `hint` (3,) as possible."""
    p = hint - (d @ hint)[:, None] * d
    fallback = _cross(d, np.where(np.abs(d[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]))
    return _unit(np.where((np.einsum("ni,ni->n", p, p) < 1e-12)[:, None], fallback, p))


def mannequin_primitives(scene: Scene) -> tuple[Primitives, JointSurfaces]:
    """The mannequin and occluders of a scene as renderer instances, plus each joint's own surface."""
    p = np.asarray(scene.joints_world, dtype=np.float64)
    style = scene.body
    th = style.thickness
    colors = style.colors
    cap_color, ell_color = STYLE_COLORS[(style.sleeve, style.legwear)]

    radii = CAPSULE_RADII * th[CAPSULE_GROUP][:, None]
    capsules = np.concatenate([p[CAPSULE_JOINTS[:, 0]], radii[:, :1], p[CAPSULE_JOINTS[:, 1]], radii[:, 1:], colors[cap_color]], axis=1)

    t_torso, t_arms, t_legs, t_head = th[T["torso"]], th[T["arms"]], th[T["legs"]], th[T["head"]]
    hip_left = p[J["LHip"]] - p[J["RHip"]]
    shoulder_left = p[J["LShoulder"]] - p[J["RShoulder"]]
    lower_back = p[J["Spine"]] - p[J["Hip"]]
    upper_back = p[J["Thorax"]] - p[J["Spine"]]
    hip_width, shoulder_width, upper_len = np.sqrt(np.einsum("ni,ni->n", *[np.stack([hip_left, shoulder_left, upper_back])] * 2))

    # Pelvis, belly, chest and head frames in one batch.
    frames = _frames(
        np.stack([lower_back, lower_back, upper_back, p[J["Head"]] - p[J["Neck/Nose"]]]),
        np.stack([hip_left, _unit(hip_left) + _unit(shoulder_left), shoulder_left, shoulder_left]),
    )
    head = frames[3]
    forward = frames[2, 2]
    # The skull hangs from the crown (the Head joint, 10 mm inside it; the hair cap reaches past
    # it), so its size does not follow the nose-to-crown distance, which varies a lot between
    # pose sources (115 mm in Human3.6M, up to 210 mm in CMU-derived clips).
    head_r = np.array([72.0, 108.0, 92.0]) * t_head
    head_c = p[J["Head"]] - (head_r[1] - 10.0) * head[1] - 25.0 * t_head * head[2]
    core_centers = np.stack(
        [
            p[J["Hip"]] + 15.0 * frames[0, 1],  # pelvis
            p[J["Hip"]] + 0.6 * lower_back,  # belly
            p[J["Spine"]] + 0.5 * upper_back,  # chest
            head_c,
            head_c - 12.0 * t_head * head[2] + 8.0 * head[1],  # hair: behind and above the face
            head_c + 0.93 * head_r[2] * head[2] - 0.15 * head_r[1] * head[1],  # nose
        ]
    )
    core_radii = np.array(
        [
            [0.5 * hip_width + 28.0 * t_legs, 95.0, 95.0 * t_torso],
            [0.25 * (hip_width + shoulder_width) * t_torso, 125.0, 92.0 * t_torso],
            [0.36 * shoulder_width + 40.0 * t_torso, 0.5 * upper_len + 40.0, 100.0 * t_torso],
            head_r,
            head_r * np.array([1.06, 1.0, 1.03]),
            [12.0 * t_head, 20.0 * t_head, 18.0 * t_head],
        ]
    )
    core_axes = frames[[0, 1, 2, 3, 3, 3]]

    # Hands continue the forearms; feet point forward, perpendicular to the shins.
    ends = p[[J["LWrist"], J["RWrist"], J["LFoot"], J["RFoot"]]]
    along = _unit(ends - p[[J["LElbow"], J["RElbow"], J["LKnee"], J["RKnee"]]])
    side = _perpendicular(along, forward)
    third = _cross(along, side)
    hands, feet = slice(0, 2), slice(2, 4)
    end_centers = np.concatenate([ends[hands] + 55.0 * t_arms * along[hands], ends[feet] + 35.0 * along[feet] + 55.0 * side[feet]])
    end_axes = np.concatenate(
        [np.stack([side[hands], third[hands], along[hands]], axis=1), np.stack([third[feet], along[feet], side[feet]], axis=1)]
    )
    end_radii = np.array([[42.0 * t_arms, 22.0 * t_arms, 75.0 * t_arms]] * 2 + [[45.0 * t_legs, 40.0, 115.0]] * 2)

    axes = np.concatenate([core_axes, end_axes]) * np.concatenate([core_radii, end_radii])[:, :, None]
    ellipsoids = np.concatenate([np.concatenate([core_centers, end_centers]), axes.reshape(-1, 9), colors[ell_color]], axis=1)

    boxes, cylinders = _occluder_instances(scene.occluders)
    prims = Primitives(
        capsules=capsules.astype(np.float32),
        ellipsoids=ellipsoids.astype(np.float32),
        boxes=boxes,
        cylinders=cylinders,
    )
    sphere = np.zeros(NUM_JOINTS)
    np.maximum.at(sphere, CAPSULE_JOINTS.ravel(), radii.ravel())
    return prims, JointSurfaces(sphere_radius=sphere, ellipsoid_pairs=OWN_ELLIPSOIDS, capsule_pairs=OWN_CAPSULES)


def occluder_primitives(occ: Occluders) -> Primitives:
    """The occluders alone (for renderers that draw the person themselves)."""
    boxes, cylinders = _occluder_instances(occ)
    empty = np.zeros((0, 15), np.float32)
    return Primitives(capsules=np.zeros((0, 11), np.float32), ellipsoids=empty, boxes=boxes, cylinders=cylinders)


def _occluder_instances(occ: Occluders) -> tuple[np.ndarray, np.ndarray]:
    inst = np.concatenate([occ.center, occ.axes.transpose(0, 2, 1).reshape(-1, 9), occ.color], axis=1).astype(np.float32)
    return inst[occ.kind == OCCLUDER_KINDS.index("box")], inst[occ.kind == OCCLUDER_KINDS.index("cylinder")]
