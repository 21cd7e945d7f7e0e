"""`--data SRC[:WEIGHT]` for the image network: what SRC is, read from its content.

- a folder with `manifest.json`: a rendered dataset (generator/store.py);
- a folder with `joints.mat`: LSP or LSPET (lsp.py; the trainer reads its `train` split only);
- a `.json` file holding a COCO keypoints object (`images`, `annotations`), with or without the
  `keypoints_3d` of `posebridge label`; a list of MPII-style people; or a `posebridge label --lsp`
  labels file (the LSP folder it names, with pseudo-3D labels).
"""

from __future__ import annotations

from pathlib import Path

from generator.store import MANIFEST_NAME

from .coco import CocoSource
from .lsp import LspSource, is_lsp_folder, is_lsp_labels, read_lsp_labels
from .mpii import MpiiSource, is_mpii, read_json_strict
from .records import ImageSource
from .rendered import RenderedSource

SOURCE_KINDS = ("rendered", "lsp", "lspet", "coco", "mpii")


def open_image_source(path: str | Path, split: str = "train", min_joints: int = 4) -> ImageSource:
    """The image source at `path` (kind detected from the content). `split` picks part of an LSP
    folder (lsp.LSP_SPLITS); the training code always asks for `train`."""
    path = Path(path)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return RenderedSource(path)
        if is_lsp_folder(path):
            return LspSource(path, split=split, min_joints=min_joints)
        raise ValueError(f"{path}: neither a rendered dataset ({MANIFEST_NAME}) nor an LSP-format folder (joints.mat + images/)")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such dataset folder or JSON file")
    if path.suffix.lower() != ".json":
        raise ValueError(f"{path}: not a dataset folder or a .json file (COCO keypoints, MPII, or posebridge LSP labels)")
    data = read_json_strict(path)  # strict JSON (no NaN), the same parser for every kind
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        return CocoSource(path, min_joints=min_joints, coco=data)
    if is_mpii(data):
        return MpiiSource(path, min_joints=min_joints, entries=data)
    if is_lsp_labels(data):
        labels = read_lsp_labels(path)
        return LspSource(labels["folder"], split=split, min_joints=min_joints, labels_3d=labels)
    raise ValueError(f"{path}: JSON that is neither COCO keypoints (images + annotations), an MPII list of people, nor posebridge LSP labels")


def describe_sources(sources: list[ImageSource]) -> str:
    return "; ".join(s.describe() for s in sources)
