"""Image-network sources: the COCO, MPII and LSP/LSPET importers on vendored photos, the joint maps,
LSP's hold-out split, the MAT-file reader, and errors that name the file, key or index."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from generator.skeleton import COCO_TO_H36M, JOINT_INDEX, NUM_JOINTS
from train.image.joints import COCO_IMAGE_TO_H36M, LSP_TO_H36M, MPII_TO_H36M, lacking, map_to_h36m
from train.image.lsp import HOLDOUT_MAX, LspSource, holdout_count, read_lsp_labels, split_indices
from train.image.matfile import MatFileError, mat_bytes, parse_mat
from train.image.mpii import MpiiSource
from train.image.records import keypoint_boxes, mask_box
from train.image.sources import open_image_source
from train.image.coco import CocoSource

from image_support import COCO_FIXTURE, MPII_FIXTURE, lsp_folder

LIMBS = [JOINT_INDEX[n] for n in ("RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist")]


def test_joint_maps_are_linear_and_lack_what_the_datasets_lack():
    for m in (LSP_TO_H36M, MPII_TO_H36M, COCO_IMAGE_TO_H36M):
        rows = m.sum(axis=1)
        assert np.allclose(rows[rows > 0], 1.0)  # each mapped joint is an average: commutes with shifts and scales
    assert lacking(LSP_TO_H36M) == [] and lacking(MPII_TO_H36M) == []
    assert lacking(COCO_IMAGE_TO_H36M) == [JOINT_INDEX["Neck/Nose"], JOINT_INDEX["Head"]]
    # Everything else follows the documented COCO map.
    keep = [j for j in range(NUM_JOINTS) if j not in lacking(COCO_IMAGE_TO_H36M)]
    assert np.array_equal(COCO_IMAGE_TO_H36M[keep], COCO_TO_H36M[keep])
    # A derived joint is valid only when all of its sources are.
    pts = np.arange(28, dtype=float).reshape(1, 14, 2)
    valid = np.ones((1, 14), bool)
    valid[0, 2] = False  # LSP right_hip
    joints, ok = map_to_h36m(pts, valid, LSP_TO_H36M)
    assert not ok[0, JOINT_INDEX["Hip"]] and not ok[0, JOINT_INDEX["Spine"]] and not ok[0, JOINT_INDEX["RHip"]]
    assert ok[0, JOINT_INDEX["Thorax"]] and np.allclose(joints[0, JOINT_INDEX["Thorax"]], (pts[0, 8] + pts[0, 9]) / 2)
    assert np.all(joints[0, ~ok[0]] == 0)


def test_mpii_importer_reads_the_vendored_fixture():
    src = MpiiSource(MPII_FIXTURE)
    entries = json.loads(MPII_FIXTURE.read_text())
    assert len(src) == len(entries) == 5 and src.kind == "mpii" and src.lacks == []
    e = entries[0]
    joints = np.asarray(e["joints"]) - 0.5  # MATLAB 1-based pixel centres -> our corner convention
    r = src.records
    assert np.allclose(r.joints_2d[0, JOINT_INDEX["RFoot"]], joints[0]) and np.allclose(r.joints_2d[0, JOINT_INDEX["Head"]], joints[9])
    assert np.allclose(r.joints_2d[0, JOINT_INDEX["Hip"]], joints[6]) and np.allclose(r.joints_2d[0, JOINT_INDEX["Spine"]], (joints[6] + joints[7]) / 2)
    vis = np.array([x["joints_vis"] for x in entries])
    assert (vis == 0).any()  # the fixture has unlabelled joints, which must be masked
    i, k = np.argwhere(vis == 0)[0]
    h36m = int(np.flatnonzero(MPII_TO_H36M[:, k])[0])
    assert not r.valid_2d[i, h36m]
    assert r.valid_3d.sum() == 0 and not r.has_3d.any()
    image, scale = src.read_image(0)
    assert image.size == (1280, 720) and scale == 1.0


def test_coco_importer_masks_what_coco_lacks_and_reads_pseudo_3d(tmp_path):
    src = CocoSource(COCO_FIXTURE)
    coco = json.loads(COCO_FIXTURE.read_text())
    people = [a for a in coco["annotations"] if not a.get("iscrowd")]
    assert 0 < len(src) <= len(people)
    assert not src.records.valid_2d[:, [JOINT_INDEX["Neck/Nose"], JOINT_INDEX["Head"]]].any()
    assert src.records.valid_2d[:, LIMBS].mean() > 0.7
    # pseudo-3D: keypoints_3d counts where keypoints_3d_valid is 1, never for an imputed joint
    labelled = json.loads(COCO_FIXTURE.read_text())
    for a in labelled["annotations"]:
        a["keypoints_3d"] = (np.arange(51).reshape(17, 3) * 10.0 + [0, 0, 3000]).tolist()
        a["keypoints_3d_valid"] = [1] * 16 + [0]
    for img in labelled["images"]:
        img["camera_K"] = [[500, 0, 320], [0, 500, 240], [0, 0, 1]]
    (tmp_path / "labelled.json").write_text(json.dumps(labelled))
    for name in {img["file_name"] for img in labelled["images"]}:
        shutil.copyfile(COCO_FIXTURE.parent / name, tmp_path / name)
    s = open_image_source(tmp_path / "labelled.json")
    assert s.kind == "coco" and s.has_pseudo_3d and s.records.K is not None
    v3 = s.records.valid_3d
    assert not v3[:, JOINT_INDEX["RWrist"]].any()  # flagged 0 (imputed)
    assert not v3[:, JOINT_INDEX["Head"]].any()  # COCO lacks it
    assert np.all(v3 <= s.records.valid_2d) and s.records.has_3d.any()
    rel = s.records.root_relative_3d()
    assert np.allclose(rel[0, JOINT_INDEX["RHip"]], [30, 30, 30])


def test_lsp_and_lspet_layouts_are_detected_from_the_content(tmp_path):
    mpii = MpiiSource(MPII_FIXTURE).records
    for layout in ("lsp", "lspet"):
        folder, xy, flag = lsp_folder(tmp_path / layout, layout)
        src = open_image_source(folder, split="all")
        assert src.kind == layout and len(src) == 5 and src.n_images == 5
        r = src.records
        if layout == "lsp":  # the flag means occluded: every joint is labelled
            assert r.valid_2d.all() and flag.any()
        else:  # the flag means visible: the others (scrambled, negative) are masked
            lsp_valid = map_to_h36m(np.zeros((5, 14, 2)), flag == 1, LSP_TO_H36M)[1]
            assert np.array_equal(r.valid_2d, lsp_valid) and not r.valid_2d.all()
            assert (r.joints_2d[r.valid_2d] >= 0).all()
        # the same photos through the MPII importer give the same limbs, head and neck
        both = r.valid_2d & mpii.valid_2d
        for j in LIMBS + [JOINT_INDEX["Head"], JOINT_INDEX["Neck/Nose"]]:
            assert np.allclose(r.joints_2d[both[:, j], j], mpii.joints_2d[both[:, j], j], atol=1e-4)
        image, _ = src.read_image(2)
        assert image.size == MpiiSource(MPII_FIXTURE).read_image(2)[0].size


def test_lsp_holdout_is_never_in_the_train_split(tmp_path):
    assert holdout_count(10_000) == HOLDOUT_MAX == 1000 and holdout_count(2000) == 200 and holdout_count(5) == 1
    train, hold = split_indices(10_000, "train"), split_indices(10_000, "holdout")
    assert train.max() == 8999 and hold.min() == 9000 and len(hold) == 1000 and np.intersect1d(train, hold).size == 0
    folder, _, _ = lsp_folder(tmp_path / "f", "lsp")
    tr, ho = LspSource(folder, "train"), LspSource(folder, "holdout")
    assert list(tr.indices) == [0, 1, 2, 3] and list(ho.indices) == [4]
    assert all("im0005" not in f for f in tr.files)
    with pytest.raises(ValueError, match="unknown LSP split"):
        LspSource(folder, "test")


def test_lsp_labels_file_attaches_pseudo_3d_to_the_train_split(tmp_path):
    folder, _, _ = lsp_folder(tmp_path / "f", "lspet", visible_fraction=1.0)
    K = [[400.0, 0, 200], [0, 400, 150], [0, 0, 1]]
    labels = [{"index": i, "file": f"im{i + 1:04d}.jpg", "camera_K": K, "keypoints_3d": (np.ones((17, 3)) * [i, 0, 4000] + np.arange(17)[:, None]).tolist(),
               "keypoints_3d_valid": [1] * 17, "keypoints_3d_status": "lifted"} for i in range(5)]  # fmt: skip
    labels[1]["keypoints_3d"] = None
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"format": "posebridge-lsp-labels", "version": 1, "folder": str(folder), "split": "all", "labels": labels}))
    src = open_image_source(path, split="train")
    assert src.kind == "lspet" and src.has_pseudo_3d and list(src.indices) == [0, 1, 2, 3]
    assert src.records.has_3d.tolist() == [True, False, True, True]
    assert np.allclose(src.records.root_relative_3d()[2, 5], [5, 5, 5])
    bad = json.loads(path.read_text())
    bad["labels"][3]["keypoints_3d_valid"] = [2] * 17
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"labels\[3\]"):
        read_lsp_labels(path)


def test_bad_files_name_the_file_key_or_index(tmp_path):
    folder, _, _ = lsp_folder(tmp_path / "lsp", "lspet")
    mat = folder / "joints.mat"
    good = parse_mat(mat.read_bytes())["joints"]
    cases = {
        "no variable 'joints'": mat_bytes({"points": good}),
        "has shape (14, 2, 5)": mat_bytes({"joints": good[:, :2]}),
        "image index 3 (im00004), joint 6, holds NaN": mat_bytes({"joints": np.where(np.arange(5) == 3, np.where(np.arange(14)[:, None, None] == 6, np.nan, good), good)}),
        "flag of image index 0, joint 0 is 2.0": mat_bytes({"joints": np.concatenate([good[:, :2], np.where(np.arange(5) == 0, 2.0, good[:, 2:])], axis=1)}),
        "shorter than a MAT-file header": b"MATLAB 5.0",
        "compressed variable is corrupted": mat.read_bytes()[:140] + bytes([mat.read_bytes()[140] ^ 0xFF]) + mat.read_bytes()[141:],
    }
    for needle, data in cases.items():
        mat.write_bytes(data)
        with pytest.raises(MatFileError) as e:
            LspSource(folder, "all")
        assert str(mat) in str(e.value) and needle in str(e.value), (needle, str(e.value))
    mat.write_bytes(mat_bytes({"joints": good}))
    (folder / "images" / "im0003.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="im0003"):
        LspSource(folder, "all")

    entries = json.loads(MPII_FIXTURE.read_text())
    for edit, needle in [(lambda e: e[2].pop("joints_vis"), "entry 2: missing key 'joints_vis'"),
                         (lambda e: e[1].__setitem__("joints", e[1]["joints"][:15]), "entry 1: 'joints' has shape (15, 2)"),
                         (lambda e: e[4]["joints_vis"].__setitem__(3, 2), "entry 4: 'joints_vis' must hold 0 or 1"),
                         (lambda e: e[0].__setitem__("scale", -1), "entry 0: 'scale' must be a positive number"),
                         (lambda e: e[0].__setitem__("image", "../x.jpg"), "entry 0: 'image' must be a relative file name")]:  # fmt: skip
        data = json.loads(MPII_FIXTURE.read_text())
        edit(data)
        path = tmp_path / "mpii.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ValueError) as e:
            MpiiSource(path, images=MPII_FIXTURE.parent)
        assert str(path) in str(e.value) and needle in str(e.value), (needle, str(e.value))
    path.write_text(MPII_FIXTURE.read_text().replace("804.0", "NaN", 1))
    with pytest.raises(ValueError, match="NaN is not a number"):
        MpiiSource(path, images=MPII_FIXTURE.parent)
    path.write_text(json.dumps(entries))
    with pytest.raises(FileNotFoundError, match="005808361.jpg"):
        MpiiSource(path)  # the photos are not beside this copy
    with pytest.raises(ValueError, match="neither a rendered dataset"):
        open_image_source(tmp_path)
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="x.json: JSON that is neither COCO"):
        open_image_source(tmp_path / "x.json")


def test_mat_reader_round_trips_and_reads_both_byte_orders():
    rng = np.random.default_rng(3)
    for shape in [(3, 14, 7), (14, 3, 1), (2, 2)]:
        a = rng.normal(size=shape)
        for compress in (True, False):
            assert np.array_equal(parse_mat(mat_bytes({"joints": a, "b": a.astype(np.int16)}, compress))["joints"], a)
    # big-endian: MATLAB on a big-endian machine writes 'MI' and big-endian words
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    le = mat_bytes({"x": a}, compress=False)
    import struct

    body = bytearray(le[128:])
    words = [(0, "I"), (4, "I"), (8, "I"), (12, "I"), (16, "I"), (20, "I"), (24, "I"), (28, "I"), (32, "i"), (36, "i"), (40, "I"), (44, "I")]
    for off, code in words:
        body[off : off + 4] = struct.pack(">" + code, struct.unpack_from("<" + code, body, off)[0])
    # the name 'x' (8 bytes padded), then the real part's tag and 6 doubles
    off = 48 + 8
    body[off : off + 8] = struct.pack(">II", *struct.unpack_from("<II", body, off))
    body[off + 8 :] = a.ravel(order="F").astype(">f8").tobytes()
    be = le[:124] + struct.pack(">H", 0x0100) + b"MI" + bytes(body)
    assert np.array_equal(parse_mat(be)["x"], a)


def test_boxes_from_keypoints_and_masks():
    pts = np.array([[[10.0, 20.0], [30.0, 60.0], [500.0, 500.0]]])
    box = keypoint_boxes(pts, np.array([[True, True, False]]))
    assert np.allclose(box, [[10, 20, 30, 60]])
    tiny = keypoint_boxes(np.array([[[5.0, 5.0]]]), np.array([[True]]))
    assert np.allclose(tiny, [[1, 1, 9, 9]])  # widened to MIN_BOX_PX
    mask = np.zeros((40, 50), bool)
    mask[12:20, 7:31] = True
    assert np.allclose(mask_box(mask), [7, 12, 31, 20]) and mask_box(np.zeros((4, 4))) is None
    assert not math.isnan(float(box.sum()))
