"""One identity's body as glTF 2.0 binary (.glb), for the Unity player and any other engine.

What the file holds (docs/conventions.md, "Body export (.glb)"):

- **Axes and units**: glTF's own, metres, y up, right-handed, the body's front towards +z and its
  left towards +x. A point of our world frame (mm, z up, the rest body facing -y) maps as
  `(x, y, z)_glTF = (x, z, -y)_world / 1000` (`GLTF_FROM_WORLD`, a proper rotation: nothing is
  mirrored).
- **Mesh**: Anny's rest mesh of the identity (13,718 vertices, 27,420 triangles), `NORMAL`,
  `COLOR_0` (one colour per body part, appearance.PARTS, `PART_COLORS`) and `_PART_ALONG` = (part
  index, limb coordinate `along`), an application-specific attribute (glTF's leading underscore), so
  an engine can clothe the body by part.
- **Skin**: all 104 Anny bones as joints, in Anny's order (node i is bone i, skin joint i is node
  i); each node's rest world transform is Anny's rest bone pose [R | head] in glTF axes, so the
  inverse bind matrices are exactly their inverses. The weights are **Anny's own per-bone skinning
  weights** (up to 9 per vertex, largest first, in `JOINTS_0/WEIGHTS_0`, `JOINTS_1/WEIGHTS_1`,
  `JOINTS_2/WEIGHTS_2`), not segment weights: fingers, toes and twist bones stay articulated for
  engines that animate them. For a posebridge pose every bone of a segment gets that segment's
  motion, so glTF skinning gives the vertex shader's segment skinning (`rig.skin_points`) exactly
  (tests/test_body_gltf.py, within 1e-3 mm). Engines that read one weight set only (glTFast) must
  take the others from the file: the Unity package does (`PoseBridge.Core.BodyGlb`).
- **extras.posebridge**: the bone list, the 16 segments (`rig.SEGMENTS`) and which bones each one
  moves, the h36m17 joint definitions (`rig.BODY_JOINTS`: bone heads and landmark vertex indices),
  the landmarks, the parts and their colours, the phenotype, and the Humanoid bone map Unity uses.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ..skeleton import JOINT_NAMES
from .appearance import PARTS
from .model import ANNY_VERSION, PHENOTYPE_LABELS, BodyModel, anny_rest_model, load_body_model
from .rig import BODY_JOINTS, SEGMENT_PIVOT_BONE, SEGMENTS, BodyPose

log = logging.getLogger(__name__)

FORMAT = "posebridge-body"
FORMAT_VERSION = 1
# Our world (mm, z up, rest body facing -y) -> glTF axes: (x, y, z) -> (x, z, -y). det = +1.
GLTF_FROM_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
MM_PER_M = 1000.0
WEIGHT_SETS = 3  # Anny needs at most 9 influences per vertex

# sRGB colour of each body part in COLOR_0 (distinct, so a shader or script can tell parts apart).
PART_COLORS: dict[str, tuple[int, int, int]] = {
    "head": (224, 172, 140), "hair": (70, 50, 35), "eye": (250, 250, 250), "neck": (210, 160, 130),
    "torso": (60, 110, 190), "pelvis": (40, 60, 110), "upperarm": (90, 150, 220), "forearm": (200, 150, 120),
    "hand": (230, 180, 150), "thigh": (50, 80, 140), "shin": (70, 100, 160), "foot": (40, 40, 40),
}
assert set(PART_COLORS) == set(PARTS)

# Unity's HumanBodyBones (by enum name) -> Anny bone. Unmapped Anny bones (spine05, spine03, the
# neck02/03 chain, shoulder01, the twist bones upperarm02 / lowerarm02 / upperleg02 / lowerleg02,
# metacarpals, toes) ride along as ordinary transforms; Unity's Toes and Jaw stay unmapped.
HUMANOID_BONES: dict[str, str] = {
    "Hips": "root", "Spine": "spine04", "Chest": "spine02", "UpperChest": "spine01", "Neck": "neck01", "Head": "head",
    "LeftEye": "eye.L", "RightEye": "eye.R",
    **{f"{side}{k}": f"{v}.{s}" for side, s in (("Left", "L"), ("Right", "R")) for k, v in (
        ("UpperLeg", "upperleg01"), ("LowerLeg", "lowerleg01"), ("Foot", "foot"), ("Shoulder", "clavicle"),
        ("UpperArm", "upperarm01"), ("LowerArm", "lowerarm01"), ("Hand", "wrist"))},
    **{f"{side}{finger}{phalanx}": f"finger{n}-{k}.{s}" for side, s in (("Left", "L"), ("Right", "R"))
       for n, finger in enumerate(("Thumb", "Index", "Middle", "Ring", "Little"), start=1)
       for k, phalanx in enumerate(("Proximal", "Intermediate", "Distal"), start=1)},
}


class BodyExportError(ValueError):
    """A .glb that is not a posebridge body, or a bad export request."""


# ------------------------------------------------------------------------------------------------
# Transforms


def _rigid(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 4, 4) homogeneous matrices from rotations (..., 3, 3) and translations (..., 3)."""
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def world_to_gltf(points_mm: np.ndarray) -> np.ndarray:
    """Points (..., 3) of our world frame in mm -> glTF axes in metres."""
    return np.asarray(points_mm, dtype=np.float64) @ GLTF_FROM_WORLD.T / MM_PER_M


