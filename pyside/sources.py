"""What the viewer shows: one sample at a time from a pairs v1 file or a dataset folder.

The Qt widgets only see `ViewerSample`s, so they work the same for any source.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from generator.pairs_io import Pairs, load_pairs


@dataclasses.dataclass
class ViewerSample:
    """One sample in the project's conventions (pixels, camera-frame mm)."""

    index: int
    joints_2d: np.ndarray  # (17, 2) px
    joints_3d: np.ndarray  # (17, 3) camera frame, mm
    image_size: tuple[int, int]  # [width, height]
    visibility: np.ndarray | None = None  # (17,) 0/1/2
    joints_2d_right: np.ndarray | None = None  # (17, 2) px
    image: np.ndarray | None = None  # (H, W, 3) uint8, when the source has images
    mask: np.ndarray | None = None  # (H, W) uint8 person mask (1 person, 0 elsewhere), when the source has one
    meta: dict = dataclasses.field(default_factory=dict)


class PairsSource:
    """Samples of a pairs v1 file (memory-mapped, so big files open instantly)."""

    def __init__(self, pairs: Pairs, name: str = "pairs"):
        self.pairs = pairs
        self.name = name
        self._K = pairs.K_per_sample()
        self._size = pairs.image_size_per_sample()

    @classmethod
    def open(cls, path: str | Path) -> "PairsSource":
        return cls(load_pairs(path, mmap=True), name=Path(path).name)

    def __len__(self) -> int:
        return len(self.pairs)

    def sample(self, i: int) -> ViewerSample:
        p = self.pairs
        meta = {"K": np.asarray(self._K[i]).round(2).tolist()}
        for key in ("subject", "sequence", "action", "camera"):
            values = getattr(p, key)
            if values is not None:
                meta[key] = str(values[i])
        return ViewerSample(
            index=i,
            joints_2d=np.asarray(p.joints_2d[i], dtype=np.float64),
            joints_3d=np.asarray(p.joints_3d[i], dtype=np.float64),
            image_size=tuple(int(v) for v in self._size[i]),
            visibility=None if p.visibility is None else np.asarray(p.visibility[i]),
            joints_2d_right=None if p.joints_2d_right is None else np.asarray(p.joints_2d_right[i], dtype=np.float64),
            meta=meta,
        )


def open_source(path: str | Path):
    """A viewer source for a pairs .npz file or a dataset folder (local, or an fsspec URL)."""
    from generator.storage import is_remote

    if is_remote(path):
        from .dataset_source import DatasetSource

        return DatasetSource(str(path))
    path = Path(path)
    if path.is_dir():
        from .dataset_source import DatasetSource

        return DatasetSource(path)
    if path.suffix == ".npz":
        return PairsSource.open(path)
    raise ValueError(f"{path}: not a pairs .npz file or a dataset folder")
