"""Viewer samples from a dataset folder (generator/store.py): the rendered image and person mask with its keypoints."""

from __future__ import annotations

from pathlib import Path

from generator.pairs_io import Pairs
from generator.store import DatasetReader

from .sources import PairsSource, ViewerSample

_KEYS = ("joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "image_size", "subject", "sequence", "action")


class DatasetSource(PairsSource):
    """Frames of a dataset folder in frame-id order; images are read one at a time from the shards."""

    def __init__(self, folder: str | Path):
        self.reader = DatasetReader(folder, _KEYS)
        super().__init__(Pairs(**{k: self.reader.arrays[k] for k in _KEYS}), name=str(folder).rstrip("/").rsplit("/", 1)[-1])

    def sample(self, i: int) -> ViewerSample:
        sample = super().sample(i)
        sample.image = self.reader.image(i)
        sample.mask = self.reader.mask(i)
        sample.meta = {"frame_id": int(self.reader.arrays["frame_id"][i]), **sample.meta}
        return sample
