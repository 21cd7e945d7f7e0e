"""Unit meshes the renderer instances: a parametric capsule, a sphere, a box and a cylinder.

Pure numpy, built once per renderer. Triangles wind counter-clockwise seen from outside (the
renderer maps that to its y-down pixel convention). Vertex arrays are float32, indices int32.
"""

from __future__ import annotations

import numpy as np


def capsule_mesh(segments: int = 16, rings: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A capsule template: vertices (V, 4) = (around_x, around_y, t, end), indices (T, 3).

    `around` is the unit direction around the axis, `t` runs from 0 at a pole to 1 at the
    equator of that end's hemisphere, `end` is 0 for the first joint and 1 for the second. The
    vertex shader turns t into a latitude that makes the band between the two equators the exact
    cone tangent to both end spheres, so tapered capsules stay smooth.
    """
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    around = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    t = np.linspace(0.0, 1.0, rings + 1)[1:]  # ring 0 is the pole vertex
    verts = []
    for end in (0.0, 1.0):
        verts.append([[1.0, 0.0, 0.0, end]])  # the pole (around is irrelevant at t = 0)
        grid = np.concatenate(
            [np.repeat(around[None], rings, axis=0), np.repeat(t[:, None, None], segments, axis=1), np.full((rings, segments, 1), end)],
            axis=2,
        )
        verts.append(grid.reshape(-1, 4))
    vertices = np.concatenate(verts).astype(np.float32)

    per_end = 1 + rings * segments
    j = np.arange(segments)
    jn = (j + 1) % segments
    tris = []

    def ring(end: int, r: int, k: np.ndarray) -> np.ndarray:
        return end * per_end + 1 + r * segments + k

    for end in (0, 1):
        tris.append(np.stack([np.full(segments, end * per_end), ring(end, 0, j), ring(end, 0, jn)], axis=1))
        for r in range(rings - 1):
            a, b, c, d = ring(end, r, j), ring(end, r, jn), ring(end, r + 1, j), ring(end, r + 1, jn)
            tris += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    # The band joining the two equators.
    a, b, c, d = ring(0, rings - 1, j), ring(0, rings - 1, jn), ring(1, rings - 1, j), ring(1, rings - 1, jn)
    tris += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]

    # Orient the triangles on a reference capsule (unit radii, ends at z = 0 and z = 2), placed
    # the way the vertex shader places an untapered one.
    end = vertices[:, 3]
    lat = np.where(end == 0, -0.5 * np.pi + vertices[:, 2] * 0.5 * np.pi, 0.5 * np.pi - vertices[:, 2] * 0.5 * np.pi)
    normals = np.concatenate([np.cos(lat)[:, None] * vertices[:, :2], np.sin(lat)[:, None]], axis=1)
    pos = normals + np.stack([np.zeros_like(end), np.zeros_like(end), 2.0 * end], axis=1)
    return vertices, _outward(pos, np.concatenate(tris), normals).astype(np.int32)


def sphere_mesh(segments: int = 20, rings: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere: vertices (V, 6) = (position, normal), indices (T, 3)."""
    theta = np.linspace(0.0, np.pi, rings + 1)[1:-1]  # polar angle, poles added separately
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring_pts = np.stack([st * np.cos(phi), st * np.sin(phi), np.broadcast_to(ct, (rings - 1, segments))], axis=2).reshape(-1, 3)
    pos = np.concatenate([[[0.0, 0.0, 1.0]], ring_pts, [[0.0, 0.0, -1.0]]])
    j = np.arange(segments)
    jn = (j + 1) % segments
    top, bottom = 0, len(pos) - 1
    tris = [np.stack([np.full(segments, top), 1 + j, 1 + jn], axis=1)]
    for r in range(rings - 2):
        a, b = 1 + r * segments + j, 1 + r * segments + jn
        c, d = a + segments, b + segments
        tris += [np.stack([a, c, b], axis=1), np.stack([b, c, d], axis=1)]
    last = 1 + (rings - 2) * segments
    tris.append(np.stack([last + j, np.full(segments, bottom), last + jn], axis=1))
    vertices = np.concatenate([pos, pos], axis=1).astype(np.float32)
    return vertices, _outward(pos, np.concatenate(tris)).astype(np.int32)


def box_mesh() -> tuple[np.ndarray, np.ndarray]:
    """Cube [-1, 1]^3 with flat faces: vertices (24, 6) = (position, normal), indices (12, 3)."""
    verts, tris = [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = np.zeros(3)
            n[axis] = sign
            u, v = np.eye(3)[(axis + 1) % 3], np.eye(3)[(axis + 2) % 3]
            base = len(verts)
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                verts.append(np.concatenate([n + du * u + dv * v, n]))
            tris += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    verts = np.array(verts)
    return verts.astype(np.float32), _outward(verts[:, :3], np.array(tris), verts[:, 3:]).astype(np.int32)


def cylinder_mesh(segments: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Cylinder of radius 1 from z = -1 to z = 1 with flat caps: vertices (V, 6), indices (T, 3)."""
    phi = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    c, s = np.cos(phi), np.sin(phi)
    zeros, ones = np.zeros(segments), np.ones(segments)
    side = [np.stack([c, s, z * ones, c, s, zeros], axis=1) for z in (-1.0, 1.0)]
    caps = [np.stack([c, s, z * ones, zeros, zeros, z * ones], axis=1) for z in (-1.0, 1.0)]
    centres = np.array([[0, 0, -1, 0, 0, -1], [0, 0, 1, 0, 0, 1]], dtype=np.float64)
    verts = np.concatenate(side + caps + [centres])
    j = np.arange(segments)
    jn = (j + 1) % segments
    lo, hi, cap_lo, cap_hi = 0, segments, 2 * segments, 3 * segments
    centre_lo, centre_hi = 4 * segments, 4 * segments + 1
    tris = np.concatenate(
        [
            np.stack([lo + j, lo + jn, hi + jn], axis=1),
            np.stack([lo + j, hi + jn, hi + j], axis=1),
            np.stack([np.full(segments, centre_lo), cap_lo + j, cap_lo + jn], axis=1),
            np.stack([np.full(segments, centre_hi), cap_hi + j, cap_hi + jn], axis=1),
        ]
    )
    return verts.astype(np.float32), _outward(verts[:, :3], tris, verts[:, 3:]).astype(np.int32)


def _outward(pos: np.ndarray, tris: np.ndarray, normals: np.ndarray | None = None) -> np.ndarray:
    """Reorder each triangle so that it winds counter-clockwise seen from outside.

    "Outside" is the side its vertex normals point to (for a sphere, the position itself).
    """
    normals = pos if normals is None else normals
    p = pos[tris]
    face_n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    flip = np.einsum("ij,ij->i", face_n, normals[tris].sum(axis=1)) < 0
    out = tris.copy()
    out[flip] = tris[flip][:, ::-1]
    return out