def gltf_to_world(points_m: np.ndarray) -> np.ndarray:
    """Points (..., 3) in glTF axes, metres -> our world frame in mm."""
    return np.asarray(points_m, dtype=np.float64) @ GLTF_FROM_WORLD * MM_PER_M


def _quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) as glTF stores them (x, y, z, w), w >= 0, from rotations (..., 3, 3)."""
    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):  # 104 bones once per export: clarity over speed
        tr = np.trace(m)
        if tr > 0:
            s = 2.0 * np.sqrt(1.0 + tr)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
        q = np.asarray(q) / np.linalg.norm(q)
        out[i] = -q if q[3] < 0 else q
    return out.reshape(R.shape[:-2] + (4,))


def _matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) of quaternions (..., 4) in glTF's (x, y, z, w) order (normalized first)."""
    q = np.asarray(q, dtype=np.float64)
    x, y, z, w = np.moveaxis(q / np.linalg.norm(q, axis=-1, keepdims=True), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)


def node_world_matrices(parents: np.ndarray, local: np.ndarray) -> np.ndarray:
    """World matrices (B, 4, 4) of nodes listed parents first, from their local matrices."""
    world = np.empty_like(local)
    for b, p in enumerate(parents):
        world[b] = local[b] if p < 0 else world[p] @ local[b]
    return world


def segment_motions_gltf(pose: BodyPose) -> np.ndarray:
    """Each segment's rigid motion (S, 4, 4) in glTF axes and metres: [C Q C^T | C t / 1000]."""
    C = GLTF_FROM_WORLD
    return _rigid(C @ pose.rotations @ C.T, pose.translations @ C.T / MM_PER_M)


def anny_world_bone_poses(rest_bone_poses_m: np.ndarray, segment_of_bone: np.ndarray, pose: BodyPose) -> np.ndarray:
    """Anny's `pose_parameterization="world"` input for a BodyPose: bone b of segment s is posed at
    [Q_s R_b | Q_s h_b + t_s] (metres), which moves every rest point x of b to Q_s x + t_s, the
    segment's motion. (B, 4, 4)."""
    Q = pose.rotations[segment_of_bone]
    t = pose.translations[segment_of_bone] / MM_PER_M
    R, h = rest_bone_poses_m[:, :3, :3], rest_bone_poses_m[:, :3, 3]
    return _rigid(Q @ R, np.einsum("bij,bj->bi", Q, h) + t)


# ------------------------------------------------------------------------------------------------
# Export


