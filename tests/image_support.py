"""Helpers of the image-network tests: LSP-format folders made from the vendored MPII photos, and
small rendered datasets made with the built-in player."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from train.image.matfile import mat_bytes
from train.label import REAL_DATA_DIR

MPII_FIXTURE = REAL_DATA_DIR / "mpii" / "test_mpii.json"
COCO_FIXTURE = REAL_DATA_DIR / "coco" / "test_coco.json"
# LSP's 14 joints as MPII indices: ankles, knees, hips, wrists, elbows, shoulders, upper neck, head top.
MPII_OF_LSP = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9]


def lsp_folder(out: Path, layout: str, visible_fraction: float = 0.8, seed: int = 0, compress: bool = True) -> tuple[Path, np.ndarray, np.ndarray]:
    """An LSP ('lsp': (3, 14, N), flag = occluded) or LSPET ('lspet': (14, 3, N), flag = visible)
    folder of the MPII fixture's 5 photos and their joints in LSP order (MATLAB coordinates, as MPII's).
    In the LSPET layout some joints are marked not visible and their coordinates scrambled (negative),
    as LSPET's are. Returns the folder, the MATLAB xy (N, 14, 2) and the per-joint flag (N, 14)."""
    import json

    entries = json.loads(MPII_FIXTURE.read_text())
    rng = np.random.default_rng(seed)
    xy = np.array([np.asarray(e["joints"], dtype=np.float64)[MPII_OF_LSP] for e in entries])
    labelled = np.array([np.asarray(e["joints_vis"])[MPII_OF_LSP] == 1 for e in entries])
    # LSP labels every joint, also outside the photo: MPII's unlabelled ones (cut-off feet) go below it.
    xy = np.where(labelled[..., None], xy, [[[100.0, 2000.0]]])
    (out / "images").mkdir(parents=True, exist_ok=True)
    for i, e in enumerate(entries):
        shutil.copyfile(MPII_FIXTURE.parent / e["image"], out / "images" / f"im{i + 1:04d}.jpg")
    if layout == "lsp":
        flag = (rng.random(xy.shape[:2]) < 0.2).astype(np.float64)  # occluded
        joints = np.concatenate([xy, flag[..., None]], axis=2).transpose(2, 1, 0)  # (3, 14, N)
    else:
        flag = ((rng.random(xy.shape[:2]) < visible_fraction) & labelled).astype(np.float64)  # visible
        stored = np.where(flag[..., None] == 1, xy, -rng.uniform(1, 50, xy.shape))
        joints = np.concatenate([stored, flag[..., None]], axis=2).transpose(1, 2, 0)  # (14, 3, N)
    (out / "joints.mat").write_bytes(mat_bytes({"joints": joints}, compress=compress))
    return out, xy, flag


def render_small(out: Path, frames: int, image_size: int, seed: int, **subjects) -> Path:
    from train.image.renders import render_dataset

    return render_dataset(out, frames, image_size=image_size, seed=seed, workers=2, **subjects)
