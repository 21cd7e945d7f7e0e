"""PyTorch datasets over a dataset folder (generator/store.py).

`FrameDataset` gives image + keypoints per frame with random access: each shard's .npz records
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
    visibility, int64 frame_id). `transform`, if given, maps that dict to whatever the model needs.
    """

    def __init__(self, folder: str | Path, transform: Callable[[dict], dict] | None = None):
        self.reader = DatasetReader(folder, FRAME_KEYS)
        self.transform = transform

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
