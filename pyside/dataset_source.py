"""Viewer samples from a dataset folder (generator/store.py): the rendered image with its keypoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator.store import DatasetReader

from .sources import ViewerSample

_KEYS = ("joints_2d", "joints_3d", "joints_2d_right", "visibility", "K", "image_size", "subject", "sequence", "action")


class DatasetSource:
    """Frames of a dataset folder in frame-id order; images are read one at a time from the shards."""

    def __init__(self, folder: str | Path):
        self.reader = DatasetReader(folder, _KEYS)
        self.name = Path(folder).name

    def __len__(self) -> int:
        return len(self.reader)

    def sample(self, i: int) -> ViewerSample:
        a = self.reader.arrays
        meta = {"frame_id": int(a["frame_id"][i]), "K": np.asarray(a["K"][i]).round(2).tolist()}
        meta.update({key: str(a[key][i]) for key in ("subject", "sequence", "action")})
        return ViewerSample(
            index=i,
            joints_2d=np.asarray(a["joints_2d"][i], dtype=np.float64),
            joints_3d=np.asarray(a["joints_3d"][i], dtype=np.float64),
            image_size=tuple(int(v) for v in a["image_size"][i]),
            visibility=np.asarray(a["visibility"][i]),
            joints_2d_right=np.asarray(a["joints_2d_right"][i], dtype=np.float64),
            image=self.reader.image(i),
            meta=meta,
        )
