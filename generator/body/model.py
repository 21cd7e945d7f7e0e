"""The Anny body model, reduced to what a renderer needs: one mesh topology and its skinning weights,
plus the rest meshes of chosen identities (phenotypes).

Anny (Apache-2.0 code, MakeHuman CC0 assets inside its wheel) is built once per process with plain
torch skinning (`skinning_method="lbs"`), so NVIDIA Warp is never compiled. Its first construction
on a machine builds its own cache under ~/.cache/anny (about 100 s); a file lock keeps concurrent
player processes from building it twice. The SMPL conversion data (`anny.paths.
download_noncommercial_data`, a non-commercial licence) is never used.

Units and axes: Anny works in metres with z up, +x the body's left and the face towards -y. We keep
its axes (they are our world's: right-handed, z up) and convert to millimetres.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
from pathlib import Path

import numpy as np

from .rig import SEGMENTS, JointRig, joint_rig, segment_of_bones

log = logging.getLogger(__name__)

ANNY_VERSION = "0.6.2"
PHENOTYPE_LABELS = ("gender", "age", "muscle", "weight", "height", "proportions")
# The render mesh merges the hands' and feet's dense vertices (~4 and ~5.5 mm edges) onto a
# grid of this cell (the face keeps its detail: collapsing it opens holes at the nostrils and lips).
RENDER_CELL_MM = 10.0
RENDER_SIMPLIFIED_PARTS = ("hand", "foot")
MAX_INFLUENCES = 8  # segment influences per vertex in the vertex shader (Anny needs at most 6: skinning is exact)


@contextlib.contextmanager
def _build_lock():
    """An exclusive file lock around Anny's first construction (its cache is not safe to build twice)."""
    import fcntl

    lock_dir = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "posebridge"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "anny-build.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@functools.cache
def _anny():
    try:
        import anny
    except ImportError as e:  # pragma: no cover - the package is a hard dependency
        raise RuntimeError(f"the human body needs the 'anny' package ({e}); pip install anny=={ANNY_VERSION}") from e
    import torch

    with _build_lock():
        log.info("building the Anny body model (the first time on a machine takes about 100 s)")
        with torch.no_grad():
            model = anny.Anny(skinning_method="lbs")
    return model


@dataclasses.dataclass(frozen=True)
class Identities:
    """Rest states of N bodies in world axes and millimetres (Anny's origin, not on the floor)."""

    phenotype: np.ndarray  # (N, 6) in PHENOTYPE_LABELS order, each in [0, 1]
    vertices: np.ndarray  # (N, V, 3) float32 mm
    normals: np.ndarray  # (N, V, 3) float32 unit
    bone_heads: np.ndarray  # (N, B, 3) float64 mm

    def __len__(self) -> int:
        return int(self.phenotype.shape[0])


