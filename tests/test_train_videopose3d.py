"""The VideoPose3D importer, on small files in VideoPose3D's own layout made by the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generator.camera import look_at, project_points, world_to_camera
from generator.pairs_io import load_pairs
from generator.prior import sample_prior_poses
from generator.skeleton import H36M_TO_COCO
from train.videopose3d import H36M32_TO_17, import_videopose3d

FX, CX, CY = 1145.0, 512.0, 515.0


def _cameras(n: int) -> list[dict]:
    cams = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        R, t = look_at(np.array([4500 * np.cos(angle), 4500 * np.sin(angle), 1600.0]), np.array([0.0, 0.0, 900.0]))
        cams.append({"name": f"cam{i}", "K": [[FX, 0, CX], [0, FX, CY], [0, 0, 1]], "image_size": [1000, 1002], "R": R.tolist(), "t": t.tolist()})
    return cams


def _write_dataset(tmp_path, rng, layout="h36m", joints_3d=32, extra_2d_frames=0):
    """data_3d (metres, 32 joints) + data_2d (per camera, pixels) + camera file, as VideoPose3D has them."""
    cams = _cameras(2)
    pos3d, pos2d, truth = {}, {}, {}
    for subject, actions in {"S1": ["Walking 1", "Eating"], "S9": ["Walking"]}.items():
        pos3d[subject], pos2d[subject] = {}, {}
        for action in actions:
            world17 = sample_prior_poses(rng, 12).astype(np.float64)  # mm
            full = np.zeros((12, 32, 3))
            full[:, H36M32_TO_17] = world17 / 1000.0
            pos3d[subject][action] = full if joints_3d == 32 else world17 / 1000.0
            views = []
            for cam in cams:
                cam_pts = world_to_camera(world17, np.array(cam["R"]), np.array(cam["t"]))
                uv = project_points(cam_pts, np.array(cam["K"]))
                uv = np.concatenate([uv, uv[-1:].repeat(extra_2d_frames, 0)]) if extra_2d_frames else uv
                if layout == "coco":
                    uv = np.einsum("kj,tjd->tkd", H36M_TO_COCO, uv)  # only the 13 shared joints survive the round trip
                views.append(uv.astype(np.float32))
                truth[(subject, action, cam["name"])] = (uv, cam_pts)
            pos2d[subject][action] = views
    np.savez(tmp_path / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d=pos2d, metadata={"layout_name": layout, "num_joints": 17})
    (tmp_path / "cameras.json").write_text(json.dumps({"format": "posebridge-cameras", "version": 1, "subjects": {"S1": cams, "S9": cams}}))
    return truth


def test_import_round_trip(tmp_path, rng):
    truth = _write_dataset(tmp_path, rng, extra_2d_frames=3)
    out = tmp_path / "h36m_pairs.npz"
    summary = import_videopose3d(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz", tmp_path / "cameras.json", out)
    assert summary.n == 3 * 2 * 12 and summary.sequences == 6
    pairs = load_pairs(out)
    assert len(pairs) == 72
    assert sorted(set(pairs.action.tolist())) == ["Eating", "Walking"]  # "Walking 1" counts as Walking
    for (subject, action, cam), (uv, cam_pts) in truth.items():
        rows = (pairs.subject == subject) & (pairs.sequence == f"{subject}/{action}") & (pairs.camera == cam)
        assert rows.sum() == 12  # the 3 extra 2D frames are cut, as VideoPose3D does
        np.testing.assert_allclose(pairs.joints_2d[rows], uv[:12], atol=1e-3)
        np.testing.assert_allclose(pairs.joints_3d[rows], cam_pts, atol=1e-2)  # metres -> mm, world -> camera
    np.testing.assert_allclose(pairs.K[0], [[FX, 0, CX], [0, FX, CY], [0, 0, 1]])
    assert pairs.image_size[0].tolist() == [1000, 1002]
    # The imported 3D projects onto the imported 2D: the file is consistent.
    np.testing.assert_allclose(project_points(pairs.joints_3d.astype(np.float64), pairs.K.astype(np.float64)), pairs.joints_2d, atol=1e-2)


def test_import_subset_and_coco_layout(tmp_path, rng):
    _write_dataset(tmp_path, rng, layout="coco", joints_3d=17)
    out = tmp_path / "s9.npz"
    summary = import_videopose3d(tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz", tmp_path / "cameras.json", out, subjects=["S9"])
    pairs = load_pairs(out)
    assert summary.n == 24 and set(pairs.subject.tolist()) == {"S9"}
    shared = [1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]  # joints COCO has directly
    np.testing.assert_allclose(
        project_points(pairs.joints_3d.astype(np.float64), pairs.K.astype(np.float64))[:, shared], pairs.joints_2d[:, shared], atol=1e-2
    )


def test_import_errors_name_the_problem(tmp_path, rng):
    _write_dataset(tmp_path, rng)
    d3, d2, cams = tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz", tmp_path / "cameras.json"
    with pytest.raises(ValueError, match="subject 'S5' is not in both"):
        import_videopose3d(d3, d2, cams, tmp_path / "x.npz", subjects=["S5"])
    one = json.loads(cams.read_text())
    del one["subjects"]["S9"]
    (tmp_path / "one.json").write_text(json.dumps(one))
    with pytest.raises(ValueError, match="no cameras for subject 'S9'"):
        import_videopose3d(d3, d2, tmp_path / "one.json", tmp_path / "x.npz")
    one["subjects"]["S9"] = one["subjects"]["S1"][:1]
    (tmp_path / "short.json").write_text(json.dumps(one))
    with pytest.raises(ValueError, match="2 camera views but .* lists 1 cameras"):
        import_videopose3d(d3, d2, tmp_path / "short.json", tmp_path / "x.npz")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "posebridge-cameras", "subjects": {"S1": [{"K": [[1, 0]]}]}}))
    with pytest.raises(ValueError, match="bad.json: invalid camera file"):
        import_videopose3d(d3, d2, tmp_path / "bad.json", tmp_path / "x.npz")
    np.savez(tmp_path / "wrong.npz", positions_2d=np.zeros(3))
    with pytest.raises(ValueError, match="wrong.npz: key 'positions_2d' must be a pickled dict"):
        import_videopose3d(d3, tmp_path / "wrong.npz", cams, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()  # nothing half-written
