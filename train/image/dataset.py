"""The image network's data path: weighted per-batch mixing of sources, decoding and augmentation
in DataLoader workers, deterministic per (seed, epoch, position).

`MixtureSampler` (main process) decides which person of which source fills each slot of each batch:
every batch holds each source in proportion to its weight (`train.data.split_batch`, exact up to
carried rounding), and each source is read in a fresh permutation per epoch. It yields the slots
as (source, index, epoch, position) tuples; `CropDataset.__getitem__` (a worker) decodes, crops
and augments one of them with `np.random.default_rng([seed, epoch, position])`, so the batch does
not depend on the number of workers or which worker made it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from generator.skeleton import NUM_JOINTS

from ..data import split_batch
from .augment import (
    IDENTITY_COLOUR, AugmentConfig, apply_affine, blur, colour_params, crop_matrices, crop_matrix, decode_reduction, eval_crop,
    flip_joints, invert_affine, random_crop, rotate_3d, warp,
)
from .records import ImageSource

MM_PER_UNIT = 1000.0  # the network's 3D unit is the metre


class CropDataset(Dataset):
    """Person crops of several sources. An item is (source, index, epoch, position); with
    `augment` None the crop is the deterministic eval crop (and epoch/position are ignored)."""

    def __init__(self, sources: list[ImageSource], size: int, augment: AugmentConfig | None, seed: int = 0, pad: float | None = None):
        self.sources = sources
        self.size = size
        self.augment = augment
        self.seed = seed
        self.pad = pad if pad is not None else (augment.pad if augment is not None else AugmentConfig().pad)
        self._rel3d = [s.records.root_relative_3d() for s in sources]  # once, not per sample
        self._valid3d = [s.records.root_relative_valid() for s in sources]

    def __len__(self) -> int:  # only meaningful for a single source read in order (evaluation)
        return sum(len(s) for s in self.sources)

    def __getitem__(self, item) -> dict[str, torch.Tensor]:
        if isinstance(item, (int, np.integer)):
            item = (0, int(item), 0, 0)
        s, i, epoch, position = (int(v) for v in item)
        src = self.sources[s]
        rec = src.records
        box = src.mask_box(i) if hasattr(src, "mask_box") else None
        box = rec.box[i] if box is None else box
        rng = np.random.default_rng([self.seed, epoch, position, 7])
        params = eval_crop(box, self.pad) if self.augment is None else random_crop(box, self.augment, rng)
        image, scale = src.read_image(i, decode_reduction(params.side, self.size))
        m = crop_matrix(params, self.size)
        to_image = invert_affine(m)  # crop pixels -> full-size image pixels
        crop = warp(image, to_image * scale, self.size, self.augment.fill if self.augment else 0)
        colour, noise = IDENTITY_COLOUR, 0.0
        if self.augment is not None:
            if src.synthetic:
                crop = blur(crop, self.augment, rng)
            colour, noise = colour_params(self.augment, rng, src.synthetic)

        uv = apply_affine(m, rec.joints_2d[i].astype(np.float64))
        valid_2d = rec.valid_2d[i].copy()
        valid_3d = self._valid3d[s][i].copy()
        joints_3d = rotate_3d(self._rel3d[s][i].astype(np.float64), params)
        if params.flip:
            uv, valid_2d, valid_3d = flip_joints(uv), flip_joints(valid_2d[:, None])[:, 0], flip_joints(valid_3d[:, None])[:, 0]
        norm = uv / self.size * 2.0 - 1.0  # crop pixels -> [-1, 1]
        inside = np.all(np.abs(norm) < 1.0, axis=1)  # a joint outside the crop cannot be a soft-argmax target
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "joints_2d": torch.from_numpy(np.where(inside[:, None], norm, 0.0).astype(np.float32)),
            "valid_2d": torch.from_numpy((valid_2d & inside).astype(np.float32)),
            "joints_3d": torch.from_numpy((joints_3d / MM_PER_UNIT).astype(np.float32)),
            "valid_3d": torch.from_numpy(valid_3d.astype(np.float32)),
            "to_image": torch.from_numpy(to_image.astype(np.float32)),
            "colour": torch.from_numpy(colour),
            "noise": torch.from_numpy(np.array(noise, np.float32)),
            "source": torch.from_numpy(np.array(s)),
            "index": torch.from_numpy(np.array(i)),
        }


class MixtureSampler(Sampler):
    """`steps` batches per epoch of `batch_size` slots (source, index, epoch, position), each batch
    mixing the sources by weight; call `set_epoch` before iterating an epoch."""

    def __init__(self, sizes: list[int], weights: list[float], batch_size: int, steps: int, seed: int = 0):
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("give one weight per image source, and at least one source")
        if any(n == 0 for n in sizes):
            raise ValueError("an image source has no people")
        w = np.asarray(weights, dtype=np.float64)
        self.weights = w / w.sum()
        self.sizes, self.batch_size, self.steps, self.seed = sizes, batch_size, steps, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.steps

    def batches(self):
        carry = np.zeros(len(self.sizes))
        orders = [np.random.default_rng([self.seed, self.epoch, s, 5]).permutation(n) for s, n in enumerate(self.sizes)]
        used = [0] * len(self.sizes)
        passes = [0] * len(self.sizes)
        for step in range(self.steps):
            counts = split_batch(self.batch_size, self.weights, carry)
            slots = []
            for s, k in enumerate(counts):
                for _ in range(int(k)):
                    if used[s] == len(orders[s]):  # a pass is used up: a new permutation
                        passes[s] += 1
                        orders[s] = np.random.default_rng([self.seed, self.epoch, s, 5, passes[s]]).permutation(self.sizes[s])
                        used[s] = 0
                    slots.append((s, int(orders[s][used[s]]), self.epoch, step * self.batch_size + len(slots)))
                    used[s] += 1
            yield slots

    def __iter__(self):
        return self.batches()


def make_loader(dataset: CropDataset, sampler: MixtureSampler, workers: int, prefetch: int = 4, pin_memory: bool = False) -> DataLoader:
    """Workers persist across epochs (the sampler's epoch changes in the main process)."""
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=prefetch if workers > 0 else None,
        worker_init_fn=_worker_init,
        pin_memory=pin_memory,
    )


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def mean_pose(sources: list[ImageSource], weights: list[float], size: int, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """The training mixture's mean pose: 2D in eval-crop coordinates [-1, 1] (17, 2) and root-relative
    3D in metres (17, 3), each joint averaged over the people that have it, sources weighted.
    The trivial predictor the network must beat; kept in the checkpoint."""
    w = np.asarray(weights, dtype=np.float64) / np.sum(weights)
    sum2, n2 = np.zeros((NUM_JOINTS, 2)), np.zeros(NUM_JOINTS)
    sum3, n3 = np.zeros((NUM_JOINTS, 3)), np.zeros(NUM_JOINTS)
    for src, wi in zip(sources, w):
        r = src.records
        uv = apply_affine(crop_matrices(r.box, pad, size), r.joints_2d.astype(np.float64)) / size * 2 - 1
        v2 = r.valid_2d.astype(np.float64)
        count2 = np.maximum(v2.sum(axis=0), 1)
        sum2 += wi * (uv * v2[..., None]).sum(axis=0) / count2[:, None]
        n2 += wi * (v2.sum(axis=0) > 0)
        v3 = r.root_relative_valid().astype(np.float64)
        if v3.any():
            count3 = np.maximum(v3.sum(axis=0), 1)
            sum3 += wi * (r.root_relative_3d() / MM_PER_UNIT * v3[..., None]).sum(axis=0) / count3[:, None]
            n3 += wi * (v3.sum(axis=0) > 0)
    return (sum2 / np.maximum(n2, 1e-12)[:, None]).astype(np.float32), (sum3 / np.maximum(n3, 1e-12)[:, None]).astype(np.float32)