@dataclasses.dataclass(frozen=True)
class BodyModel:
    """The topology and skinning shared by every identity."""

    bone_labels: tuple[str, ...]
    bone_parents: np.ndarray  # (B,) int, -1 for the root
    faces: np.ndarray  # (F, 3) int32, counter-clockwise seen from outside
    render_faces: np.ndarray  # (F', 3) int32 into the same vertices: the simplified mesh the player draws
    segment_of_bone: np.ndarray  # (B,) int: which SEGMENTS entry moves each bone
    influence_segments: np.ndarray  # (V, MAX_INFLUENCES) int32 segment ids, largest weight first
    influence_weights: np.ndarray  # (V, MAX_INFLUENCES) float32, summing to 1 (zeros pad)
    vertex_part: np.ndarray  # (V,) int32 into appearance.PARTS
    vertex_along: np.ndarray  # (V,) float32, position along the vertex's limb (appearance.py)
    landmarks: dict[str, int]  # named vertices (the top of the head), see rig.BODY_JOINTS

    def bone(self, label: str) -> int:
        return self.bone_labels.index(label)

    def joint_rig(self, identities: Identities, i: int) -> JointRig:
        """What posing and the joints need from identity i."""
        return joint_rig(self.bone_labels, identities.bone_heads[i], self.segment_of_bone, self.landmarks,
                         identities.vertices[i].astype(np.float64), self.influence_segments, self.influence_weights)

    def identities(self, phenotype: np.ndarray) -> Identities:
        """The rest meshes of bodies with the given phenotypes (N, 6) in [0, 1]: about 5 ms a body."""
        phenotype = np.atleast_2d(np.asarray(phenotype, dtype=np.float64))
        if phenotype.shape[1:] != (len(PHENOTYPE_LABELS),) or not np.isfinite(phenotype).all():
            raise ValueError(f"phenotypes must be finite (N, {len(PHENOTYPE_LABELS)}), got shape {phenotype.shape}")
        if phenotype.min() < 0.0 or phenotype.max() > 1.0:
            raise ValueError("phenotype values must lie in [0, 1]")
        rest = anny_rest_model(phenotype)
        vertices = rest["rest_vertices"] * 1000.0
        heads = rest["rest_bone_heads"] * 1000.0
        return Identities(
            phenotype=phenotype,
            vertices=vertices.astype(np.float32),
            normals=vertex_normals(vertices, self.faces).astype(np.float32),
            bone_heads=heads,
        )


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals of (..., V, 3) vertices, outward for counter-clockwise faces."""
    v = np.asarray(vertices, dtype=np.float64)
    batch = v.reshape(-1, v.shape[-2], 3)
    n_bodies, n_vertices = batch.shape[:2]
    a, b, c = (batch[:, faces[:, k]] for k in range(3))
    face_n = np.cross(b - a, c - a).reshape(-1, 3)  # (n_bodies * F, 3)
    offsets = np.arange(n_bodies)[:, None] * n_vertices
    corners = [(offsets + faces[None, :, k]).ravel() for k in range(3)]
    n = np.zeros((n_bodies * n_vertices, 3))
    for k in range(3):  # a scatter-add per corner, one bincount per axis
        for axis in range(3):
            n[:, axis] += np.bincount(corners[k], weights=face_n[:, axis], minlength=n.shape[0])
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    return n.reshape(v.shape)


def _morton_codes(points: np.ndarray, bits: int = 10) -> np.ndarray:
    """Z-order (Morton) codes of 3D points quantized to 2**bits cells per axis."""
    q = ((points - points.min(axis=0)) / np.ptp(points, axis=0).max() * (2**bits - 1)).astype(np.uint64)
    code = np.zeros(len(points), np.uint64)
    for b in range(bits):
        for axis in range(3):
            code |= ((q[:, axis] >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b + axis)
    return code


def simplified_faces(vertices: np.ndarray, faces: np.ndarray, part: np.ndarray, parts: tuple[str, ...], cell_mm: float,
                     keep: list[int]) -> np.ndarray:
    """Vertex clustering of the given parts: their vertices are grouped per part on a grid of
    `cell_mm` (template rest pose) and each group collapses onto its member nearest the group's
    mean, an original vertex, so skinning, parts and landmarks stay those of the full mesh. The
    `keep` vertices represent their groups. Returns the faces that do not collapse, without
    duplicates, as indices into the full vertex list."""
    from .appearance import PART_INDEX

    chosen = np.isin(part, [PART_INDEX[p] for p in parts])
    cell = np.floor(vertices / cell_mm).astype(np.int64)
    own = np.arange(len(vertices))
    key = np.where(chosen[:, None], np.c_[part, cell], np.c_[np.full(len(vertices), -1), own, own, own])
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()
    counts = np.bincount(group)
    mean = np.stack([np.bincount(group, weights=vertices[:, k]) / counts for k in range(3)], axis=1)
    order = np.lexsort((np.linalg.norm(vertices - mean[group], axis=1), group))
    first = np.r_[True, group[order][1:] != group[order][:-1]]
    representative = np.empty(len(counts), np.int64)
    representative[group[order][first]] = order[first]
    representative[group[keep]] = keep
    mapped = representative[group][faces]
    mapped = mapped[(mapped[:, 0] != mapped[:, 1]) & (mapped[:, 1] != mapped[:, 2]) & (mapped[:, 0] != mapped[:, 2])]
    _, unique = np.unique(np.sort(mapped, axis=1), axis=0, return_index=True)
    return mapped[np.sort(unique)].astype(np.int32)


def cache_friendly_faces(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The triangles reordered so that neighbours share vertices: sorted by the Z-order rank of their
    earliest vertex. Software rasterizers shade vertices in batches of nearby indices, so this cuts
    repeated vertex shading (about 20 % of the body's draw time on llvmpipe); the mesh is unchanged."""
    rank = np.argsort(np.argsort(_morton_codes(vertices), kind="stable"), kind="stable")
    return faces[np.argsort(rank[faces].min(axis=1), kind="stable")]


