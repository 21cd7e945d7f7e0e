"""LSP and LSPET folders (`joints.mat` + `images/imNNNN.jpg`) as an image source, and their splits.

The layout is read from the content, not the name:

- LSP: `joints` of shape (3, 14, N); row 2 is 1 where the joint is OCCLUDED. Every joint is
  labelled (occluded ones where the annotator put them), so all 14 count.
- LSPET: shape (14, 3, N); column 2 is 1 where the joint is VISIBLE. Coordinates of the others
  are unreliable (some are negative) and are masked.

Coordinates are MATLAB's (the first pixel's centre is 1), so 0.5 is subtracted to reach the
pixel convention of docs/conventions.md. Image i (0-based) is the file numbered i + 1.

Splits (`LSP_SPLITS`): `holdout` is the last ceil(N / 10) images, at most 1,000 (on LSPET: the
last 1,000, im09001-im10000; on LSP: the last 200), kept for evaluation; `train` is the rest, and
is the only split the image trainer opens; `all` is every image (labelling, inspection).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import numpy as np

from generator.skeleton import NUM_JOINTS

from .joints import LSP_TO_H36M, map_to_h36m
from .matfile import MatFileError, load_mat
from .records import PhotoSource, PoseRecords, keypoint_boxes

log = logging.getLogger(__name__)

LSP_SPLITS = ("train", "holdout", "all")
HOLDOUT_MAX = 1000
MATLAB_TO_PIXELS = -0.5  # MATLAB's 1-based pixel centres -> our corner convention
LABELS_FORMAT = "posebridge-lsp-labels"
_IMAGE_RE = re.compile(r"^im(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)


def holdout_count(n: int) -> int:
    """How many of the last images are held out: ceil(n / 10), at most HOLDOUT_MAX."""
    return min(HOLDOUT_MAX, math.ceil(n / 10))


def split_indices(n: int, split: str) -> np.ndarray:
    if split not in LSP_SPLITS:
        raise ValueError(f"unknown LSP split {split!r}; choose one of {', '.join(LSP_SPLITS)}")
    h = holdout_count(n)
    return {"train": np.arange(n - h), "holdout": np.arange(n - h, n), "all": np.arange(n)}[split]


def is_lsp_folder(path: Path) -> bool:
    return path.is_dir() and (path / "joints.mat").is_file()


def read_lsp_joints(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """('lsp' or 'lspet', xy (N, 14, 2) in our pixel convention, labelled (N, 14) bool) of `joints.mat`."""
    variables = load_mat(path)
    if "joints" not in variables:
        raise MatFileError(f"{path}: no variable 'joints' (found {sorted(variables) or 'none'})")
    j = variables["joints"]
    if j.ndim == 2 and j.shape in ((3, 14), (14, 3)):  # MATLAB drops a trailing singleton dimension
        j = j[..., None]
    if j.ndim != 3 or j.shape[:2] not in ((3, 14), (14, 3)):
        raise MatFileError(f"{path}: variable 'joints' has shape {j.shape}; expected (3, 14, N) (LSP) or (14, 3, N) (LSPET)")
    if not np.issubdtype(j.dtype, np.floating) and not np.issubdtype(j.dtype, np.integer):
        raise MatFileError(f"{path}: variable 'joints' is {j.dtype}, not numeric")
    if j.shape[2] == 0:
        raise MatFileError(f"{path}: variable 'joints' holds no images")
    layout = "lsp" if j.shape[0] == 3 else "lspet"
    a = np.moveaxis(j.astype(np.float64), 2, 0)  # (N, 3, 14) or (N, 14, 3)
    if layout == "lsp":
        a = a.transpose(0, 2, 1)
    xy, flag = a[..., :2], a[..., 2]
    bad = ~np.isfinite(a).all(axis=2)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise MatFileError(f"{path}: 'joints' of image index {i} (im{i + 1:05d}), joint {k}, holds NaN or infinity")
    bad = ~np.isin(flag, (0.0, 1.0))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise MatFileError(f"{path}: 'joints' flag of image index {i}, joint {k} is {float(flag[i, k])!r}; it must be 0 or 1")
    if np.abs(xy).max() > 1e6:
        i, k = np.argwhere(np.abs(xy).max(axis=2) > 1e6)[0]
        raise MatFileError(f"{path}: 'joints' of image index {i}, joint {k} is {xy[i, k].tolist()}, not a pixel position")
    labelled = np.ones(flag.shape, bool) if layout == "lsp" else flag == 1.0
    return layout, xy + MATLAB_TO_PIXELS, labelled


def lsp_image_files(folder: Path, n: int) -> list[Path]:
    """images/imNNNN.* numbered 1..n (any zero padding); an error names the first one missing."""
    images = folder / "images"
    if not images.is_dir():
        raise FileNotFoundError(f"{images}: no images folder beside joints.mat")
    found: dict[int, Path] = {}
    for p in images.iterdir():
        m = _IMAGE_RE.match(p.name)
        if m:
            found.setdefault(int(m.group(1)), p)
    missing = [i for i in range(1, n + 1) if i not in found]
    extra = sorted(i for i in found if not 1 <= i <= n)
    if extra:
        raise ValueError(f"{folder / 'joints.mat'}: 'joints' holds {n} images, but {images} also holds {found[extra[0]].name} ({len(extra)} beyond them)")
    if missing:
        raise FileNotFoundError(f"{folder / 'joints.mat'}: 'joints' holds {n} images, but {images / f'im{missing[0]:0{5 if n > 9999 else 4}d}.jpg'} ({len(missing)} in all) is missing")
    return [found[i] for i in range(1, n + 1)]


class LspSource(PhotoSource):
    """One split of an LSP/LSPET folder. `indices` maps each record to its 0-based image index."""

    kind = "lsp"

    def __init__(self, folder: str | Path, split: str = "train", min_joints: int = 4, labels_3d: dict | None = None):
        folder = Path(folder)
        layout, xy, labelled = read_lsp_joints(folder / "joints.mat")
        n = len(xy)
        files = lsp_image_files(folder, n)
        rows = split_indices(n, split)
        joints, valid = map_to_h36m(xy[rows], labelled[rows], LSP_TO_H36M)
        joints_3d = np.zeros((len(rows), NUM_JOINTS, 3))
        valid_3d = np.zeros((len(rows), NUM_JOINTS), bool)
        K = None
        if labels_3d is not None:
            joints_3d, valid_3d, K = _labels_for(labels_3d, rows, valid)
        keep = valid.sum(axis=1) >= min_joints
        self.layout = layout
        self.n_images = n
        self.indices = rows[keep]
        records = PoseRecords(
            joints_2d=joints.astype(np.float32), valid_2d=valid, box=keypoint_boxes(xy[rows], labelled[rows]),
            joints_3d=joints_3d.astype(np.float32), valid_3d=valid_3d, K=K,
        ).take(np.flatnonzero(keep))
        super().__init__(folder, records, [files[i] for i in self.indices], lacks=[], split=split)
        self.kind = layout
        self.has_pseudo_3d = labels_3d is not None


def _labels_for(labels: dict, rows: np.ndarray, valid_2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """3D, its validity and K of the images `rows` from a labels file's `by_index` table."""
    by_index = labels["by_index"]
    joints = np.zeros((len(rows), NUM_JOINTS, 3))
    valid = np.zeros((len(rows), NUM_JOINTS), bool)
    K = np.zeros((len(rows), 3, 3))
    K[:] = np.eye(3)
    for r, i in enumerate(rows):
        entry = by_index.get(int(i))
        if entry is None or entry[0] is None:
            continue
        joints[r], valid[r], K[r] = entry
    return joints, valid & valid_2d, K.astype(np.float32)


