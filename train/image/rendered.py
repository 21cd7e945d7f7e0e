"""Rendered datasets (generator/store.py folders) as an image source: full 2D, 3D and K."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator.store import DatasetReader

from .records import ImageSource, PoseRecords, decode_reduced, keypoint_boxes, mask_box

RENDER_KEYS = ("joints_2d", "joints_3d", "visibility", "K", "image_size")


class RenderedSource(ImageSource):
    """Every frame of a dataset folder. A joint's 2D counts where it is in the image (visibility
    1 or 2: occluded joints keep their true position); 3D and K are known for every joint."""

    kind = "rendered"
    synthetic = True

    def __init__(self, folder: str | Path):
        self.reader = DatasetReader(folder, RENDER_KEYS)
        a = self.reader.arrays
        valid = a["visibility"] > 0
        records = PoseRecords(
            joints_2d=a["joints_2d"].astype(np.float32),
            valid_2d=valid,
            box=keypoint_boxes(a["joints_2d"], valid),
            joints_3d=a["joints_3d"].astype(np.float32),
            valid_3d=np.ones(valid.shape, bool),
            K=a["K"].astype(np.float32),
        )
        super().__init__(Path(folder), records, lacks=[])

    def image_name(self, i: int) -> str:
        return f"{self.path}#{int(self.reader.arrays['frame_id'][i])}"

    def read_image(self, i: int, reduce: int = 1):
        data, ext = self.reader.image_data(i)
        if ext == "npy":
            from PIL import Image

            return Image.fromarray(self.reader.image(i)), 1.0
        return decode_reduced(data, reduce, self.image_name(i))

    def mask_box(self, i: int) -> np.ndarray | None:
        """The box around frame i's person mask, where the dataset stores masks (else None: the
        box comes from the keypoints)."""
        mask = getattr(self.reader, "mask", None)
        return mask_box(np.asarray(mask(i))) if callable(mask) else None
