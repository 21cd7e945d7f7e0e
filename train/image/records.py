"""The common form of every image source: per person, the h36m17 2D (image pixels) and 3D (camera
mm) with per-joint validity, a person box, K, and a way to decode the image at a reduced size.

Importers (rendered.py, coco.py, lsp.py, mpii.py) build a `PoseRecords` and an image reader; the
training data path (dataset.py) only ever sees this form. Arrays are plain numpy so the object
crosses into DataLoader workers as is.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np

from generator.skeleton import NUM_JOINTS, ROOT

# A box side below this many pixels is widened to it (a person seen from very far, or two joints).
MIN_BOX_PX = 8.0


@dataclasses.dataclass
class PoseRecords:
    """N people, one row each (a photo may hold several people)."""

    joints_2d: np.ndarray  # (N, 17, 2) float32, image pixels (docs/conventions.md)
    valid_2d: np.ndarray  # (N, 17) bool: the dataset labels this joint of this person
    box: np.ndarray  # (N, 4) float32 [x0, y0, x1, y1] around the person, pixels
    joints_3d: np.ndarray | None = None  # (N, 17, 3) float32 camera frame, mm
    valid_3d: np.ndarray | None = None  # (N, 17) bool
    K: np.ndarray | None = None  # (N, 3, 3) float32, where the camera is known

    def __post_init__(self) -> None:
        n = len(self.joints_2d)
        if self.joints_3d is None:
            self.joints_3d = np.zeros((n, NUM_JOINTS, 3), np.float32)
            self.valid_3d = np.zeros((n, NUM_JOINTS), bool)
        for name, shape in (("joints_2d", (n, NUM_JOINTS, 2)), ("valid_2d", (n, NUM_JOINTS)), ("box", (n, 4)),
                            ("joints_3d", (n, NUM_JOINTS, 3)), ("valid_3d", (n, NUM_JOINTS))):  # fmt: skip
            if getattr(self, name).shape != shape:
                raise ValueError(f"PoseRecords.{name} has shape {getattr(self, name).shape}, expected {shape}")
        for name in ("joints_2d", "joints_3d", "box"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"PoseRecords.{name} holds NaN or infinity")

    def __len__(self) -> int:
        return len(self.joints_2d)

    @property
    def has_3d(self) -> np.ndarray:
        """(N,) bool: the person has root-relative 3D (its root and at least one other joint)."""
        v = self.root_relative_valid()
        return v.sum(axis=1) > 1

    def root_relative_valid(self) -> np.ndarray:
        """(N, 17) bool: joints whose root-relative 3D is known (the joint and the root are)."""
        return self.valid_3d & self.valid_3d[:, ROOT : ROOT + 1]

    def root_relative_3d(self) -> np.ndarray:
        """(N, 17, 3) float32 camera-frame joints minus the root, mm (0 where unknown)."""
        rel = self.joints_3d - self.joints_3d[:, ROOT : ROOT + 1]
        return np.where(self.root_relative_valid()[..., None], rel, 0.0).astype(np.float32)

    def take(self, rows: np.ndarray) -> "PoseRecords":
        return PoseRecords(
            self.joints_2d[rows], self.valid_2d[rows], self.box[rows], self.joints_3d[rows], self.valid_3d[rows],
            None if self.K is None else self.K[rows],
        )


def checked_array(a: np.ndarray, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    """`a` if it has `shape` and only finite values; else a one-line error naming `where` and `key`."""
    if a.shape != shape:
        raise ValueError(f"{where}: {key!r} has shape {a.shape}, expected {shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: {key!r} holds NaN or infinity")
    return a


def keypoint_boxes(points: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, 4) boxes [x0, y0, x1, y1] around the valid points (N, K, 2) of each person, at least MIN_BOX_PX wide."""
    valid = np.asarray(valid, bool)
    big = np.float64(1e30)
    lo = np.where(valid[..., None], points, big).min(axis=1)
    hi = np.where(valid[..., None], points, -big).max(axis=1)
    none = ~valid.any(axis=1)
    lo[none], hi[none] = 0.0, 0.0
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, MIN_BOX_PX / 2)
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """[x0, y0, x1, y1] around the nonzero pixels of a person mask (H, W), or None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def decode_reduced(data: bytes | Path, reduce: int, source: str):
    """The RGB image (a PIL Image) decoded at about 1/`reduce` of the full size, and the scale
    (decoded / full) of its pixel coordinates. JPEGs are decoded reduced by the codec itself (DCT
    scaling, `Image.draft`), which is where most of a large photo's decoding time goes."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data)
        full_w = im.size[0]
        if reduce > 1 and im.format == "JPEG":
            im.draft("RGB", (max(1, im.size[0] // reduce), max(1, im.size[1] // reduce)))
        im.load()
        if im.mode != "RGB":
            im = im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"{source}: cannot decode the image ({e})") from None
    return im, im.size[0] / full_w


class ImageSource:
    """A dataset of people in images: `records` plus `read_image(i)`. Subclasses set the fields."""

    kind = "?"
    synthetic = False  # rendered images get blur and noise in training (domain randomization)

    def __init__(self, path: Path, records: PoseRecords, lacks: list[int], split: str = "all"):
        self.path = Path(path)
        self.records = records
        self.lacks = lacks  # h36m17 joints this dataset never has
        self.split = split

    def __len__(self) -> int:
        return len(self.records)

    def describe(self) -> str:
        return f"{self.kind} {self.path} ({len(self)} people{'' if self.split == 'all' else ', split ' + self.split})"

    def image_name(self, i: int) -> str:
        raise NotImplementedError

    def read_image(self, i: int, reduce: int = 1):
        """Person i's image (an RGB PIL Image) decoded at about 1/reduce size, and the decoded/full pixel scale."""
        raise NotImplementedError


class PhotoSource(ImageSource):
    """Photos on disk, one file per record (people of one photo share it)."""

    def __init__(self, path: Path, records: PoseRecords, files: list[Path], lacks: list[int], split: str = "all"):
        super().__init__(path, records, lacks, split)
        if len(files) != len(records):
            raise ValueError(f"{path}: {len(files)} image files for {len(records)} people")
        self.files = [str(f) for f in files]
        for f in dict.fromkeys(self.files):  # every photo must be there before training starts
            if not Path(f).is_file():
                raise FileNotFoundError(f"{f}: image file missing (named by {path})")

    def image_name(self, i: int) -> str:
        return self.files[i]

    def read_image(self, i: int, reduce: int = 1):
        path = Path(self.files[i])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: image file missing (person {i} of {self.path})")
        return decode_reduced(path, reduce, str(path))
