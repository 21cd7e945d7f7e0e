"""The Unity player's engine-free core, compiled with mcs and checked from Python.

The console runner (unity_project/ConsoleRunner, built by the csharp_runner fixture) is built from the UPM package's Core assembly and
EditMode tests. It runs those tests, and it turns the shared vectors in tests/data/unity_vectors.json
into protocol messages and computed values; here they are decoded and checked against the JSON
Schema, the pydantic models, the real collector, hand-computed cases and an independent numpy
derivation through Unity's projection matrix.
"""

from __future__ import annotations

import json
import math
import subprocess
import zlib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from bridge import protocol
from bridge.collector import Collector, Expectations
from generator.camera import in_image, project_points, right_view_points, world_to_camera
from generator.masks import decode_mask_png
from generator.store import DatasetReader, DatasetStore

ROOT = Path(__file__).resolve().parents[1]
UNITY = ROOT / "unity_project"
VECTORS = Path(__file__).with_name("data") / "unity_vectors.json"
BODY_VECTORS = Path(__file__).with_name("data") / "unity_body_vectors.json"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def runner(csharp_runner) -> Path:
    return csharp_runner


@pytest.fixture(scope="module")
def vectors() -> dict:
    return json.loads(VECTORS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def out(runner, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("vectors")
    run = subprocess.run(["mono", str(runner), "vectors", str(VECTORS), str(folder)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return folder


@pytest.fixture(scope="module")
def results(out) -> dict:
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


def _schema(name: str) -> dict:
    path = protocol.SCHEMA_DIR / f"{name}.schema.json"
    assert path.is_file(), f"{path} is missing: the C# side is checked against the exported schema files"
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------
# The EditMode tests, run outside Unity


def test_editmode_tests_pass_under_mono(runner):
    run = subprocess.run(["mono", str(runner), "test"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    passed = [line for line in run.stdout.splitlines() if line.startswith("PASS ")]
    assert len(passed) >= 25, run.stdout
    assert "0 failed" in run.stdout


# ------------------------------------------------------------------------------------------------
# Camera math: Unity FOV / physical camera -> K, and Unity frames -> ours


def _unity_projection(cam: dict, width: int, height: int) -> np.ndarray:
    """Unity's perspective projection matrix for a camera description, as Unity builds it: a
    physical camera's gate fit picks the FOV and aspect, and the lens shift (a fraction of the
    sensor) enters m02/m12 as twice the shift in fractions of the gate."""
    aspect = width / height
    if "fov_y_deg" in cam:
        fov, proj_aspect, sx, sy = math.radians(cam["fov_y_deg"]), aspect, 0.0, 0.0
    else:
        f = cam["focal_mm"]
        sw, sh = cam["sensor_mm"]
        sx, sy = cam["lens_shift"]
        sensor_aspect = sw / sh
        fit = cam["gate_fit"]
        if fit == "Fill":
            fit = "Vertical" if sensor_aspect > aspect else "Horizontal"
        elif fit == "Overscan":
            fit = "Horizontal" if sensor_aspect > aspect else "Vertical"
        if fit == "Vertical":
            fov, proj_aspect, sx = 2 * math.atan(sh / (2 * f)), aspect, sx * sensor_aspect / aspect
        elif fit == "Horizontal":
            fov, proj_aspect, sy = 2 * math.atan(sw / aspect / (2 * f)), aspect, sy * aspect / sensor_aspect
        else:  # None: the sensor's own aspect, stretched onto the viewport
            fov, proj_aspect = 2 * math.atan(sh / (2 * f)), sensor_aspect
    cot = 1.0 / math.tan(fov / 2)
    P = np.zeros((4, 4))
    P[0, 0], P[1, 1], P[0, 2], P[1, 2] = cot / proj_aspect, cot, 2 * sx, 2 * sy
    P[2, 2], P[2, 3], P[3, 2] = -1.0, -0.6, -1.0  # any near/far; depth is not used
    return P


def _pixels_through_unity(P: np.ndarray, points_cv: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenCV camera points -> Unity view space (x, -y, -z) -> clip -> NDC -> pixels (origin top-left)."""
    view = np.c_[points_cv[:, 0], -points_cv[:, 1], -points_cv[:, 2], np.ones(len(points_cv))]
    clip = view @ P.T
    ndc = clip[:, :2] / clip[:, 3:4]
    return np.c_[(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height]


def test_intrinsics_match_unitys_projection_matrix(vectors, results):
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-800, 800, (50, 2)), rng.uniform(1500, 6000, 50)]
    for case in vectors["intrinsics"]:
        K = np.array(results["intrinsics"][case["name"]])
        w, h = case["width"], case["height"]
        assert K[2].tolist() == [0, 0, 1] and K[0, 1] == 0 and K[1, 0] == 0, case["name"]
        expected = _pixels_through_unity(_unity_projection(case["camera"], w, h), points, w, h)
        np.testing.assert_allclose(project_points(points, K), expected, atol=1e-6, err_msg=case["name"])


def test_intrinsics_hand_computed(results):
    K = np.array(results["intrinsics"]["fov90_200x100"])
    np.testing.assert_allclose(K, [[50, 0, 100], [0, 50, 50], [0, 0, 1]], atol=1e-9)
    # 35 mm on a 24 mm-high gate at 1080 rows: 35 * 1080 / 24 = 1575 px; the +0.1 shift (of 36 mm,
    # fitted to the 42.67 mm-wide gate) moves the principal point 0.1 * 36 * 45 = 162 px left.
    K = np.array(results["intrinsics"]["physical_vertical_wide"])
    np.testing.assert_allclose(K, [[1575, 0, 960 - 162], [0, 1575, 540 - 0.05 * 24 * 45], [0, 0, 1]], atol=1e-9)
    K = np.array(results["intrinsics"]["physical_none_wide"])
    np.testing.assert_allclose(K[0], [35 * 1920 / 36, 0, 960 - 0.1 * 1920], atol=1e-9)
    np.testing.assert_allclose(K[1], [0, 35 * 1080 / 24, 540 - 0.05 * 1080], atol=1e-9)


def _quat_matrix(x, y, z, w) -> np.ndarray:
    n = math.sqrt(x * x + y * y + z * z + w * w)
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _axis_rotation(axis: int, deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def _unity_rotation(case: dict) -> np.ndarray:
    if "camera_euler_deg" in case:  # Quaternion.Euler: z first, then x, then y
        ex, ey, ez = case["camera_euler_deg"]
        return _axis_rotation(1, ey) @ _axis_rotation(0, ex) @ _axis_rotation(2, ez)
    return _quat_matrix(*case["camera_quaternion"])


def test_handedness_conversion_hand_computed(results):
    r = results["points"]["forward_identity"]
    np.testing.assert_allclose(r["R"], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)
    np.testing.assert_allclose(r["t"], [0, 1500, 4000], atol=1e-9)
    np.testing.assert_allclose(r["world_mm"], [[1000, 0, 2000], [0, 0, 1500], [-2000, 6000, 0]], atol=1e-9)
    np.testing.assert_allclose(r["camera_mm"], [[1000, -500, 4000], [0, 0, 4000], [-2000, 1500, 10000]], atol=1e-9)
    # Pitched down 30 degrees from 2 m: the floor point 5 m ahead along the axis is 5 / cos 30 m away.
    np.testing.assert_allclose(results["points"]["pitched_down_30"]["camera_mm"][0], [0, 0, 5000 / math.cos(math.pi / 6)], atol=1e-6)
    # Yawed 90 degrees to face Unity +x: Unity +z is on the camera's left.
    np.testing.assert_allclose(results["points"]["yaw_90"]["camera_mm"], [[0, 0, 3000], [-1000, -1000, 3000]], atol=1e-9)


def test_extrinsics_match_an_independent_derivation(vectors, results):
    A = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)  # Unity (x, y, z) -> ours (x, z, y)
    for case in vectors["points"]:
        r = results["points"][case["name"]]
        Q = _unity_rotation(case)
        c = np.array(case["camera_position"])
        p = np.array(case["unity_points"], dtype=float)
        # Unity's worldToCameraMatrix (view space looks down -z), then OpenCV = flip y and z.
        view = (p - c) @ Q  # rows: Q^T (p - c)
        view[:, 2] *= -1
        cv = view * np.array([1, -1, -1]) * 1000
        R, t = np.array(r["R"]), np.array(r["t"])
        np.testing.assert_allclose(r["camera_mm"], cv, atol=1e-6, err_msg=case["name"])
        np.testing.assert_allclose(world_to_camera(p @ A.T * 1000, R, t), cv, atol=1e-6, err_msg=case["name"])
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        back = np.array(r["pose_back"])
        np.testing.assert_allclose(back[:3], c, atol=1e-9)
        np.testing.assert_allclose(_quat_matrix(*back[3:]), Q, atol=1e-9)


def test_h36m_from_humanoid_bones(results):
    j = np.array(results["skeletons"]["with_neck"])
    np.testing.assert_allclose(j[0], [0, 0.95, 0], atol=1e-12)  # Hip: mid upper legs
    np.testing.assert_allclose(j[8], [0, 1.5, 0], atol=1e-12)  # Thorax: the Neck bone
    np.testing.assert_allclose(j[7], (j[0] + j[8]) / 2, atol=1e-12)  # Spine
    np.testing.assert_allclose(j[[1, 2, 3, 11, 12, 13]], [[0.1, 0.95, 0], [0.1, 0.5, 0], [0.1, 0.08, 0], [-0.2, 1.45, 0], [-0.45, 1.45, 0], [-0.7, 1.45, 0]])
    assert j[10, 1] > j[9, 1] > j[8, 1] and j[9, 2] > 0  # head top above the nose, nose forward
    k = np.array(results["skeletons"]["no_neck_head_top"])
    np.testing.assert_allclose(k[8], [0, 1.45, 0], atol=1e-12)  # Thorax: mid shoulders without a neck
    np.testing.assert_allclose(k[10], [0, 1.82, 0], atol=1e-12)  # the rig's head-top bone
    assert k[9, 0] > 0  # forward is +x in this case


# ------------------------------------------------------------------------------------------------
# Protocol frames written by C#


def _raw_pattern(width: int, height: int, channels: int, salt: int) -> bytes:
    y, x, c = np.meshgrid(np.arange(height), np.arange(width), np.arange(channels), indexing="ij")
    return ((x * 3 + y * 5 + c * 7 + salt) & 0xFF).astype(np.uint8).tobytes()


def _expected_frame(case: dict, results: dict) -> dict:
    """The frame's ground truth from the case's inputs with generator.camera's functions."""
    w, h = case["width"], case["height"]
    A = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    world = np.array(case["joints_unity"]) @ A.T * 1000
    Q, c = _unity_rotation(case), np.array(case["camera_position"])
    R = np.diag([1.0, -1.0, 1.0]) @ Q.T @ A
    t = -np.diag([1.0, -1.0, 1.0]) @ Q.T @ c * 1000
    P = _unity_projection(case["camera"], w, h)
    fx, fy = P[0, 0] * w / 2, P[1, 1] * h / 2
    K = np.array([[fx, 0, w * (1 - P[0, 2]) / 2], [0, fy, h * (1 + P[1, 2]) / 2], [0, 0, 1]])
    cam = world_to_camera(world, R, t)
    uv = project_points(cam, K)
    vis = np.where(in_image(uv, (w, h), cam[:, 2]), 2, 0)
    vis[[j for j in case.get("occluded", []) if vis[j] == 2]] = 1
    return {
        "K": K, "R": R, "t": t, "joints_3d_world": world, "joints_3d": cam, "joints_2d": uv, "visibility": vis,
        "joints_2d_right": project_points(right_view_points(cam, case["baseline_mm"]), K),
    }


def test_frames_match_schema_models_and_ground_truth(vectors, results, out):
    schema = _schema("frame")
    for case in vectors["frames"]:
        header = (out / f"{case['name']}.header.json").read_bytes()
        image = (out / f"{case['name']}.image.bin").read_bytes()
        doc = json.loads(header)
        jsonschema.validate(doc, schema)
        h = protocol.FrameHeader.model_validate_json(header)
        exp = _expected_frame(case, results)
        assert (h.run_id, h.player_id, h.seq, h.frame_id, h.seed) == (case["run_id"], case["player_id"], case["seq"], case["frame_id"], case["seed"])
        assert h.camera.image_size == (case["width"], case["height"])
        # Frame numbers travel rounded to float32 (what the collector stores): relative 6e-8.
        for key in ("K", "R", "t"):
            np.testing.assert_allclose(getattr(h.camera, key), exp[key], rtol=1e-7, atol=1e-6, err_msg=f"{case['name']} {key}")
        for key in ("joints_3d_world", "joints_3d", "joints_2d", "joints_2d_right"):
            np.testing.assert_allclose(getattr(h, key), exp[key], rtol=1e-7, atol=1e-6, err_msg=f"{case['name']} {key}")
        assert list(h.visibility) == exp["visibility"].tolist(), case["name"]
        assert h.baseline_mm == case["baseline_mm"]
        src = case.get("source")
        assert h.source.model_dump() == ({"kind": "clip", **src} if src else {"kind": "prior"})
        assert h.meta == case.get("meta", {})
        # The image part: the same bytes numpy makes, described by its header.
        assert image == _raw_pattern(case["width"], case["height"], case["channels"], case["frame_id"])
        assert (h.image.encoding, h.image.shape) == ("raw", (case["height"], case["width"], case["channels"]))
        assert h.image.size_bytes == len(image) and h.image.crc32 == zlib.crc32(image)
        mask_path = out / f"{case['name']}.mask.bin"
        assert mask_path.exists() == ("mask" in case) == (h.mask is not None) == ("mask" in doc), case["name"]
        if h.mask is not None:  # the C# PNG encoder: a 0/1 greyscale PNG, rows flipped from the readback
            mask = mask_path.read_bytes()
            assert (h.mask.encoding, h.mask.shape) == ("png", (case["height"], case["width"]))
            assert h.mask.size_bytes == len(mask) and h.mask.crc32 == zlib.crc32(mask)
            np.testing.assert_array_equal(decode_mask_png(mask, (case["height"], case["width"])), _disc(case["width"], case["height"]))


def _disc(width: int, height: int) -> np.ndarray:
    """Program.cs DiscPattern, top row first, with its 255 written as 1."""
    y, x = np.mgrid[:height, :width] + 0.5
    disc = ((x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(width, height) / 3) ** 2).astype(np.uint8)
    disc[0, 0] = 1
    return disc


def _parts(out: Path, name: str) -> list[bytes]:
    """A C# frame as the player sends it: [header, image] or [header, image, mask]."""
    mask = out / f"{name}.mask.bin"
    return [(out / f"{name}.header.json").read_bytes(), (out / f"{name}.image.bin").read_bytes(), *([mask.read_bytes()] if mask.exists() else [])]


def test_frame_bytes_equal_pythons_encoder(vectors, out):
    """Byte for byte what bridge.protocol.encode_frame_header writes for the same values."""
    for case in vectors["frames"]:
        header = (out / f"{case['name']}.header.json").read_bytes()
        h = protocol.FrameHeader.model_validate_json(header)
        again = protocol.encode_frame_header(
            run_id=h.run_id, player_id=h.player_id, seq=h.seq, frame_id=h.frame_id, seed=h.seed,
            K=np.array(h.camera.K), image_size=h.camera.image_size, R=np.array(h.camera.R), t=np.array(h.camera.t),
            joints_2d=np.array(h.joints_2d), joints_3d=np.array(h.joints_3d), joints_3d_world=np.array(h.joints_3d_world),
            visibility=np.array(h.visibility), joints_2d_right=np.array(h.joints_2d_right), baseline_mm=h.baseline_mm,
            source=h.source.model_dump(), image=h.image, meta=h.meta, mask=h.mask,
        )
        assert header == again, f"{case['name']}:\nC#:     {header[:300]!r}\nPython: {again[:300]!r}"


def test_collector_accepts_every_frame(vectors, out, tmp_path):
    frames = vectors["frames"]
    store = DatasetStore.open(tmp_path / "ds", {"test": "unity-vectors"}, frames=len(frames), shard_size=len(frames), run_id="vectors")
    collector = Collector(store, Expectations(run_id="vectors", seed=42, frames=len(frames)))
    try:
        hello = (out / "hello.header.json").read_bytes()
        assert collector.handle([hello])
        for case in frames:
            assert collector.handle(_parts(out, case["name"])), collector.stats.reject_samples
        assert collector.stats.rejected == 0 and collector.stats.frames_accepted == len(frames)
        # Corrupted copies of C# frames (from another player id, so their sequence numbers are new) are
        # refused by the same checks: a flipped image byte, a flipped mask byte.
        def copy(name):
            header, *rest = _parts(out, name)
            return [header.replace(b'"player_id":"unity-0"', b'"player_id":"unity-9"'), *rest]

        header, image, *_ = copy(frames[0]["name"])
        assert not collector.handle([header, image[:100] + bytes([image[100] ^ 0xFF]) + image[101:]])
        header, image, mask = copy(next(c["name"] for c in frames if "mask" in c))
        assert not collector.handle([header, image, mask[:-1] + bytes([mask[-1] ^ 1])])
        assert dict(collector.stats.rejects) == {"checksum": 1, "mask": 1}
    finally:
        store.close()
    assert DatasetReader(tmp_path / "ds").has_mask.tolist() == ["mask" in c for c in frames]


def test_control_messages_match_schema_and_pythons_encoder(vectors, out):
    schema = _schema("control")
    for case in vectors["controls"]:
        header = (out / f"{case['name']}.header.json").read_bytes()
        jsonschema.validate(json.loads(header), schema)
        msg = protocol.decode_control(header)
        assert msg.type == case["type"] and msg.seq == case["seq"] and msg.player_id == case["player_id"]
        expected = {k: v for k, v in case.items() if k not in ("name",)}
        dumped = msg.model_dump(mode="json")
        for key, value in expected.items():
            assert dumped[key] == value, f"{case['name']}.{key}"
        assert header == protocol.encode_message(msg), case["name"]


def test_csharp_refuses_bad_frames_before_sending(results):
    errors = results["errors"]
    assert "joints_3d[3][1]: must be finite" in errors["bad_nan"]
    assert "visibility: values must be 0, 1 or 2, got 3" in errors["bad_visibility"]
    assert errors["bad_player_id"].startswith("player_id: must match")
    assert "does not match camera.image_size" in errors["bad_image_size"]
    assert errors["bad_joint_count"] == "joints_2d: needs 17 joints"


def test_config_errors_name_origin_key_and_problem(vectors, results):
    for case in vectors["configs"]:
        got = results["errors"][case["name"]]
        if case["expect"]:
            assert got.startswith(case["expect"]), f"{case['name']}: {got!r}"
        else:
            assert got == "", f"{case['name']}: {got!r}"


def test_sampled_cameras_follow_the_config(vectors, results):
    from generator.camera_sampler import CameraSamplerConfig

    cfg = vectors["sampled"]["config"]
    w, h = cfg["scene"]["image_size"]
    profiles = {p.name: p for p in CameraSamplerConfig().profiles}
    joints = np.array(vectors["sampled"]["joints_world_mm"])
    sampled = results["sampled"]
    assert len(sampled) == 25 and {s["profile"] for s in sampled.values()} == set(profiles)
    for frame, s in sampled.items():
        K, R, t = np.array(s["K"]), np.array(s["R"]), np.array(s["t"])
        p = profiles[s["profile"]]
        assert s["accepted"] and s["image_size"] == [w, h]
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
        fov = math.degrees(2 * math.atan(0.5 * max(w, h) / K[0, 0]))
        assert p.fov_deg[0] - 1e-9 <= fov <= p.fov_deg[1] + 1e-9, frame
        assert abs(K[0, 2] / w - 0.5) <= p.principal_point_jitter + 1e-12
        cam = world_to_camera(joints, R, t)
        assert in_image(project_points(cam, K), (w, h), cam[:, 2]).mean() >= 0.9, frame
        # The camera stands distance_mm from the look-at point (the pelvis plus a Gaussian jitter).
        dist = np.linalg.norm(-R.T @ t - joints[0])
        jitter = 5 * p.look_at_jitter_mm
        assert p.distance_mm[0] - jitter <= dist <= p.distance_mm[1] + jitter, frame


def test_csharp_reads_the_run_config_the_launcher_sends(runner, tmp_path):
    """The Unity player parses exactly what bridge/launcher.py puts on the config side channel."""
    from bridge.generate import GenerateConfig
    from bridge.launcher import UnityLauncher
    from bridge.players import PlayerAssignment

    exe = tmp_path / "posebridge-player.x86_64"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    # By default a Unity player gets 2000 poses of the run's pose source (about 0.9 MB of JSON).
    launcher = UnityLauncher.from_config(GenerateConfig.model_validate({"player": {"scene": {"image_size": [320, 240]}}}), tmp_path, unity_exe=str(exe))
    assert len(launcher.poses.rows) == 2000
    ids = np.r_[np.arange(0, 100), np.arange(250, 300)]
    config = launcher.run_config(PlayerAssignment(slot=1, attempt=2, run_id="run-7", seed=9, frame_ids=ids, endpoint="tcp://127.0.0.1:5557"))
    path = tmp_path / "run.json"
    path.write_bytes(config.to_bytes())
    run = subprocess.run(["mono", str(runner), "config", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "ok run_id=run-7 player_id=w1.2 frames=150 profiles=3 poses=2000"
    # A broken config is refused with the file, key path and problem.
    doc = json.loads(path.read_text())
    doc["scene"]["camera"]["profiles"][0]["fov_deg"] = [50, 40]
    path.write_text(json.dumps(doc))
    run = subprocess.run(["mono", str(runner), "config", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout.strip() == f"{path}: scene.camera.profiles[0].fov_deg: low 50 > high 40"


# ------------------------------------------------------------------------------------------------
# The human body: C# retargeting against generator/body/rig.py pose_body on shared vectors


def body_rig_from_vectors(vec: dict):
    """The JointRig Python builds from the vectors' rest data, the way the C# core does from a .glb:
    bone heads, and landmark vertices whose bone weights are summed per segment."""
    from generator.body.rig import SEGMENTS, joint_rig

    d = vec["definition"]
    seg = np.asarray(d["segment_of_bone"])
    landmarks = vec["rest"]["landmarks"]
    n = max(lm["vertex"] for lm in landmarks) + 1
    vertices = np.zeros((n, 3))
    segments = np.tile(np.arange(len(SEGMENTS)), (n, 1))
    weights = np.zeros((n, len(SEGMENTS)))
    for lm in landmarks:
        vertices[lm["vertex"]] = lm["position_mm"]
        for bone, w in lm["bone_weights"]:
            weights[lm["vertex"], seg[bone]] += w
        weights[lm["vertex"]] /= weights[lm["vertex"]].sum()
    return joint_rig(tuple(d["bones"]), np.asarray(vec["rest"]["bone_heads_mm"]), seg, d["landmarks"], vertices, segments, weights)


@pytest.fixture(scope="module")
def body_vectors() -> dict:
    return json.loads(BODY_VECTORS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def body_results(runner, body_vectors, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("body") / "body.json"
    run = subprocess.run(["mono", str(runner), "body-vectors", str(BODY_VECTORS), str(out)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == f"retargeted {len(body_vectors['targets'])} poses"
    return json.loads(out.read_text(encoding="utf-8"))


def test_body_vectors_reach_the_corner_cases(body_vectors):
    names = {t["name"] for t in body_vectors["targets"]}
    # Real mocap and prior poses, plus the rigid motion, the rest-twist fallback of the knee hinge
    # and the half-turn branch of the rotation log (tests/data/make_unity_body_vectors.py).
    assert {"rigid_motion", "knee_backward_21deg", "chest_half_turn"} <= names
    assert sum(n.startswith("bundled_") for n in names) >= 5 and sum(n.startswith("prior_") for n in names) >= 3


def test_csharp_retargeting_equals_pythons_pose_body(body_vectors, body_results):
    from generator.body.rig import pose_body, posed_joints

    rig = body_rig_from_vectors(body_vectors)
    np.testing.assert_allclose(body_results["rig"]["pivots"], rig.pivots, atol=1e-9)
    np.testing.assert_allclose(body_results["rig"]["rest_joints"], rig.rest_joints(), atol=1e-9)
    for target in body_vectors["targets"]:
        pose = pose_body(rig, np.asarray(target["joints_mm"]))
        got = body_results["poses"][target["name"]]
        np.testing.assert_allclose(got["Q"], pose.rotations, atol=1e-12, err_msg=target["name"])
        np.testing.assert_allclose(got["t"], pose.translations, atol=1e-9, err_msg=target["name"])
        np.testing.assert_allclose(got["joints"], posed_joints(rig, pose), atol=1e-9, err_msg=target["name"])
    # The rigid motion is recovered exactly: the body lands on the target.
    rigid = next(t for t in body_vectors["targets"] if t["name"] == "rigid_motion")
    np.testing.assert_allclose(body_results["poses"]["rigid_motion"]["joints"], rigid["joints_mm"], atol=1e-6)


def test_csharp_unity_motion_is_the_pose_seen_from_unity(body_vectors, body_results):
    """M = A Q F, c = A t / 1000: a point of the imported body (Unity root space, glTF with x
    mirrored, metres) moved by (M, c) and read back into our world is the posed point."""
    A = np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)  # Unity <-> our world axes
    F = np.array([[-1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=float)  # import space -> our world axes
    heads = np.asarray(body_vectors["rest"]["bone_heads_mm"])
    seg = np.asarray(body_vectors["definition"]["segment_of_bone"])
    for name, got in body_results["poses"].items():
        Q, t = np.asarray(got["Q"]), np.asarray(got["t"])
        M, c = np.asarray(got["unity_m"]), np.asarray(got["unity_c"])
        np.testing.assert_allclose(M, A @ Q @ F, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(c, t @ A.T / 1000, atol=1e-12, err_msg=name)
        assert np.allclose(np.linalg.det(M), 1.0)
        import_points = heads @ np.linalg.inv(F).T / 1000  # where glTFast puts the rest bone heads
        unity = np.einsum("bij,bj->bi", M[seg], import_points) + c[seg]
        posed = np.einsum("bij,bj->bi", Q[seg], heads) + t[seg]
        np.testing.assert_allclose(unity @ A.T * 1000, posed, atol=1e-6, err_msg=name)