def body_definition(model: BodyModel, phenotype: np.ndarray) -> dict:
    """The `extras.posebridge` object: what an engine needs to pose the body and label its joints
    the way posebridge does."""
    labels = list(model.bone_labels)
    joints = []
    for name in JOINT_NAMES:
        bones, landmarks = BODY_JOINTS[name]
        joints.append({"name": name, "bones": list(bones), "landmarks": [int(model.landmarks[n]) for n in landmarks]})
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "anny_version": ANNY_VERSION,
        "units": "m",
        "axes": "glTF: y up, +z the body's front, +x its left; posebridge world (mm, z up) = 1000 * (x, -z, y)",
        "phenotype": {k: float(v) for k, v in zip(PHENOTYPE_LABELS, phenotype)},
        "bones": labels,
        "bone_parents": [int(p) for p in model.bone_parents],
        "segments": [{"name": n, "parent": p, "pivot_bone": pivot} for (n, p, _), pivot in zip(SEGMENTS, SEGMENT_PIVOT_BONE)],
        "segment_of_bone": [int(s) for s in model.segment_of_bone],
        "h36m17": joints,
        "landmarks": {k: int(v) for k, v in model.landmarks.items()},
        "parts": [{"name": p, "color": list(PART_COLORS[p])} for p in PARTS],
        "humanoid": dict(HUMANOID_BONES),
    }


