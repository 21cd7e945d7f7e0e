"""Detector-like 2D noise: each error term at its configured size and rate, exact where it must be."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from generator.prior import sample_prior_poses
from generator.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS
from train.detector_noise import (
    BIAS_JOINTS,
    GROSS_JOINTS,
    SWAP_LIMBS,
    TORSO_FLOOR,
    DetectorNoiseConfig,
    detector_noise,
    torso_size,
)

OFF = DetectorNoiseConfig(sigma=0, growth=0, swap_probability=0, displace_probability=0, missing_probability=0, definition_bias=0)
N = 20_000


def _only(**kw: float) -> DetectorNoiseConfig:
    return OFF.model_copy(update=kw)


@pytest.fixture(scope="module")
def poses() -> np.ndarray:
    """N image poses in pixels: 250 prior poses seen from the side (x, -z), a quarter scale, at (500, 600), tiled."""
    world = sample_prior_poses(np.random.default_rng(0), 250).astype(np.float64)
    img = np.stack([world[..., 0], -world[..., 2]], axis=-1) * 0.25 + np.array([500.0, 600.0])
    return np.tile(img, (N // 250, 1, 1))


def _binomial_ok(count: int, n: int, p: float) -> bool:
    return abs(count / n - p) < 5 * np.sqrt(p * (1 - p) / n)


def test_strength_zero_and_all_off_return_the_input_exactly(poses):
    x = poses[:500].copy()
    loud = DetectorNoiseConfig(swap_probability=0.5, displace_probability=0.3, missing_probability=0.3, definition_bias=0.3)
    for cfg, strength in ((loud, 0.0), (loud, np.zeros(len(x))), (OFF, 1.0)):
        out = detector_noise(x, np.random.default_rng(3), cfg, strength)
        assert out.dtype == np.float64 and out is not x
        assert out.tobytes() == x.tobytes()
    # float32 input: the values come back as float64, unchanged
    out = detector_noise(x.astype(np.float32), np.random.default_rng(3), loud, 0.0)
    assert np.array_equal(out, x.astype(np.float32).astype(np.float64))
    # the input is never modified
    before = x.copy()
    noisy = detector_noise(x, np.random.default_rng(3), loud)
    assert np.array_equal(x, before) and not np.array_equal(noisy, x)


def test_deterministic_per_seed(poses):
    x, cfg = poses[:500], DetectorNoiseConfig(swap_probability=0.2, displace_probability=0.2, missing_probability=0.2)
    a = detector_noise(x, np.random.default_rng(7), cfg)
    b = detector_noise(x, np.random.default_rng(7), cfg)
    c = detector_noise(x, np.random.default_rng(8), cfg)
    assert a.tobytes() == b.tobytes()
    assert not np.allclose(a, c)


def test_switching_a_term_off_leaves_the_other_draws_unchanged(poses):
    x = poses[:500]
    gauss = detector_noise(x, np.random.default_rng(5), _only(sigma=0.03, growth=0.5))
    both = detector_noise(x, np.random.default_rng(5), _only(sigma=0.03, growth=0.5, definition_bias=0.2))
    others = [j for j in range(NUM_JOINTS) if j not in BIAS_JOINTS]
    assert np.array_equal(gauss[:, others], both[:, others])
    assert not np.allclose(gauss[:, list(BIAS_JOINTS)], both[:, list(BIAS_JOINTS)])


def test_scale_and_translation_equivariance(poses):
    x = poses[:2000]
    cfg = DetectorNoiseConfig(swap_probability=0.3, displace_probability=0.2, missing_probability=0.2, definition_bias=0.2)
    strength = np.random.default_rng(1).uniform(0, 1, len(x))
    ref = detector_noise(x, np.random.default_rng(11), cfg, strength)
    for s, t in ((1e-3, np.array([-0.4, 0.2])), (7.5, np.array([1234.0, -55.0]))):
        out = detector_noise(s * x + t, np.random.default_rng(11), cfg, strength)
        np.testing.assert_allclose(out, s * ref + t, rtol=0, atol=1e-9 * s * np.abs(ref).max() + 1e-12 * np.abs(t).max())


def test_gaussian_std_per_joint_follows_the_hop_table(poses):
    x = np.repeat(poses[:1], N, axis=0)  # one fixed pose
    cfg = _only(sigma=0.03, growth=0.5)
    out = detector_noise(x, np.random.default_rng(2), cfg)
    rel = (out - x) / torso_size(x)[:, None, None]
    measured = rel.reshape(N, NUM_JOINTS * 2).std(axis=0).reshape(NUM_JOINTS, 2).mean(axis=1)
    hops = {"Hip": 0, "RHip": 0, "LHip": 0, "Spine": 0, "Thorax": 0, "LShoulder": 0, "RShoulder": 0}
    hops |= {"RKnee": 1, "LKnee": 1, "LElbow": 1, "RElbow": 1, "Neck/Nose": 1}
    hops |= {"RFoot": 2, "LFoot": 2, "LWrist": 2, "RWrist": 2, "Head": 2}
    expected = np.array([0.03 * (1 + 0.5 * hops[name]) for name in JOINT_INDEX])
    np.testing.assert_allclose(measured, expected, rtol=0.03)
    assert np.allclose(rel.mean(axis=0), 0, atol=0.003)
    for far, near in (("LWrist", "LHip"), ("RFoot", "RHip"), ("Head", "Hip")):
        assert measured[JOINT_INDEX[far]] > 1.8 * measured[JOINT_INDEX[near]]
    # per-sample strength scales the std; strength 0 rows are untouched
    strength = np.where(np.arange(N) % 2 == 0, 0.0, 0.5)
    half = detector_noise(x, np.random.default_rng(2), cfg, strength)
    assert np.array_equal(half[::2], x[::2])
    rel_half = (half[1::2] - x[1::2]) / torso_size(x[1::2])[:, None, None]
    np.testing.assert_allclose(rel_half.std(axis=0).mean(axis=1), 0.5 * expected, rtol=0.05)


def test_swaps_exchange_whole_limbs_at_the_configured_rate(poses):
    p = 0.1
    out = detector_noise(poses, np.random.default_rng(4), _only(swap_probability=p))
    moved = np.zeros(NUM_JOINTS, bool)
    swaps = []
    for left, right in SWAP_LIMBS:
        lr, rl = list(left + right), list(right + left)
        swapped = np.all(out[:, lr] == poses[:, rl], axis=(1, 2))
        kept = np.all(out[:, lr] == poses[:, lr], axis=(1, 2))
        assert np.all(swapped ^ kept)  # every sample: the limb exactly swapped or exactly kept
        assert _binomial_ok(int(swapped.sum()), N, p)
        moved[lr] = True
        swaps.append(swapped)
    assert np.array_equal(out[:, ~moved], poses[:, ~moved])
    # arm and leg are drawn independently: both swapped about p^2 of the time
    assert _binomial_ok(int((swaps[0] & swaps[1]).sum()), N, p * p)


def test_missing_joints_sit_on_their_parent(poses):
    p = 0.1
    out = detector_noise(poses, np.random.default_rng(6), _only(missing_probability=p))
    changed = np.zeros(NUM_JOINTS, bool)
    for j in GROSS_JOINTS:
        on_parent = np.all(out[:, j] == out[:, PARENTS[j]], axis=-1)
        kept = np.all(out[:, j] == poses[:, j], axis=-1)
        assert np.all(on_parent | kept)
        assert _binomial_ok(int(on_parent.sum()), N, p)
        changed[j] = True
    assert np.array_equal(out[:, ~changed], poses[:, ~changed])
    # with every other term on, a missed joint is still exactly on its parent's reported position
    full = detector_noise(poses, np.random.default_rng(6), DetectorNoiseConfig(missing_probability=p))
    for j in GROSS_JOINTS:
        on_parent = np.all(full[:, j] == full[:, PARENTS[j]], axis=-1)
        assert _binomial_ok(int(on_parent.sum()), N, p)


def test_displaced_joints_move_by_a_gross_offset(poses):
    p = 0.1
    out = detector_noise(poses, np.random.default_rng(9), _only(displace_probability=p))
    others = [j for j in range(NUM_JOINTS) if j not in GROSS_JOINTS]
    assert np.array_equal(out[:, others], poses[:, others])
    offset = out[:, list(GROSS_JOINTS)] - poses[:, list(GROSS_JOINTS)]
    dist = np.linalg.norm(offset, axis=-1) / torso_size(poses)[:, None]
    hit = dist > 0
    assert _binomial_ok(int(hit.sum()), hit.size, p)
    assert dist[hit].min() >= 0.3 - 1e-9 and dist[hit].max() <= 1.0 + 1e-9
    assert dist[hit].min() < 0.32 and dist[hit].max() > 0.98  # the whole range is used
    unit = offset[hit] / np.linalg.norm(offset[hit], axis=-1, keepdims=True)
    assert np.linalg.norm(unit.mean(axis=0)) < 0.05  # directions spread all round
    # a joint is missed or displaced, never both, so the two rates add up: at 0.5 + 0.5 every
    # joint is hit, half of them missed (on the parent) and half displaced (off it)
    both = detector_noise(poses, np.random.default_rng(9), _only(displace_probability=0.5, missing_probability=0.5))
    g = list(GROSS_JOINTS)
    assert not np.any(np.all(both[:, g] == poses[:, g], axis=-1))
    on_parent = np.all(both[:, g] == both[:, PARENTS[g]], axis=-1)
    assert _binomial_ok(int(on_parent.sum()), on_parent.size, 0.5)


def test_definition_bias_moves_only_the_midline_along_the_torso_axis(poses):
    b = 0.1
    out = detector_noise(poses, np.random.default_rng(10), _only(definition_bias=b))
    bias = list(BIAS_JOINTS)
    assert sorted(bias) == sorted(JOINT_INDEX[n] for n in ("Hip", "Thorax", "Neck/Nose", "Head"))
    others = [j for j in range(NUM_JOINTS) if j not in bias]
    assert np.array_equal(out[:, others], poses[:, others])
    torso = torso_size(poses)[:, None]
    up = poses[:, JOINT_INDEX["Thorax"]] - poses[:, JOINT_INDEX["Hip"]]
    up /= np.linalg.norm(up, axis=-1, keepdims=True)
    delta = out[:, bias] - poses[:, bias]
    along = np.einsum("njc,nc->nj", delta, up) / torso
    across = (delta[..., 0] * up[:, None, 1] - delta[..., 1] * up[:, None, 0]) / torso
    assert np.abs(across).max() < 1e-9
    assert np.abs(along).max() <= b + 1e-9 and np.abs(along).max() > 0.99 * b
    np.testing.assert_allclose(along.std(axis=0), b / np.sqrt(3), rtol=0.03)  # U(-b, b) each
    assert abs(np.corrcoef(along[:, 0], along[:, 1])[0, 1]) < 0.05  # independent per joint


def test_torso_size_floor_for_a_collapsed_torso():
    x = np.zeros((1, NUM_JOINTS, 2))
    x[0, :, 1] = np.linspace(0.0, 100.0, NUM_JOINTS)  # a vertical line
    for j in ("Hip", "Thorax", "LShoulder", "RShoulder"):
        x[0, JOINT_INDEX[j]] = (0.0, 80.0)  # pelvis on thorax, no shoulder span
    x[0, JOINT_INDEX["Head"], 1], x[0, JOINT_INDEX["RFoot"], 1] = -30.0, 130.0  # extent 160
    assert torso_size(x)[0] == pytest.approx(TORSO_FLOOR * 160.0)
    out = detector_noise(x, np.random.default_rng(0), DetectorNoiseConfig(definition_bias=0.5))
    assert np.all(np.isfinite(out)) and not np.array_equal(out, x)
    # the bias falls back to image up (-y) where pelvis and thorax coincide
    biased = detector_noise(x, np.random.default_rng(0), _only(definition_bias=0.5))
    assert np.all(biased[..., 0] == x[..., 0]) and not np.array_equal(biased, x)


def test_bad_input_is_a_one_line_value_error(poses):
    rng, cfg = np.random.default_rng(0), DetectorNoiseConfig()
    for shape in ((17, 2), (4, 17, 3), (4, 16, 2)):
        with pytest.raises(ValueError, match=r"shape \(N, 17, 2\), got"):
            detector_noise(np.zeros(shape), rng, cfg)
    bad = poses[:4].copy()
    bad[0, 3, 1] = np.nan
    bad[2, 5, 0] = np.inf
    with pytest.raises(ValueError, match="2 non-finite values") as err:
        detector_noise(bad, rng, cfg)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"strength must be a scalar or shape \(4,\)"):
        detector_noise(poses[:4], rng, cfg, np.ones(3))
    with pytest.raises(ValueError, match="strength must be finite and >= 0"):
        detector_noise(poses[:4], rng, cfg, -0.5)
    with pytest.raises(ValidationError):
        DetectorNoiseConfig(swap_probability=1.5)
    with pytest.raises(ValidationError):
        DetectorNoiseConfig(sigma=-0.1)
    with pytest.raises(ValidationError):
        DetectorNoiseConfig(jitter=0.1)
    assert detector_noise(np.zeros((0, NUM_JOINTS, 2)), rng, cfg).shape == (0, NUM_JOINTS, 2)
