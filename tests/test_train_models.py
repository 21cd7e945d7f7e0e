"""Networks' shapes, the normalization round trips, and the right-view targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.camera import project_points, right_view_points
from generator.skeleton import flip_left_right
from train.models import (
    NetConfig,
    ReconstructionNet,
    SingleViewNet,
    ViewSynthesisNet,
    build_model,
    count_parameters,
)
from train.normalization import ZScore, disparity_code, disparity_from_code, normalized_to_pixels, pixels_to_normalized, pose_code
from train.targets import training_features

from train_support import make_pairs

torch.set_num_threads(1)
SMALL = NetConfig(width=32, blocks=1, dropout=0.1)


def test_network_shapes_and_sizes():
    x = torch.randn(8, 17, 2)
    assert ViewSynthesisNet(SMALL)(x).shape == (8, 17, 2)
    assert ReconstructionNet(SMALL)(x, x - 0.01).shape == (8, 17, 3)
    assert SingleViewNet(SMALL)(x).shape == (8, 17, 3)
    # The paper's sizes: 34 -> 34, 68 -> 51, and a baseline of the same size (34 -> 51).
    full = NetConfig()
    view, recon, single = (m.net.mlp for m in (ViewSynthesisNet(full), ReconstructionNet(full), SingleViewNet(full)))
    assert (view.stem[0].in_features, view.head.out_features) == (34, 34)
    assert (recon.stem[0].in_features, recon.head.out_features) == (68, 51)
    assert (single.stem[0].in_features, single.head.out_features) == (34, 51)
    assert view.stem[0].out_features == 1024 and len(view.blocks) == 2
    assert abs(count_parameters(single) - count_parameters(view)) < 0.01 * count_parameters(single)


def test_stereo_lifter_outputs_root_relative_pose():
    model = build_model("stereo", SMALL).eval()
    right, pose = model(torch.randn(4, 17, 2))
    assert right.shape == (4, 17, 2) and pose.shape == (4, 17, 3)
    assert torch.all(pose[:, 0] == 0)
    left = torch.randn(4, 17, 2)
    assert torch.equal(model.view(left)[..., 1], left[..., 1])  # a horizontal baseline: only x moves
    with pytest.raises(ValueError, match="unknown model 'triple'"):
        build_model("triple", SMALL)


def test_max_norm_clips_every_unit():
    model = build_model("single", NetConfig(width=32, blocks=1, max_norm=0.5))
    for net in model.nets():
        net.apply_max_norm()
    norms = [m.weight.norm(dim=1).max().item() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert max(norms) <= 0.5 + 1e-6
    unclipped = build_model("single", NetConfig(width=32, blocks=1))
    before = [m.weight.clone() for m in unclipped.modules() if isinstance(m, torch.nn.Linear)]
    for net in unclipped.nets():
        net.apply_max_norm()
    assert all(torch.equal(a, m.weight) for a, m in zip(before, (m for m in unclipped.modules() if isinstance(m, torch.nn.Linear))))


def test_pixel_normalization_round_trip(rng):
    pairs = make_pairs(rng, 50)
    K = pairs.K.astype(np.float64)
    px = pairs.joints_2d.astype(np.float64)
    norm = pixels_to_normalized(px, K)
    # Normalized coordinates are the ray directions x/z, y/z of the camera-frame joints.
    cam = pairs.joints_3d.astype(np.float64)
    np.testing.assert_allclose(norm, cam[..., :2] / cam[..., 2:], atol=1e-5)
    np.testing.assert_allclose(normalized_to_pixels(norm, K), px, atol=1e-6)
    rays = torch.from_numpy(norm)
    code, size = pose_code(rays)
    np.testing.assert_array_equal(code[:, 0], norm[:, 0])  # the root keeps its direction
    offsets = norm[:, 1:] - norm[:, :1]
    np.testing.assert_allclose(size, np.sqrt((offsets**2).sum(-1).mean(-1)))
    np.testing.assert_allclose(code[:, 1:], offsets / size.numpy()[:, None, None])
    np.testing.assert_allclose((code[:, 1:] ** 2).sum(-1).mean(-1), 1.0)  # scale-free
    # The same person twice as far away has the same code but the root (and half the size).
    far, far_size = pose_code(torch.cat([rays[:, :1], rays[:, :1] + 0.5 * (rays[:, 1:] - rays[:, :1])], 1))
    np.testing.assert_allclose(far[:, 1:], code[:, 1:], atol=1e-12)
    np.testing.assert_allclose(far_size, 0.5 * size)
    disparity = torch.from_numpy(500.0 / cam[..., 2:]).expand(-1, -1, 2) * torch.tensor([1.0, 0.0])
    np.testing.assert_allclose(disparity_from_code(disparity_code(disparity, size), size), disparity, atol=1e-15)


def test_zscore_fit_inverse_and_state_dict(rng):
    x = rng.normal([1.0, -5.0, 0.0], [2.0, 0.1, 0.0], size=(1000, 3))
    z = ZScore(3).fit(x)
    assert z.std[2] == 1.0  # a constant coordinate (like a root-relative root) is not blown up
    t = torch.from_numpy(x).float()
    np.testing.assert_allclose(z(t).mean(0)[:2].numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.inverse(z(t)).numpy(), x, atol=1e-5)
    copy = ZScore(3)
    copy.load_state_dict(z.state_dict())  # the statistics travel with the model
    assert torch.equal(copy.mean, z.mean) and torch.equal(copy.std, z.std)


def test_right_view_targets_from_file_and_from_3d_agree(rng):
    pairs = make_pairs(rng, 64, right_baseline_mm=300.0)
    rows = {
        "joints_2d": pairs.joints_2d, "joints_3d": pairs.joints_3d, "K": pairs.K,
        "joints_2d_right": pairs.joints_2d_right, "baseline_mm": np.full(64, 300.0, np.float32),
    }
    from_file = training_features(rows, np.random.default_rng(0), baseline_mm=500.0, mirror=False)
    from_3d = training_features({**rows, "joints_2d_right": None, "baseline_mm": None}, np.random.default_rng(0), 500.0, mirror=False)
    # The file's 300 mm right view, rescaled to the model's 500 mm baseline, equals projecting at 500 mm.
    np.testing.assert_allclose(from_file["right_target"], from_3d["right_target"], atol=2e-5)
    expected = project_points(right_view_points(pairs.joints_3d.astype(np.float64), 500.0), pairs.K.astype(np.float64))
    np.testing.assert_allclose(normalized_to_pixels(from_3d["right_target"].astype(np.float64), pairs.K.astype(np.float64)), expected, atol=1e-2)
    np.testing.assert_allclose(from_3d["pose"], pairs.joints_3d - pairs.joints_3d[:, :1], atol=1e-3)


def test_mirrored_samples_are_consistent_scenes(rng):
    pairs = make_pairs(rng, 64)
    rows = {"joints_2d": pairs.joints_2d, "joints_3d": pairs.joints_3d, "K": pairs.K, "joints_2d_right": None, "baseline_mm": None}
    feats = training_features(rows, np.random.default_rng(1), 500.0, mirror=True)
    plain = training_features(rows, np.random.default_rng(1), 500.0, mirror=False)
    flipped = np.any(feats["pose"] != plain["pose"], axis=(1, 2))
    assert 10 < flipped.sum() < 54
    # A mirrored sample is exactly the mirror-image scene: its 3D, left and right views all mirrored.
    mirror_cam = flip_left_right(pairs.joints_3d[flipped].astype(np.float64), axis=0)
    np.testing.assert_allclose(feats["pose"][flipped], mirror_cam - mirror_cam[:, :1], atol=1e-3)
    right = right_view_points(mirror_cam, 500.0)
    np.testing.assert_allclose(feats["right_target"][flipped], right[..., :2] / right[..., 2:], atol=1e-5)
    left = mirror_cam[..., :2] / mirror_cam[..., 2:]
    np.testing.assert_allclose(feats["left"][flipped], left, atol=1e-5)


def test_noise_augmentation_has_the_requested_pixel_scale(rng):
    pairs = make_pairs(rng, 2000)
    rows = {"joints_2d": pairs.joints_2d, "joints_3d": pairs.joints_3d, "K": pairs.K, "joints_2d_right": None, "baseline_mm": None}
    noisy = training_features(rows, np.random.default_rng(2), 500.0, noise_px=6.0, mirror=False)
    clean = training_features(rows, np.random.default_rng(2), 500.0, noise_px=0.0, mirror=False)
    K = pairs.K.astype(np.float64)
    dx = (noisy["left"].astype(np.float64) - clean["left"])[..., 0] * K[:, 0, 0, None]
    # std ~ U(0, 6) per sample: the overall pixel std is sqrt(E[s^2]) = 6 / sqrt(3).
    assert dx.std() == pytest.approx(6.0 / np.sqrt(3), rel=0.05)
    np.testing.assert_array_equal(noisy["right_target"], clean["right_target"])  # targets stay clean