def read_lsp_labels(path: Path) -> dict:
    """A `posebridge label --lsp` file: {'folder', 'split', 'by_index': {i: (3D, valid, K) or (None, ...)}}."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the labels JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format") != LABELS_FORMAT:
        raise ValueError(f"{path}: not a {LABELS_FORMAT} file (key 'format')")
    for key in ("folder", "labels"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}")
    by_index = {}
    for n, entry in enumerate(data["labels"]):
        where = f"{path}: labels[{n}]"
        try:
            i = int(entry["index"])
            if entry.get("keypoints_3d") is None:
                by_index[i] = (None, None, None)
                continue
            joints = np.asarray(entry["keypoints_3d"], dtype=np.float64)
            flags = np.asarray(entry["keypoints_3d_valid"], dtype=np.float64)
            K = np.asarray(entry["camera_K"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{where}: bad or missing value ({e})") from None
        if joints.shape != (NUM_JOINTS, 3) or flags.shape != (NUM_JOINTS,) or K.shape != (3, 3):
            raise ValueError(f"{where}: keypoints_3d (17, 3), keypoints_3d_valid (17,) and camera_K (3, 3) expected")
        if not (np.isfinite(joints).all() and np.isfinite(K).all() and np.isin(flags, (0, 1)).all()):
            raise ValueError(f"{where}: values must be finite and the flags 0 or 1")
        by_index[i] = (joints, flags == 1, K)
    folder = Path(data["folder"])
    if not folder.is_absolute():
        folder = Path(path).parent / folder
    return {"folder": folder, "split": data.get("split", "train"), "by_index": by_index}


def is_lsp_labels(data: object) -> bool:
    return isinstance(data, dict) and data.get("format") == LABELS_FORMAT


def label_lsp(checkpoint: str | Path, folder: str | Path, out: str | Path, split: str = "train", focal_px: float | None = None,
              min_joints: int = 12, search: str = "fast") -> dict:  # fmt: skip
    """Pseudo-3D labels for an LSP-format folder: every person's h36m17 2D (LSP_TO_H36M) lifted by
    the trained label generator and placed by the geometric search (train/label.py), written to
    `out` as a `posebridge-lsp-labels` JSON that names the folder (images and 2D stay there).

    K per image is estimated from its size as for COCO photos (f = the diagonal) unless
    `focal_px` is given. Returns a summary dict (people, lifted, skipped)."""
    from PIL import Image

    from generator.skeleton import JOINT_NAMES, SKELETON_NAME
    from generator.store import atomic_write

    from ..inference import Lifter
    from ..label import LabelOptions, estimate_intrinsics, lift_people

    folder, out = Path(folder).resolve(), Path(out)
    layout, xy, labelled = read_lsp_joints(folder / "joints.mat")
    files = lsp_image_files(folder, len(xy))
    rows = split_indices(len(xy), split)
    joints, valid = map_to_h36m(xy[rows], labelled[rows], LSP_TO_H36M)
    K = np.zeros((len(rows), 3, 3))
    for r, i in enumerate(rows):
        try:
            with Image.open(files[i]) as im:
                w, h = im.size
        except OSError as e:
            raise ValueError(f"{files[i]}: cannot read the image size ({e})") from None
        K[r] = estimate_intrinsics(w, h, focal_px)
    options = LabelOptions(focal_px=focal_px, min_joints=min_joints, search=search)
    lifter = Lifter.load(checkpoint)
    joints_3d, status = lift_people(lifter, joints, valid, K, options)
    labels = [
        {"index": int(i), "file": files[i].name, "camera_K": np.round(K[r], 3).tolist(),
         "keypoints_3d": np.round(joints_3d[r], 1).tolist() if status[r] == "lifted" else None,
         "keypoints_3d_valid": valid[r].astype(int).tolist(), "keypoints_3d_status": status[r]}
        for r, i in enumerate(rows)
    ]  # fmt: skip
    payload = {
        "format": LABELS_FORMAT, "version": 1, "folder": str(folder), "layout": layout, "split": split,
        "keypoints_3d_info": {"skeleton": SKELETON_NAME, "joint_names": list(JOINT_NAMES), "units": "mm",
                              "frame": "camera (OpenCV); K per entry in camera_K", "model": lifter.kind, "checkpoint": lifter.source,
                              "search": search, "min_joints": min_joints,
                              "focal_px": focal_px if focal_px is not None else "estimated: image diagonal"},
        "labels": labels,
    }  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(payload).encode())
    lifted = sum(s == "lifted" for s in status)
    return {"out": out, "people": len(rows), "lifted": lifted, "skipped": len(rows) - lifted, "split": split, "layout": layout}
