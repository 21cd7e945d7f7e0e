"""Crops and augmentation: the warp follows the pixel convention, keypoints and 3D move with the
image, mirrors swap left and right, the batched colour step is the documented linear map, and the
losses mask what is missing."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from generator.skeleton import FLIP_PERMUTATION, JOINT_INDEX
from train.image.augment import (
    AugmentConfig, CropParams, LUMA, apply_affine, apply_colour, colour_params, crop_matrix, decode_reduction, invert_affine, random_crop, rotate_3d, warp,
)  # fmt: skip
from train.image.dataset import CropDataset, MixtureSampler
from train.image.losses import LossConfig, bone_ratio_loss, image_losses, masked_l1
from train.image.model import ImagePoseNet, NetConfig
from train.image.mpii import MpiiSource

from image_support import MPII_FIXTURE


def test_warp_follows_the_pixel_convention():
    img = np.zeros((60, 80, 3), np.uint8)
    img[20, 30] = 255  # pixel (30, 20): centre (30.5, 20.5)
    for p in (CropParams(np.array([30.5, 20.5]), 16.0, 0.0, False), CropParams(np.array([28.0, 22.0]), 8.0, 0.7, True)):
        m = crop_matrix(p, 32)
        crop = warp(Image.fromarray(img), invert_affine(m), 32).astype(float)[..., 0]
        ys, xs = np.mgrid[:32, :32] + 0.5
        centroid = np.array([(crop * xs).sum(), (crop * ys).sum()]) / crop.sum()
        assert np.allclose(centroid, apply_affine(m, np.array([[30.5, 20.5]]))[0], atol=0.05)


def test_crops_move_keypoints_and_3d_together():
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(rotation_prob=1.0, flip_prob=0.5)
    for _ in range(20):
        p = random_crop(np.array([10.0, 20.0, 110.0, 220.0]), cfg, rng)
        m = crop_matrix(p, 64)
        assert np.allclose(invert_affine(invert_affine(m)), m)
        assert np.isclose(abs(np.linalg.det(m[:, :2])), (64 / p.side) ** 2)
        # a rotation of the crop is a roll of the camera: the 3D's image-plane direction turns with the 2D
        joints = rng.normal(size=(17, 3)) * 300
        turned = rotate_3d(joints, p)
        lin = m[:, :2] / (64 / p.side)  # the crop's rotation (and mirror), without scale
        expect = (joints[:, :2] @ lin.T)
        if p.flip:
            expect = expect[FLIP_PERMUTATION]
        assert np.allclose(turned[:, :2], expect) and np.allclose(turned[:, 2], joints[FLIP_PERMUTATION if p.flip else slice(None), 2])
    assert decode_reduction(1000, 128) == 4 and decode_reduction(255, 128) == 1 and decode_reduction(5000, 128) == 8


def test_dataset_items_mirror_with_a_left_right_swap():
    src = MpiiSource(MPII_FIXTURE)
    plain = CropDataset([src], 64, None)[(0, 1, 0, 0)]
    flip = AugmentConfig(scale_jitter=0, shift_jitter=0, rotation_prob=0, flip_prob=1.0, colour=0, channel_gain=0)
    mirrored = CropDataset([src], 64, flip)[(0, 1, 0, 0)]
    assert torch.equal(mirrored["image"], plain["image"].flip(-1))
    a, b = plain["joints_2d"].numpy(), mirrored["joints_2d"].numpy()
    assert np.allclose(b[:, 0], -a[FLIP_PERMUTATION, 0], atol=1e-5) and np.allclose(b[:, 1], a[FLIP_PERMUTATION, 1], atol=1e-5)
    # the person's left hand is drawn where their right hand was: labels swap with the pixels
    assert np.allclose(b[JOINT_INDEX["LWrist"], 0], -a[JOINT_INDEX["RWrist"], 0], atol=1e-5)
    assert torch.equal(mirrored["valid_2d"], plain["valid_2d"][torch.from_numpy(FLIP_PERMUTATION.copy())])
    # deterministic per (seed, epoch, position), different across positions
    ds = CropDataset([src], 64, AugmentConfig(), seed=3)
    assert torch.equal(ds[(0, 2, 1, 7)]["image"], ds[(0, 2, 1, 7)]["image"]) and not torch.equal(ds[(0, 2, 1, 7)]["image"], ds[(0, 2, 1, 8)]["image"])


def test_colour_step_is_the_documented_linear_map():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (3, 3, 8, 9), dtype=np.uint8))
    params = [colour_params(AugmentConfig(), rng, synthetic=False) for _ in range(3)]
    colour = torch.from_numpy(np.stack([p[0] for p in params]))
    out = apply_colour(images, colour, torch.zeros(3)).numpy()
    w = np.array(LUMA)
    for b in range(3):
        x = images[b].numpy().astype(np.float64) * colour[b, :3].numpy()[:, None, None]
        grey = np.tensordot(w, x, axes=(0, 0))
        s, c = float(colour[b, 3]), float(colour[b, 4])
        x = grey + s * (x - grey)
        x = grey.mean() + c * (x - grey.mean())
        assert np.allclose(out[b], np.clip(x, 0, 255), atol=1e-3)
    ident = apply_colour(images, torch.ones(3, 5), torch.zeros(3))
    assert torch.allclose(ident, images.float())
    assert all(p[1] == 0 for p in params)  # no noise on real photos


def test_sampler_mixes_every_batch_by_weight():
    s = MixtureSampler([50, 7, 1000], [0.5, 0.25, 0.25], 8, 12, seed=0)
    s.set_epoch(2)
    batches = list(s)
    assert len(batches) == 12 and all(len(b) == 8 for b in batches)
    counts = np.array([[sum(1 for x in b if x[0] == k) for k in range(3)] for b in batches])
    assert (counts == [4, 2, 2]).all()
    small = [x[1] for b in batches for x in b if x[0] == 1]
    assert sorted(small[:7]) == list(range(7))  # a pass over a source visits every person once
    positions = [x[3] for b in batches for x in b]
    assert positions == list(range(96)) and all(x[2] == 2 for b in batches for x in b)


def test_losses_mask_missing_joints():
    pred, target = torch.zeros(2, 17, 3), torch.ones(2, 17, 3)
    valid = torch.zeros(2, 17)
    assert float(masked_l1(pred, target, valid)) == 0.0
    valid[0, 3] = 1
    assert float(masked_l1(pred, target, valid)) == 1.0
    # bone ratios: zero for a pose with the reference proportions, positive for one with a long left thigh
    from generator.prior import sample_prior_poses

    pose = torch.from_numpy(sample_prior_poses(np.random.default_rng(0), 1).astype(np.float32)) / 1000
    assert float(bone_ratio_loss(pose, torch.ones(1))) < 1e-10
    stretched = pose.clone()
    stretched[0, [5, 6]] += (stretched[0, 5] - stretched[0, 4]) * 0.5
    assert float(bone_ratio_loss(stretched, torch.ones(1))) > 1e-3 and float(bone_ratio_loss(stretched, torch.zeros(1))) == 0.0
    model = ImagePoseNet(NetConfig(input_size=32, head_channels=[16]))
    out = model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    batch = {"joints_2d": torch.zeros(2, 17, 2), "valid_2d": torch.ones(2, 17), "joints_3d": torch.zeros(2, 17, 3), "valid_3d": torch.zeros(2, 17)}
    losses = image_losses(out, batch, LossConfig(weight_bone=0.1))
    assert float(losses["loss_3d"].detach()) == 0.0 and float(losses["loss_2d"].detach()) > 0 and "loss_bone" in losses
    assert out["heatmaps"].sum(dim=(2, 3)).allclose(torch.ones(2, 17)) and out["joints_2d"].abs().max() < 1
