"""PyTorch datasets over a dataset folder (generator/store.py).

`FrameDataset` gives image + keypoints (+ person mask) per frame with random access: each shard's .npz records
where every image sits inside its tar, so one seek and read fetch it (no tar scan, no
WebDataset pipeline needed; the tars stay readable by `webdataset` for streaming). `PairsDataset`
gives the keypoint pairs only and never touches an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .pairs_io import Pairs
from .store import DatasetReader, load_dataset_pairs

FRAME_KEYS = ("frame_id", "joints_2d", "joints_3d", "joints_3d_world", "joints_2d_right", "visibility", "K", "R", "t", "image_size", "baseline_mm")


class FrameDataset(Dataset):
    """Frame i of the folder (frame-id order) as a dict of tensors.

    "image" is uint8 (3, H, W); the keypoint keys keep the store's dtypes (float32 joints, uint8
    visibility, int64 frame_id). "mask" is the person mask, uint8 (H, W) with 1 on the visible
    person and 0 elsewhere; it is there when `masks` is on, which by default (None) means when
    every frame of the folder has one (a batch needs the same keys in every sample). masks=True
    insists (ValueError naming frames without one), masks=False never reads them.
    `transform`, if given, maps that dict to whatever the model needs.
    """

    def __init__(self, folder: str | Path, transform: Callable[[dict], dict] | None = None, masks: bool | None = None):
        self.reader = DatasetReader(folder, FRAME_KEYS)
        self.transform = transform
        has = self.reader.has_mask
        if masks and not has.all():
            missing = self.reader.arrays["frame_id"][~has]
            raise ValueError(f"{folder}: {len(missing)} frames have no person mask (frame ids {missing[:5].tolist()}...); masks=True needs them all")
        self.masks = bool(has.all() and len(has)) if masks is None else masks

    def __len__(self) -> int:
        return len(self.reader)

    def image(self, index: int) -> np.ndarray:
        """(H, W, C) uint8 pixels of frame `index`."""
        return self.reader.image(index)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        index %= len(self)
        sample = {k: torch.from_numpy(np.array(self.reader.arrays[k][index])) for k in FRAME_KEYS}
        sample["image"] = torch.from_numpy(self.image(index)).permute(2, 0, 1)
        if self.masks:
            sample["mask"] = torch.from_numpy(self.reader.mask(index))
        return self.transform(sample) if self.transform else sample


class PairsDataset(Dataset):
    """The folder's keypoint pairs (or a `Pairs`) as float32 tensors: joints_2d, joints_2d_right,
    joints_3d, K (per sample), visibility, baseline_mm. No image is read."""

    def __init__(self, source: str | Path | Pairs, mmap: bool = False):
        pairs = source if isinstance(source, Pairs) else load_dataset_pairs(source, mmap=mmap)
        if pairs.joints_2d_right is None or pairs.visibility is None:
            raise ValueError("PairsDataset needs visibility and the right view (joints_2d_right)")
        self.pairs = pairs
        self.K = pairs.K_per_sample()
        self.baseline = pairs.baseline_per_sample()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        p = self.pairs
        return {
            "joints_2d": torch.from_numpy(np.array(p.joints_2d[index], dtype=np.float32)),
            "joints_2d_right": torch.from_numpy(np.array(p.joints_2d_right[index], dtype=np.float32)),
            "joints_3d": torch.from_numpy(np.array(p.joints_3d[index], dtype=np.float32)),
            "K": torch.from_numpy(np.array(self.K[index], dtype=np.float32)),
            "visibility": torch.from_numpy(np.array(p.visibility[index])),
            "baseline_mm": torch.tensor(float(self.baseline[index]), dtype=torch.float32),
        }
