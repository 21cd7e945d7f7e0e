"""The body exported as glTF binary (generator/body/gltf.py) for the Unity player.

The .glb is read back with pygltflib and skinned with glTF's math; the vertices must equal both the
vertex shader's segment skinning (rig.skin_points) and Anny's own forward pass driven with world
bone poses, within 1e-3 mm. The Unity package's engine-free core (C#, compiled with mcs) reads the
same file, retargets, poses the bones the way the player writes Unity Transforms, and skins the mesh
the way Unity does (localToWorld * bindpose): it must land on the same vertices and joints.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from click.testing import CliRunner

from generator.body import gltf as G
from generator.body.appearance import PARTS
from generator.body.model import PHENOTYPE_LABELS, _anny, anny_rest_model, load_body_model
from generator.body.rig import BODY_JOINTS, SEGMENTS, pose_body, posed_joints, skin_points
from generator.poses import load_pose_source
from generator.skeleton import JOINT_NAMES

pytestmark = pytest.mark.timeout(600)

PHENOTYPE = np.array([0.7, 0.45, 0.6, 0.35, 0.8, 0.5])
TOLERANCE_MM = 1e-3
DATA = Path(__file__).with_name("data")


@pytest.fixture(scope="module")
def model():
    return load_body_model()


@pytest.fixture(scope="module")
def glb(model, tmp_path_factory) -> Path:
    return G.export_body(tmp_path_factory.mktemp("body") / "body.glb", PHENOTYPE, model=model)


@pytest.fixture(scope="module")
def body(glb) -> G.BodyGlb:
    return G.read_body_glb(glb)


@pytest.fixture(scope="module")
def identity(model):
    ids = model.identities(PHENOTYPE[None])
    return ids, model.joint_rig(ids, 0)


@pytest.fixture(scope="module")
def poses(identity) -> dict[str, np.ndarray]:
    """Real mocap poses (the bundled clips) and a prior pose, as h36m17 targets."""
    bank = load_pose_source("bundled", seed=0)
    prior = load_pose_source("prior", seed=0, prior_size=50)
    return {"bundled_first": bank.joints[0], "bundled_middle": bank.joints[len(bank) // 2], "prior_7": prior.joints[7]}


def test_glb_structure_is_consistent(glb, model, identity):
    doc = pygltflib.GLTF2.load_binary(str(glb))
    n_bones, n_vertices = len(model.bone_labels), len(model.influence_weights)
    assert n_bones == 104 and len(doc.nodes) == n_bones + 1 and len(doc.skins) == 1 and len(doc.meshes) == 1
    skin = doc.skins[0]
    assert skin.joints == list(range(n_bones)) and [doc.nodes[j].name for j in skin.joints] == list(model.bone_labels)
    assert doc.accessors[skin.inverseBindMatrices].count == n_bones and doc.accessors[skin.inverseBindMatrices].type == "MAT4"
    body_node = doc.nodes[-1]
    assert body_node.mesh == 0 and body_node.skin == 0 and not body_node.children
    assert doc.scenes[doc.scene].nodes == [0, n_bones]
    prim = doc.meshes[0].primitives[0]
    attrs = {k: v for k, v in vars(prim.attributes).items() if v is not None}
    assert set(attrs) == {"POSITION", "NORMAL", "COLOR_0", "_PART_ALONG", "JOINTS_0", "WEIGHTS_0", "JOINTS_1", "WEIGHTS_1", "JOINTS_2", "WEIGHTS_2"}
    assert all(doc.accessors[a].count == n_vertices for a in attrs.values())
    assert doc.accessors[prim.indices].count == 3 * len(model.faces)
    pos = doc.accessors[attrs["POSITION"]]
    # Parents listed first: every child node index is larger than its parent's.
    for i, node in enumerate(doc.nodes[:n_bones]):
        assert all(c > i for c in node.children or [])
        assert (model.bone_parents[node.children or []] == i).all()
    body = G.read_body_glb(glb)
    np.testing.assert_allclose(pos.min, body.positions.min(axis=0), atol=1e-7)
    np.testing.assert_allclose(pos.max, body.positions.max(axis=0), atol=1e-7)
    assert (body.joints < n_bones).all() and (body.weights >= 0).all()
    np.testing.assert_allclose(body.weights.sum(axis=1), 1.0, atol=1e-6)
    assert ((body.weights > 0).sum(axis=1) == (_anny().vertex_bone_weights.numpy() > 0).sum(axis=1)).all()
    assert np.all(np.diff(body.weights, axis=1) <= 0), "weights are stored largest first"
    # The inverse bind matrices invert the joints' rest (bind) world transforms.
    np.testing.assert_allclose(body.world @ body.inverse_bind, np.broadcast_to(np.eye(4), body.world.shape), atol=2e-6)
    # The joints' rest world transforms are Anny's rest bone poses in glTF axes.
    ids, _ = identity
    np.testing.assert_allclose(G.gltf_to_world(body.world[:, :3, 3]), ids.bone_heads[0], atol=1e-6)
    rest = anny_rest_model(PHENOTYPE[None])["rest_bone_poses"][0]
    C = G.GLTF_FROM_WORLD
    np.testing.assert_allclose(body.world[:, :3, :3], C @ rest[:, :3, :3] @ C.T, atol=1e-9)
    np.testing.assert_allclose(G.gltf_to_world(body.positions), ids.vertices[0], atol=1e-4)
    np.testing.assert_array_equal(body.faces, model.faces)
    np.testing.assert_allclose(np.linalg.norm(body.normals, axis=1), 1.0, atol=1e-5)


def test_glb_axes_are_gltfs(body, model):
    """y up, the face towards +z, the body's left at +x (glTF's convention for assets)."""
    head, feet = body.positions[:, 1].max(), body.positions[:, 1].min()
    assert head - feet > 1.2  # metres
    names = list(body.node_names)
    heads = body.world[:, :3, 3]
    assert heads[names.index("head"), 1] > heads[names.index("root"), 1] > heads[names.index("foot.L"), 1]
    assert heads[names.index("upperarm01.L"), 0] > 0 > heads[names.index("upperarm01.R"), 0]
    # The face looks towards +z: the head's most forward vertex (the nose tip) lies well in front of
    # the top of the head, and the normals there point outwards, towards +z.
    head_vertices = np.flatnonzero(body.positions[:, 1] > body.positions[model.landmarks["head_top"], 1] - 0.25)
    nose = head_vertices[np.argmax(body.positions[head_vertices, 2])]
    assert body.positions[nose, 2] > body.positions[model.landmarks["head_top"], 2] + 0.05
    assert abs(body.positions[nose, 0]) < 0.02 and body.normals[nose, 2] > 0.5


def test_glb_extras_carry_the_definitions(body, model):
    d = body.definition
    assert d["format"] == "posebridge-body" and d["version"] == 1
    assert d["bones"] == list(model.bone_labels) and d["segment_of_bone"] == model.segment_of_bone.tolist()
    assert [s["name"] for s in d["segments"]] == [s[0] for s in SEGMENTS]
    assert [j["name"] for j in d["h36m17"]] == list(JOINT_NAMES)
    for j in d["h36m17"]:
        bones, landmarks = BODY_JOINTS[j["name"]]
        assert j.get("bones", []) == list(bones)  # pygltflib leaves empty lists out
        assert j.get("landmarks", []) == [model.landmarks[n] for n in landmarks]
    assert d["landmarks"] == model.landmarks
    assert [p["name"] for p in d["parts"]] == list(PARTS)
    assert d["phenotype"] == pytest.approx(dict(zip(PHENOTYPE_LABELS, PHENOTYPE)))
    # Per-vertex parts: _PART_ALONG holds (part, along), COLOR_0 the part's colour.
    np.testing.assert_array_equal(body.part_along[:, 0], model.vertex_part)
    np.testing.assert_allclose(body.part_along[:, 1], model.vertex_along, atol=1e-6)
    palette = np.array([p["color"] for p in d["parts"]])
    np.testing.assert_array_equal(body.colors[:, :3], palette[model.vertex_part])


def test_humanoid_map_names_a_valid_unity_hierarchy(body):
    """Unity's Humanoid needs the mapped bones in its own parent order: every bone below Hips, the
    legs and spine below Hips, arms below the (upper) chest, fingers below their hand."""
    names = list(body.node_names)
    hum = {k: names.index(v) for k, v in body.definition["humanoid"].items()}

    def below(child: str, ancestor: str) -> bool:
        b = body.parents[hum[child]]
        while b >= 0:
            if b == hum[ancestor]:
                return True
            b = body.parents[b]
        return False

    required = ["Hips", "Spine", "Head", *(f"{s}{b}" for s in ("Left", "Right") for b in ("UpperLeg", "LowerLeg", "Foot", "UpperArm", "LowerArm", "Hand"))]
    assert set(required) <= set(hum) and len(set(hum.values())) == len(hum)
    for side in ("Left", "Right"):
        assert below(f"{side}LowerLeg", f"{side}UpperLeg") and below(f"{side}Foot", f"{side}LowerLeg") and below(f"{side}UpperLeg", "Hips")
        assert below(f"{side}UpperArm", f"{side}Shoulder") and below(f"{side}Shoulder", "UpperChest")
        assert below(f"{side}Hand", f"{side}LowerArm") and below(f"{side}LowerArm", f"{side}UpperArm")
        for finger in ("Thumb", "Index", "Middle", "Ring", "Little"):
            assert below(f"{side}{finger}Proximal", f"{side}Hand") and below(f"{side}{finger}Distal", f"{side}{finger}Intermediate")
    assert below("Spine", "Hips") and below("Chest", "Spine") and below("UpperChest", "Chest") and below("Neck", "UpperChest") and below("Head", "Neck")


def test_gltf_skinning_equals_the_shader_and_anny(body, model, identity, poses):
    ids, rig = identity
    anny = _anny()
    rest = anny_rest_model(PHENOTYPE[None])["rest_bone_poses"][0]
    # At rest the skin gives the mesh back.
    np.testing.assert_allclose(G.gltf_skin(body, body.local), body.positions, atol=1e-6)
    worst_shader = worst_anny = 0.0
    for name, target in poses.items():
        pose = pose_body(rig, target.astype(np.float64))
        glb_vertices = G.gltf_to_world(G.gltf_skin(body, G.posed_locals(body, pose)))
        shader = skin_points(pose, ids.vertices[0].astype(np.float64), model.influence_segments, model.influence_weights)
        world = G.anny_world_bone_poses(rest, model.segment_of_bone, pose)
        with torch.no_grad():
            out = anny(pose_parameters=torch.as_tensor(world)[None], phenotype_kwargs=torch.as_tensor(PHENOTYPE[None]), pose_parameterization="world")
        anny_vertices = out["vertices"][0].numpy() * 1000.0
        # Anny keeps the world poses it was given: bone heads land where the segments put them.
        heads = np.einsum("bij,bj->bi", pose.rotations[model.segment_of_bone], ids.bone_heads[0]) + pose.translations[model.segment_of_bone]
        np.testing.assert_allclose(out["bone_poses"][0, :, :3, 3].numpy() * 1000.0, heads, atol=1e-6, err_msg=name)
        d_shader = np.abs(glb_vertices - shader).max()
        d_anny = np.abs(glb_vertices - anny_vertices).max()
        assert d_shader < TOLERANCE_MM and d_anny < TOLERANCE_MM, f"{name}: {d_shader:.2e} / {d_anny:.2e} mm"
        worst_shader, worst_anny = max(worst_shader, d_shader), max(worst_anny, d_anny)
        # The pose moved the body: the check is not a rest-pose tautology.
        assert np.abs(glb_vertices - G.gltf_to_world(body.positions)).max() > 100.0
    print(f"max |glb - skin_points| = {worst_shader:.2e} mm, max |glb - Anny| = {worst_anny:.2e} mm")


def test_csharp_core_reads_the_glb_and_poses_it_like_python(csharp_runner, glb, model, identity, poses, tmp_path):
    ids, rig = identity
    targets = tmp_path / "poses.json"
    targets.write_text(json.dumps([{"name": n, "joints_mm": j.astype(float).tolist()} for n, j in poses.items()]))
    out = tmp_path / "out.json"
    run = subprocess.run(["mono", str(csharp_runner), "body-glb", str(glb), str(targets), str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    res = json.loads(out.read_text())
    assert (res["bones"], res["vertices"], res["triangles"], res["max_influences"]) == (104, len(ids.vertices[0]), len(model.faces), 9)
    assert res["humanoid"] == G.HUMANOID_BONES
    assert res["rest_skin_error_m"] < 1e-6
    np.testing.assert_allclose(res["rig"]["pivots"], rig.pivots, atol=1e-6)
    np.testing.assert_allclose(res["rig"]["rest_joints"], rig.rest_joints(), atol=1e-3)
    shader_worst = 0.0
    for name, target in poses.items():
        pose = pose_body(rig, target.astype(np.float64))
        got = res["poses"][name]
        np.testing.assert_allclose(got["Q"], pose.rotations, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(got["t"], pose.translations, atol=1e-3, err_msg=name)
        joints = posed_joints(rig, pose)
        np.testing.assert_allclose(got["joints"], joints, atol=TOLERANCE_MM, err_msg=name)
        # What the player does: bones set from the segment motions, joints from bone heads and skinned landmarks.
        np.testing.assert_allclose(got["unity_joints_mm"], joints, atol=TOLERANCE_MM, err_msg=name)
        heads = np.einsum("bij,bj->bi", pose.rotations[model.segment_of_bone], ids.bone_heads[0]) + pose.translations[model.segment_of_bone]
        np.testing.assert_allclose(got["unity_bone_heads_mm"], heads, atol=TOLERANCE_MM, err_msg=name)
        shader = skin_points(pose, ids.vertices[0].astype(np.float64), model.influence_segments, model.influence_weights)
        d = np.abs(np.asarray(got["unity_vertices_mm"]).reshape(-1, 3) - shader).max()
        assert d < TOLERANCE_MM, f"{name}: Unity-space skinning is {d:.2e} mm off"
        shader_worst = max(shader_worst, d)
    print(f"max |C# Unity-space skinning - skin_points| = {shader_worst:.2e} mm")


def test_csharp_refuses_a_glb_that_is_not_a_body(csharp_runner, tmp_path):
    plain = tmp_path / "plain.glb"
    doc = pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0"), scenes=[pygltflib.Scene(nodes=[0])], nodes=[pygltflib.Node(name="x")])
    doc.save_binary(str(plain))
    run = subprocess.run(["mono", str(csharp_runner), "body-glb", str(plain), str(tmp_path / "p.json"), str(tmp_path / "o.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout.strip().startswith(f"{plain}: no extras.posebridge body definition")


def test_export_is_deterministic_and_refuses_bad_input(glb, model, tmp_path):
    again = G.export_body(tmp_path / "again.glb", PHENOTYPE, model=model)
    assert again.read_bytes() == glb.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(G.BodyExportError, match="use a .glb name"):
        G.export_body(tmp_path / "x.gltf", PHENOTYPE, model=model)
    with pytest.raises(G.BodyExportError, match=r"6 values in \[0, 1\]"):
        G.export_body(tmp_path / "x.glb", np.array([0.5, 0.5, 0.5, 0.5, 0.5, 1.5]), model=model)
    plain = tmp_path / "plain.glb"
    pygltflib.GLTF2(asset=pygltflib.Asset(version="2.0")).save_binary(str(plain))
    with pytest.raises(G.BodyExportError, match=f"{plain}: no extras.posebridge"):
        G.read_body_glb(plain)
    junk = tmp_path / "junk.glb"
    junk.write_bytes(b"not a glb at all")
    with pytest.raises(G.BodyExportError, match=f"{junk}: not a glTF binary file"):
        G.read_body_glb(junk)


def test_export_body_cli(tmp_path):
    from posebridge import main

    out = tmp_path / "pool.glb"
    r = CliRunner().invoke(main, ["export-body", "--out", str(out), "--identity-seed", "3", "--index", "5"])
    assert r.exit_code == 0, r.output
    d = G.read_body_glb(out).definition
    assert list(d["phenotype"].values()) == pytest.approx(G.pool_phenotype(3, 5).tolist())
    r = CliRunner().invoke(main, ["export-body", "--out", str(tmp_path / "p.glb"), "--phenotype", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6"])
    assert r.exit_code == 0, r.output
    assert list(G.read_body_glb(tmp_path / "p.glb").definition["phenotype"].values()) == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    r = CliRunner().invoke(main, ["export-body", "--out", str(tmp_path / "q.glb"), "--phenotype", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "--identity-seed", "1"])
    assert r.exit_code != 0 and "not both" in r.output
    r = CliRunner().invoke(main, ["export-body", "--out", str(tmp_path / "q.glb"), "--identity-seed", "1", "--index", "9999"])
    assert r.exit_code != 0 and "outside the pool" in r.output


def test_unity_body_vectors_match_the_model():
    """tests/data/unity_body_vectors.json (read by tests/test_unity_core.py without Anny) still
    describes the current body model; regenerate it with tests/data/make_unity_body_vectors.py."""
    spec = importlib.util.spec_from_file_location("make_unity_body_vectors", DATA / "make_unity_body_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = json.loads(json.dumps(module.build_vectors()))
    stored = json.loads((DATA / "unity_body_vectors.json").read_text(encoding="utf-8"))
    assert fresh["definition"] == stored["definition"]
    assert [t["name"] for t in fresh["targets"]] == [t["name"] for t in stored["targets"]]
    np.testing.assert_allclose(fresh["rest"]["bone_heads_mm"], stored["rest"]["bone_heads_mm"], atol=1e-9)
    for a, b in zip(fresh["rest"]["landmarks"], stored["rest"]["landmarks"]):
        assert a["vertex"] == b["vertex"]
        np.testing.assert_allclose(a["position_mm"], b["position_mm"], atol=1e-9)
        np.testing.assert_allclose(a["bone_weights"], b["bone_weights"], atol=1e-12)
    for a, b in zip(fresh["targets"], stored["targets"]):
        np.testing.assert_allclose(a["joints_mm"], b["joints_mm"], atol=1e-9)
