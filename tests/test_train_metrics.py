"""Metrics on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from train import metrics as M

ROOT_AND_X = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])  # two joints: the root and one 1 mm along x
TETRA = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def test_mpjpe_is_root_aligned_and_absolute_is_not():
    gt = np.zeros((1, 17, 3))
    pred = gt + np.array([100.0, 0.0, 0.0])
    assert M.errors_root_aligned(pred, gt).mean() == 0.0
    assert M.errors_absolute(pred, gt).mean() == 100.0
    pred[0, 5] += [3.0, 4.0, 0.0]  # one joint 5 mm off
    assert M.errors_root_aligned(pred, gt).mean() == pytest.approx(5.0 / 17)


def test_scale_and_rotation_alignment_by_hand():
    doubled = 2.0 * ROOT_AND_X
    assert M.errors_root_aligned(doubled, ROOT_AND_X).mean() == pytest.approx(0.5)  # (0 + 1) / 2
    assert M.errors_scale_aligned(doubled, ROOT_AND_X).mean() == pytest.approx(0.0)  # scale 1/2 fixes it
    assert M.errors_procrustes(doubled, ROOT_AND_X).mean() == pytest.approx(0.0)

    turned = np.array([[[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # the same bone turned 90 degrees
    assert M.errors_root_aligned(turned, ROOT_AND_X).mean() == pytest.approx(np.sqrt(2) / 2)
    assert M.errors_scale_aligned(turned, ROOT_AND_X).mean() == pytest.approx(0.5)  # best scale is 0: errors (0, 1)
    assert M.errors_procrustes(turned, ROOT_AND_X).mean() == pytest.approx(0.0, abs=1e-12)


def test_procrustes_undoes_any_similarity_transform(rng):
    gt = rng.normal(0, 300, (5, 17, 3))
    q, _ = np.linalg.qr(rng.normal(size=(5, 3, 3)))
    q *= np.sign(np.linalg.det(q))[:, None, None]  # proper rotations
    pred = 1.7 * np.einsum("nij,nkj->nki", q, gt) + rng.normal(0, 1000, (5, 1, 3))
    assert M.errors_procrustes(pred, gt).max() < 1e-8
    assert M.errors_root_aligned(pred, gt).mean() > 100


def test_procrustes_does_not_reward_a_mirror_image():
    mirrored = TETRA * np.array([-1.0, 1.0, 1.0])
    # A non-planar mirror image is no rotation of the original: protocol 2 keeps an error ...
    assert M.errors_procrustes(mirrored, TETRA).mean() > 0.1
    # ... which a reflecting alignment would hide.
    assert M.errors_procrustes(mirrored, TETRA, allow_reflection=True).mean() == pytest.approx(0.0, abs=1e-12)
    # A planar shape's mirror image *is* a rotation (180 degrees about the mirror axis): error 0.
    planar = TETRA[:, :3]
    assert M.errors_procrustes(planar * np.array([-1.0, 1.0, 1.0]), planar).mean() == pytest.approx(0.0, abs=1e-12)


def test_pck_and_auc_by_hand():
    assert M.pck(np.array([10.0, 149.9, 150.0, 200.0])) == 0.5  # strictly below 150 mm
    assert M.auc(np.zeros(10)) == pytest.approx(30 / 31)  # every threshold but 0
    assert M.auc(np.full(10, 72.5)) == pytest.approx(16 / 31)  # thresholds 75 ... 150
    assert M.auc(np.full(10, 1000.0)) == 0.0


def test_reprojection_error_by_hand():
    K = np.array([[1000.0, 0.0, 500.0], [0.0, 1000.0, 400.0], [0.0, 0.0, 1.0]])
    joints = np.array([[[0.0, 0.0, 2000.0], [200.0, -100.0, 2000.0]]])  # -> (500, 400), (600, 350)
    pixels = np.array([[[503.0, 404.0], [600.0, 350.0]]])
    np.testing.assert_allclose(M.reprojection_errors(joints, pixels, K), [[5.0, 0.0]])