def _top_influences(bone_weights: np.ndarray, bone_indices: np.ndarray, segment_of_bone: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bone weights summed per segment (bones of a segment share its motion, so this is exact), the
    MAX_INFLUENCES largest first."""
    n_vertices = bone_weights.shape[0]
    dense = np.zeros((n_vertices, len(SEGMENTS)))
    np.add.at(dense, (np.repeat(np.arange(n_vertices), bone_indices.shape[1]), segment_of_bone[bone_indices].ravel()), bone_weights.ravel())
    order = np.argsort(-dense, axis=1, kind="stable")[:, :MAX_INFLUENCES]
    weights = np.take_along_axis(dense, order, axis=1)
    weights /= weights.sum(axis=1, keepdims=True)
    return order.astype(np.int32), weights.astype(np.float32)


@functools.cache
def load_body_model() -> BodyModel:
    """The shared topology and skinning, built from Anny once per process."""
    from .appearance import vertex_parts

    model = _anny()
    if tuple(model.phenotype_labels) != PHENOTYPE_LABELS:
        raise RuntimeError(f"anny's phenotypes are {model.phenotype_labels}, expected {PHENOTYPE_LABELS}: install anny=={ANNY_VERSION}")
    labels = tuple(model.bone_labels)
    parents = np.asarray(model.bone_parents, dtype=np.int64)
    seg = segment_of_bones(labels, parents)
    faces = model.get_triangular_faces().numpy().astype(np.int32)
    bone_weights = model.vertex_bone_weights.numpy()
    bone_indices = model.vertex_bone_indices.numpy()
    segs, weights = _top_influences(bone_weights, bone_indices, seg)
    dominant_bone = bone_indices[np.arange(len(bone_indices)), np.argmax(bone_weights, axis=1)]
    rest = BodyModel(
        bone_labels=labels,
        bone_parents=parents,
        faces=faces,
        render_faces=faces,
        segment_of_bone=seg,
        influence_segments=segs,
        influence_weights=weights,
        vertex_part=np.zeros(len(bone_weights), np.int32),
        vertex_along=np.zeros(len(bone_weights), np.float32),
        landmarks={},
    )
    template = rest.identities(np.full((1, len(PHENOTYPE_LABELS)), 0.5))
    part, along, landmarks = vertex_parts(labels, dominant_bone, template.vertices[0].astype(np.float64), template.bone_heads[0])
    rest_vertices = template.vertices[0].astype(np.float64)
    render = simplified_faces(rest_vertices, faces, part, RENDER_SIMPLIFIED_PARTS, RENDER_CELL_MM, list(landmarks.values()))
    return dataclasses.replace(rest, render_faces=cache_friendly_faces(render, rest_vertices), vertex_part=part, vertex_along=along, landmarks=landmarks)


def anny_rest_model(phenotype: np.ndarray) -> dict[str, np.ndarray]:
    """Anny's own rest model of bodies with phenotypes (N, 6), in metres as Anny keeps it:
    `blendshape_coeffs` (N, C), `rest_vertices` (N, V, 3), `rest_bone_heads` (N, B, 3) and
    `rest_bone_poses` (N, B, 4, 4), each bone's world pose [R | head] whose axes the glTF export's
    joints take (generator/body/gltf.py), and which Anny's own forward needs to be driven in world poses."""
    import torch

    phenotype = np.atleast_2d(np.asarray(phenotype, dtype=np.float64))
    model = _anny()
    with torch.no_grad():
        params = torch.as_tensor(phenotype)
        empty = params.new_zeros((len(phenotype), 0))
        coeffs = model._get_phenotype_blendshape_coefficients(params, empty, empty)
        rest = model.get_rest_model(coeffs)
    out = {k: v.numpy() for k, v in rest.items()}
    out["blendshape_coeffs"] = coeffs.numpy()
    return out
