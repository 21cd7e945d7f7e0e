"""Body parts on the mesh, for clothing: every vertex gets a part (from the bone that moves it
most) and a coordinate along its limb, so a frame's clothing is a few numbers (where sleeves and
trouser legs end, colours and patterns) that the fragment shader turns into garments.

`along` runs 0 at a limb's root joint, 1 at its middle joint, 2 at its end joint (shoulder, elbow,
wrist; hip, knee, ankle), and on the torso 0 at the hips to 1 at the shoulders.
"""

from __future__ import annotations

import numpy as np

PARTS = ("head", "hair", "eye", "neck", "torso", "pelvis", "upperarm", "forearm", "hand", "thigh", "shin", "foot")
PART_INDEX = {p: i for i, p in enumerate(PARTS)}

_BONE_PART = (
    ("eye.", "eye"),
    ("head", "head"),
    ("neck", "neck"),
    ("clavicle", "torso"),
    ("shoulder01", "torso"),
    ("spine05", "pelvis"),
    ("spine", "torso"),
    ("upperarm", "upperarm"),
    ("lowerarm", "forearm"),
    ("wrist", "hand"),
    ("finger", "hand"),
    ("metacarpal", "hand"),
    ("upperleg", "thigh"),
    ("lowerleg", "shin"),
    ("foot", "foot"),
    ("toe", "foot"),
    ("root", "pelvis"),
    ("pelvis", "pelvis"),
)


def _bone_part(label: str) -> str:
    for prefix, part in _BONE_PART:
        if label.startswith(prefix):
            return part
    raise ValueError(f"no body part for bone {label!r}")


def _along(v: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    return np.clip((v - a) @ ab / float(ab @ ab), -0.5, 1.5)


def vertex_parts(bone_labels, dominant_bone: np.ndarray, vertices: np.ndarray, heads: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(V,) part ids, (V,) coordinates along limbs, and the landmark vertices, from the template body."""
    head = {label: heads[i] for i, label in enumerate(bone_labels)}
    part = np.array([PART_INDEX[_bone_part(bone_labels[b])] for b in range(len(bone_labels))])[dominant_bone]
    along = np.zeros(len(vertices))
    x = vertices[:, 0]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        this = x * sign > 0
        sh, el, wr = head[f"upperarm01.{side}"], head[f"lowerarm01.{side}"], head[f"wrist.{side}"]
        hp, kn, an = head[f"upperleg01.{side}"], head[f"lowerleg01.{side}"], head[f"foot.{side}"]
        for name, a, b, base in (("upperarm", sh, el, 0.0), ("forearm", el, wr, 1.0), ("hand", wr, 2 * wr - el, 2.0),
                                 ("thigh", hp, kn, 0.0), ("shin", kn, an, 1.0), ("foot", an, 2 * an - kn, 2.0)):
            m = this & (part == PART_INDEX[name])
            along[m] = base + _along(vertices[m], a, b)
    hips = 0.5 * (head["upperleg01.L"] + head["upperleg01.R"])
    shoulders = 0.5 * (head["upperarm01.L"] + head["upperarm01.R"])
    trunk = np.isin(part, [PART_INDEX["torso"], PART_INDEX["pelvis"], PART_INDEX["neck"]])
    along[trunk] = _along(vertices[trunk], hips, shoulders)

    # The top of the head (a landmark), and the scalp (hair) as the head above and behind the ears.
    is_head = part == PART_INDEX["head"]
    ids = np.flatnonzero(is_head)
    hv = vertices[ids]
    ear_l, ear_r = int(ids[np.argmax(hv[:, 0])]), int(ids[np.argmin(hv[:, 0])])
    head_top = int(ids[np.argmax(hv[:, 2])])
    ears = 0.5 * (vertices[ear_l] + vertices[ear_r])
    top = hv[:, 2].max()
    above = (hv[:, 2] - ears[2]) > 0.30 * (top - ears[2])
    behind = (hv[:, 1] - ears[1] > 15.0) & (hv[:, 2] > ears[2] - 45.0)
    part[ids[above | behind]] = PART_INDEX["hair"]
    return part.astype(np.int32), along.astype(np.float32), {"head_top": head_top}
