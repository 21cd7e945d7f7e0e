"""Writes tests/data/unity_body_vectors.json: one body's retargeting rig and target poses, shared by
Python's rig.pose_body and the Unity package's PoseBridge.Core.Retarget (tests/test_unity_core.py
compares their numbers; tests/test_body_gltf.py checks this file still matches the body model).

    PYTHONPATH=. python tests/data/make_unity_body_vectors.py

The rig data are exactly what the C# core reads from an exported .glb (bone heads, landmark
vertices and their bone weights) and the definition is the .glb's extras.posebridge.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("unity_body_vectors.json")
PHENOTYPE = [0.3, 0.6, 0.55, 0.4, 0.7, 0.45]  # gender, age, muscle, weight, height, proportions


def _rotation(axis, deg: float) -> np.ndarray:
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(deg)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


def _synthetic_targets(rest: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Poses that reach the corner cases of pose_body: a rigid motion, a straight limb, a knee bent
    against its hinge (the rest-twist fallback), a half turn between pelvis and chest (the half-turn
    branch of the rotation log)."""
    from generator.skeleton import JOINT_INDEX as J

    out = []
    R = _rotation([0.3, -0.2, 1.0], 137.0)
    out.append(("rigid_motion", rest @ R.T + np.array([1200.0, -350.0, 80.0])))
    out.append(("rest", rest.copy()))
    for name, deg in (("knee_forward_12deg", 12.0), ("knee_backward_21deg", -21.0)):
        p = rest.copy()
        knee, foot = p[J["LKnee"]], p[J["LFoot"]]
        lateral = p[J["LHip"]] - p[J["RHip"]]
        p[J["LFoot"]] = knee + _rotation(lateral, deg) @ (foot - knee)
        out.append((name, p))
    p = rest.copy()
    axis = p[J["Thorax"]] - p[J["Spine"]]
    upper = [J[n] for n in ("Thorax", "Neck/Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")]
    p[upper] = (p[upper] - p[J["Thorax"]]) @ _rotation(axis, 180.0).T + p[J["Thorax"]]
    out.append(("chest_half_turn", p))
    return out


def build_vectors() -> dict:
    from generator.body.gltf import body_definition
    from generator.body.model import _anny, load_body_model
    from generator.poses import load_pose_source

    model = load_body_model()
    phenotype = np.asarray(PHENOTYPE)
    ids = model.identities(phenotype[None])
    definition = body_definition(model, phenotype)
    anny = _anny()
    weights, indices = anny.vertex_bone_weights.numpy(), anny.vertex_bone_indices.numpy()
    landmarks = []
    for v in sorted(set(model.landmarks.values())):
        nz = weights[v] > 0
        landmarks.append({
            "vertex": int(v),
            "position_mm": ids.vertices[0, v].astype(np.float64).tolist(),
            "bone_weights": [[int(b), float(w)] for b, w in zip(indices[v][nz], weights[v][nz])],
        })
    rig = model.joint_rig(ids, 0)
    targets = []
    bank = load_pose_source("bundled", seed=0)
    for row in np.linspace(0, len(bank) - 1, 6).astype(int):
        targets.append((f"bundled_{row}", bank.joints[row].astype(np.float64)))
    prior = load_pose_source("prior", seed=0, prior_size=400)
    for row in (0, 57, 123, 311):
        targets.append((f"prior_{row}", prior.joints[row].astype(np.float64)))
    targets += _synthetic_targets(rig.rest_joints())
    return {
        "description": "One body's retargeting rig (our world frame, mm) and h36m17 targets; written by "
                       "tests/data/make_unity_body_vectors.py, read by the Unity core runner (body-vectors).",
        "phenotype": PHENOTYPE,
        "definition": definition,
        "rest": {"bone_heads_mm": ids.bone_heads[0].tolist(), "landmarks": landmarks},
        "targets": [{"name": n, "joints_mm": np.asarray(j, dtype=np.float64).tolist()} for n, j in targets],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(build_vectors(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