def _sorted_bone_weights(model_weights: np.ndarray, model_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex bone indices (V, 4k) uint8 and weights (V, 4k) float32, largest weight first,
    unused slots joint 0 with weight 0, weights renormalized after the float32 cast."""
    order = np.argsort(-model_weights, axis=1, kind="stable")
    w = np.take_along_axis(model_weights, order, axis=1)
    j = np.take_along_axis(model_indices, order, axis=1)
    slots = 4 * WEIGHT_SETS
    if w.shape[1] > slots and np.any(w[:, slots:] > 0):
        raise BodyExportError(f"a vertex has more than {slots} bone influences")
    out_w = np.zeros((len(w), slots))
    out_j = np.zeros((len(w), slots), np.int64)
    k = min(slots, w.shape[1])
    out_w[:, :k], out_j[:, :k] = w[:, :k], j[:, :k]
    out_j[out_w <= 0] = 0
    out_w = np.maximum(out_w, 0.0)
    out_w /= out_w.sum(axis=1, keepdims=True)
    return out_j.astype(np.uint8), out_w.astype(np.float32)


def body_gltf(model: BodyModel, phenotype: np.ndarray):
    """The pygltflib document of the body with this phenotype (6,)."""
    import pygltflib as g

    from .model import _anny

    phenotype = np.asarray(phenotype, dtype=np.float64).reshape(len(PHENOTYPE_LABELS))
    ids = model.identities(phenotype[None])
    rest = anny_rest_model(phenotype[None])
    C = GLTF_FROM_WORLD
    bone_world = _rigid(C @ rest["rest_bone_poses"][0, :, :3, :3] @ C.T, rest["rest_bone_poses"][0, :, :3, 3] @ C.T)
    parents = model.bone_parents
    local = np.array([bone_world[b] if p < 0 else np.linalg.inv(bone_world[p]) @ bone_world[b] for b, p in enumerate(parents)])
    translations = local[:, :3, 3]
    rotations = _quat_from_matrix(local[:, :3, :3])
    # The inverse bind matrices invert the rest transforms exactly as a reader rebuilds them from the stored TRS.
    world_stored = node_world_matrices(parents, _rigid(_matrix_from_quat(rotations), translations))
    ibm = np.linalg.inv(world_stored)

    anny = _anny()
    joints, weights = _sorted_bone_weights(anny.vertex_bone_weights.numpy(), anny.vertex_bone_indices.numpy())
    positions = world_to_gltf(ids.vertices[0].astype(np.float64)).astype(np.float32)
    normals = (ids.normals[0].astype(np.float64) @ C.T).astype(np.float32)
    palette = np.array([PART_COLORS[p] + (255,) for p in PARTS], np.uint8)
    colors = palette[model.vertex_part]
    part_along = np.stack([model.vertex_part.astype(np.float32), model.vertex_along], axis=1).astype(np.float32)
    faces = model.faces.astype(np.uint16 if ids.vertices.shape[1] < 65536 else np.uint32)

    blob = bytearray()
    views: list = []
    accessors: list = []

    def add(array: np.ndarray, kind: str, component: int, target: int | None, normalized: bool = False, minmax: bool = False) -> int:
        data = np.ascontiguousarray(array)
        while len(blob) % 4:
            blob.append(0)
        views.append(g.BufferView(buffer=0, byteOffset=len(blob), byteLength=data.nbytes, target=target))
        blob.extend(data.tobytes())
        acc = g.Accessor(bufferView=len(views) - 1, componentType=component, count=len(data), type=kind, normalized=normalized or None)
        if minmax:
            acc.min, acc.max = data.min(axis=0).astype(float).tolist(), data.max(axis=0).astype(float).tolist()
        accessors.append(acc)
        return len(accessors) - 1

    attrs = {
        "POSITION": add(positions, g.VEC3, g.FLOAT, g.ARRAY_BUFFER, minmax=True),
        "NORMAL": add(normals, g.VEC3, g.FLOAT, g.ARRAY_BUFFER),
        "COLOR_0": add(colors, g.VEC4, g.UNSIGNED_BYTE, g.ARRAY_BUFFER, normalized=True),
        "_PART_ALONG": add(part_along, g.VEC2, g.FLOAT, g.ARRAY_BUFFER),
    }
    for k in range(WEIGHT_SETS):
        attrs[f"JOINTS_{k}"] = add(joints[:, 4 * k: 4 * k + 4], g.VEC4, g.UNSIGNED_BYTE, g.ARRAY_BUFFER)
        attrs[f"WEIGHTS_{k}"] = add(weights[:, 4 * k: 4 * k + 4], g.VEC4, g.FLOAT, g.ARRAY_BUFFER)
    index_acc = add(faces.reshape(-1), g.SCALAR, g.UNSIGNED_SHORT if faces.dtype == np.uint16 else g.UNSIGNED_INT, g.ELEMENT_ARRAY_BUFFER)
    # glTF matrices are column-major: write each matrix transposed.
    ibm_acc = add(np.swapaxes(ibm, 1, 2).reshape(-1, 16).astype(np.float32), g.MAT4, g.FLOAT, None)

    children: list[list[int]] = [[] for _ in parents]
    for b, p in enumerate(parents):
        if p >= 0:
            children[p].append(b)
    nodes = [
        g.Node(name=label, translation=translations[b].tolist(), rotation=rotations[b].tolist(), children=children[b] or None)
        for b, label in enumerate(model.bone_labels)
    ]
    nodes.append(g.Node(name="body", mesh=0, skin=0))
    roots = [b for b, p in enumerate(parents) if p < 0]
    doc = g.GLTF2(
        asset=g.Asset(version="2.0", generator=f"posebridge body export (anny {ANNY_VERSION})",
                      copyright="Mesh, rig and weights: MakeHuman (CC0) via Anny (Apache-2.0)"),
        scene=0,
        scenes=[g.Scene(name="posebridge-body", nodes=roots + [len(nodes) - 1])],
        nodes=nodes,
        meshes=[g.Mesh(name="body", primitives=[g.Primitive(attributes=g.Attributes(**attrs), indices=index_acc, material=0)])],
        skins=[g.Skin(name="anny", inverseBindMatrices=ibm_acc, joints=list(range(len(parents))), skeleton=roots[0])],
        materials=[g.Material(name="body", pbrMetallicRoughness=g.PbrMetallicRoughness(baseColorFactor=[1.0, 1.0, 1.0, 1.0],
                                                                                     metallicFactor=0.0, roughnessFactor=0.8))],
        accessors=accessors,
        bufferViews=views,
        buffers=[g.Buffer(byteLength=len(blob))],
        extras={"posebridge": body_definition(model, phenotype)},
    )
    doc.set_binary_blob(bytes(blob))
    return doc


def pool_phenotype(identity_seed: int = 0, index: int = 0, identities: int | None = None) -> np.ndarray:
    """The phenotype (6,) of identity `index` of the built-in player's pool drawn with `identity_seed`
    (HumanConfig's distributions and pool size, as generator.body.pool.BodyPool draws it)."""
    from .sampling import IDENTITY_STREAM, HumanConfig, sample_phenotypes

    config = HumanConfig(identity_seed=identity_seed, **({} if identities is None else {"identities": identities}))
    if not 0 <= index < config.identities:
        raise BodyExportError(f"--index {index} is outside the pool of {config.identities} identities")
    rng = np.random.default_rng([IDENTITY_STREAM, config.identity_seed])
    return sample_phenotypes(rng, config, config.identities)[index]


def export_body(path: Path | str, phenotype: np.ndarray | None = None, *, model: BodyModel | None = None) -> Path:
    """Writes the body with `phenotype` (6,) in [0, 1] (default: every value 0.5) to `path` (.glb),
    atomically (a temporary name, then a rename)."""
    path = Path(path)
    if path.suffix.lower() != ".glb":
        raise BodyExportError(f"{path}: the body is written as glTF binary; use a .glb name")
    phenotype = np.full(len(PHENOTYPE_LABELS), 0.5) if phenotype is None else np.asarray(phenotype, dtype=np.float64)
    if phenotype.shape != (len(PHENOTYPE_LABELS),) or not np.isfinite(phenotype).all() or phenotype.min() < 0 or phenotype.max() > 1:
        raise BodyExportError(f"the phenotype must be {len(PHENOTYPE_LABELS)} values in [0, 1] ({', '.join(PHENOTYPE_LABELS)}), got {phenotype.tolist()}")
    doc = body_gltf(model or load_body_model(), phenotype)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        doc.save_binary(str(tmp))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


# ------------------------------------------------------------------------------------------------
# Reading back, and glTF skinning


@dataclasses.dataclass(frozen=True)
class BodyGlb:
    """A posebridge body .glb as arrays (glTF axes, metres)."""

    definition: dict  # extras.posebridge
    node_names: tuple[str, ...]  # the skin's joints, in skin order
    parents: np.ndarray  # (B,) parent joint index, -1 for the root
    local: np.ndarray  # (B, 4, 4) rest local transforms from the nodes' TRS
    world: np.ndarray  # (B, 4, 4) rest world transforms
    inverse_bind: np.ndarray  # (B, 4, 4)
    positions: np.ndarray  # (V, 3)
    normals: np.ndarray  # (V, 3)
    colors: np.ndarray  # (V, 4) uint8
    part_along: np.ndarray  # (V, 2) _PART_ALONG
    joints: np.ndarray  # (V, 4k) skin joint indices
    weights: np.ndarray  # (V, 4k)
    faces: np.ndarray  # (F, 3)
    document: object  # the pygltflib.GLTF2


_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _accessor(doc, blob: bytes, index: int) -> np.ndarray:
    acc = doc.accessors[index]
    view = doc.bufferViews[acc.bufferView]
    dtype = np.dtype(_COMPONENTS[acc.componentType])
    width = _WIDTH[acc.type]
    stride = view.byteStride or dtype.itemsize * width
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    raw = np.frombuffer(blob, np.uint8, count=stride * (acc.count - 1) + dtype.itemsize * width, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, (acc.count, dtype.itemsize * width), (stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(acc.count, width)


def read_body_glb(path: Path | str) -> BodyGlb:
    """Loads a body .glb with pygltflib; raises BodyExportError naming the file when it is not one."""
    import pygltflib as g

    path = Path(path)
    try:
        doc = g.GLTF2.load_binary(str(path))
    except Exception as e:  # pygltflib raises assorted errors on bad input
        raise BodyExportError(f"{path}: not a glTF binary file ({e})") from e
    extras = doc.extras or {}
    definition = extras.get("posebridge") if isinstance(extras, dict) else None
    if not isinstance(definition, dict) or definition.get("format") != FORMAT:
        raise BodyExportError(f"{path}: no extras.posebridge body definition (not written by `posebridge export-body`)")
    if definition.get("version") != FORMAT_VERSION:
        raise BodyExportError(f"{path}: body format version {definition.get('version')}, this reader knows {FORMAT_VERSION}")
    blob = doc.binary_blob()
    skin = doc.skins[0]
    joint_nodes = list(skin.joints)
    node_to_joint = {n: j for j, n in enumerate(joint_nodes)}
    parents = np.full(len(joint_nodes), -1)
    for n, node in enumerate(doc.nodes):
        for c in node.children or []:
            if c in node_to_joint and n in node_to_joint:
                parents[node_to_joint[c]] = node_to_joint[n]
    local = np.empty((len(joint_nodes), 4, 4))
    for j, n in enumerate(joint_nodes):
        node = doc.nodes[n]
        if node.matrix:
            local[j] = np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T
        else:
            R = _matrix_from_quat(np.asarray(node.rotation or [0, 0, 0, 1], dtype=np.float64))
            S = np.diag(np.asarray(node.scale or [1, 1, 1], dtype=np.float64))
            local[j] = _rigid(R @ S, np.asarray(node.translation or [0, 0, 0], dtype=np.float64))
    order = _parents_first(parents)
    world = np.empty_like(local)
    for j in order:
        world[j] = local[j] if parents[j] < 0 else world[parents[j]] @ local[j]
    ibm = np.swapaxes(_accessor(doc, blob, skin.inverseBindMatrices).reshape(-1, 4, 4), 1, 2).astype(np.float64)
    prim = doc.meshes[0].primitives[0]
    a = prim.attributes
    sets = sorted(int(k.split("_")[1]) for k in vars(a) if k.startswith("JOINTS_") and getattr(a, k) is not None)
    joints = np.concatenate([_accessor(doc, blob, getattr(a, f"JOINTS_{k}")) for k in sets], axis=1).astype(np.int64)
    weights = np.concatenate([_accessor(doc, blob, getattr(a, f"WEIGHTS_{k}")) for k in sets], axis=1).astype(np.float64)
    return BodyGlb(
        definition=definition,
        node_names=tuple(doc.nodes[n].name for n in joint_nodes),
        parents=parents,
        local=local,
        world=world,
        inverse_bind=ibm,
        positions=_accessor(doc, blob, a.POSITION).astype(np.float64),
        normals=_accessor(doc, blob, a.NORMAL).astype(np.float64),
        colors=_accessor(doc, blob, a.COLOR_0),
        part_along=_accessor(doc, blob, a._PART_ALONG).astype(np.float64),
        joints=joints,
        weights=weights,
        faces=_accessor(doc, blob, prim.indices).reshape(-1, 3).astype(np.int64),
        document=doc,
    )


def _parents_first(parents: np.ndarray) -> list[int]:
    order, seen = [], set()

    def visit(j: int) -> None:
        if j in seen:
            return
        if parents[j] >= 0:
            visit(int(parents[j]))
        seen.add(j)
        order.append(j)

    for j in range(len(parents)):
        visit(j)
    return order


def posed_locals(body: BodyGlb, pose: BodyPose) -> np.ndarray:
    """The joints' local transforms (B, 4, 4) that pose the body like `pose`, as a glTF animation
    would carry them: each joint's world transform is its segment's motion times its rest world."""
    seg = np.asarray(body.definition["segment_of_bone"])
    world = segment_motions_gltf(pose)[seg] @ body.world
    return np.array([world[j] if p < 0 else np.linalg.inv(world[p]) @ world[j] for j, p in enumerate(body.parents)])


def gltf_skin(body: BodyGlb, local: np.ndarray) -> np.ndarray:
    """glTF linear blend skinning: the vertices (V, 3) for joint local transforms (B, 4, 4), with the
    joint matrices world_j @ inverseBind_j summed over every weight set."""
    world = np.empty_like(local)
    for j in _parents_first(body.parents):
        world[j] = local[j] if body.parents[j] < 0 else world[body.parents[j]] @ local[j]
    joint = world @ body.inverse_bind
    p = np.c_[body.positions, np.ones(len(body.positions))]
    moved = np.einsum("vkij,vj->vki", joint[body.joints], p)[..., :3]
    return np.einsum("vk,vki->vi", body.weights, moved)
