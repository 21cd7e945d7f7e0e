"""How each image dataset's joints map to h36m17 (docs/conventions.md, "Image-network sources").

Each map is a (17, K) matrix of weights, one row per h36m17 joint: a row with one 1 copies a
dataset joint, a row of several weights derives a joint (the pelvis as the mid-hip, ...), and a
row of zeros means the dataset lacks that joint, which is then masked in every loss and metric,
never invented. A mapped joint is valid only when every dataset joint it uses is.
"""

from __future__ import annotations

import numpy as np

from generator.skeleton import COCO_TO_H36M, JOINT_INDEX, NUM_JOINTS

LSP_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "right_wrist",
    "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist", "neck", "head_top",
)  # fmt: skip
MPII_JOINT_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip

_LIMBS = {
    "RHip": "right_hip", "RKnee": "right_knee", "RFoot": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LFoot": "left_ankle", "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist",
    "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
}  # fmt: skip


def _matrix(names: tuple[str, ...], rows: dict[str, dict[str, float]]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    m = np.zeros((NUM_JOINTS, len(names)))
    for joint, weights in rows.items():
        for name, w in weights.items():
            m[JOINT_INDEX[joint], index[name]] = w
    m.setflags(write=False)
    return m


# LSP / LSPET (14 joints). The pelvis, spine and thorax are derived as for COCO (mid-hip, the mean
# of hips and shoulders, mid-shoulder); LSP's neck is the upper neck, h36m17's Neck/Nose; its
# head top is h36m17's Head.
LSP_TO_H36M = _matrix(
    LSP_JOINT_NAMES,
    {
        **{j: {n: 1.0} for j, n in _LIMBS.items()},
        "Hip": {"left_hip": 0.5, "right_hip": 0.5},
        "Spine": {"left_hip": 0.25, "right_hip": 0.25, "left_shoulder": 0.25, "right_shoulder": 0.25},
        "Thorax": {"left_shoulder": 0.5, "right_shoulder": 0.5},
        "Neck/Nose": {"neck": 1.0},
        "Head": {"head_top": 1.0},
    },
)

# MPII (16 joints): pelvis, thorax, upper neck and head top are labelled; the spine is halfway
# from the pelvis to the thorax (the same definition as COCO's).
MPII_TO_H36M = _matrix(
    MPII_JOINT_NAMES,
    {
        **{j: {n: 1.0} for j, n in _LIMBS.items()},
        "Hip": {"pelvis": 1.0},
        "Spine": {"pelvis": 0.5, "thorax": 0.5},
        "Thorax": {"thorax": 1.0},
        "Neck/Nose": {"upper_neck": 1.0},
        "Head": {"head_top": 1.0},
    },
)

# COCO-17 for the image network: the documented COCO map (generator.skeleton.COCO_TO_H36M) minus
# Neck/Nose (COCO's nose is a face point; every other source labels the upper neck) and Head (the
# mid-ear point sits ~10 cm below the top of the head that the other sources label). One network
# trained on both landmarks under one name would learn their average.
COCO_IMAGE_TO_H36M = np.array(COCO_TO_H36M)
COCO_IMAGE_TO_H36M[[JOINT_INDEX["Neck/Nose"], JOINT_INDEX["Head"]]] = 0.0
COCO_IMAGE_TO_H36M.setflags(write=False)


def map_to_h36m(points: np.ndarray, valid: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dataset joints (..., K, D) with validity (..., K) -> h36m17 joints (..., 17, D) and validity (..., 17).

    A joint is valid when its row of `matrix` is not empty and every dataset joint it uses is
    valid; an invalid joint's coordinates are 0 (a finite placeholder, masked downstream).
    """
    points = np.asarray(points, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    used = matrix > 0  # (17, K)
    ok = used.any(axis=1) & ~np.any(used & ~valid[..., None, :], axis=-1)
    joints = np.einsum("jk,...kd->...jd", matrix, np.where(valid[..., None], points, 0.0))
    return np.where(ok[..., None], joints, 0.0), ok


def lacking(matrix: np.ndarray) -> list[int]:
    """The h36m17 joints a dataset never has under `matrix`."""
    return [int(j) for j in np.flatnonzero(~(matrix > 0).any(axis=1))]
