"""The field's 3D pose metrics, as per-joint error arrays (N, 17) that callers average any way.

- MPJPE, Protocol #1: mean per-joint position error after aligning the roots (mm).
- P-MPJPE, Protocol #2: after a similarity (Procrustes) alignment: rotation, scale, translation.
- N-MPJPE: after root alignment and the optimal scale only (Rhodin et al. 2018).
- Absolute MPJPE: no alignment at all (camera-frame positions).
- PCK3D@150 mm: the fraction of joints within 150 mm after root alignment; AUC: PCK averaged over
  thresholds 0, 5, ..., 150 mm (Mehta et al. 2017).
- Reprojection error: pixel distance between the projected 3D joints and the input 2D.
"""

from __future__ import annotations

import numpy as np

from generator.camera import project_points
from generator.skeleton import ROOT

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.arange(0.0, 151.0, 5.0)


def root_align(joints: np.ndarray) -> np.ndarray:
    return joints - joints[..., ROOT : ROOT + 1, :]


def joint_distances(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean distance per joint (N, 17), no alignment."""
    return np.linalg.norm(np.asarray(pred, dtype=np.float64) - np.asarray(gt, dtype=np.float64), axis=-1)


def errors_absolute(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return joint_distances(pred, gt)


def errors_root_aligned(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Protocol #1 per-joint errors."""
    return joint_distances(root_align(np.asarray(pred, np.float64)), root_align(np.asarray(gt, np.float64)))


def procrustes_align(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = False) -> np.ndarray:
    """pred (N, J, 3) moved by the similarity transform s·R·p + t that best fits gt (least squares).

    R is a proper rotation unless `allow_reflection`: the SVD's optimal orthogonal matrix can be a
    reflection (det -1) for a mirrored prediction, which Protocol #2 must not reward, so the last
    singular direction is flipped (Umeyama 1991).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mu_p = pred.mean(axis=1, keepdims=True)
    mu_g = gt.mean(axis=1, keepdims=True)
    p = pred - mu_p
    g = gt - mu_g
    cross = np.einsum("nji,njk->nik", g, p)  # sum_j g_j p_j^T
    u, s, vt = np.linalg.svd(cross)
    sign = np.ones_like(s)
    if not allow_reflection:
        sign[:, -1] = np.sign(np.linalg.det(u @ vt))
        sign[sign == 0] = 1.0
    rotation = u @ (sign[..., None] * vt)
    scale = (s * sign).sum(axis=1) / np.maximum(np.einsum("nji,nji->n", p, p), 1e-300)
    return scale[:, None, None] * np.einsum("nik,njk->nji", rotation, p) + mu_g


def errors_procrustes(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = False) -> np.ndarray:
    """Protocol #2 (P-MPJPE) per-joint errors."""
    return joint_distances(procrustes_align(pred, gt, allow_reflection), gt)


def errors_scale_aligned(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """N-MPJPE per-joint errors: root-aligned, then pred scaled by the least-squares factor."""
    p = root_align(np.asarray(pred, dtype=np.float64))
    g = root_align(np.asarray(gt, dtype=np.float64))
    scale = np.einsum("nji,nji->n", p, g) / np.maximum(np.einsum("nji,nji->n", p, p), 1e-300)
    return joint_distances(scale[:, None, None] * p, g)


def pck(errors: np.ndarray, threshold_mm: float = PCK_THRESHOLD_MM) -> float:
    """Fraction of joint errors strictly below the threshold."""
    return float(np.mean(np.asarray(errors) < threshold_mm))


def auc(errors: np.ndarray, thresholds_mm: np.ndarray = AUC_THRESHOLDS_MM) -> float:
    """PCK averaged over the thresholds (0-150 mm in 5 mm steps by default)."""
    e = np.asarray(errors).reshape(-1)
    return float(np.mean(e[None, :] < np.asarray(thresholds_mm)[:, None]))


def reprojection_errors(joints_cam: np.ndarray, pixels: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel distance (N, 17) between camera-frame joints projected with K and the given 2D."""
    uv = project_points(np.asarray(joints_cam, dtype=np.float64), np.asarray(K, dtype=np.float64))
    return np.linalg.norm(uv - np.asarray(pixels, dtype=np.float64), axis=-1)
