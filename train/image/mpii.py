"""MPII-style JSON (the layout of mmpose's MPII annotations) as an image source.

The file is a list with one entry per person:
`{"image": "005808361.jpg", "joints": 16 x [x, y], "joints_vis": 16 x 0|1, "center": [x, y], "scale": s}`
(`center` and `scale`, the person box of MPII, are optional but checked when present). Joints in
MPII's order (`joints.MPII_JOINT_NAMES`), mapped with `joints.MPII_TO_H36M`; a joint counts where
`joints_vis` is 1. Coordinates are MATLAB's (1-based, as mmpose reads them: it subtracts 1), so
0.5 is subtracted to reach docs/conventions.md. Images sit beside the JSON unless `images` is given.
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath

import numpy as np

from .joints import MPII_JOINT_NAMES, MPII_TO_H36M, lacking, map_to_h36m
from .records import PhotoSource, PoseRecords, checked_array, keypoint_boxes

MATLAB_TO_PIXELS = -0.5
N_MPII = len(MPII_JOINT_NAMES)
_REQUIRED = ("image", "joints", "joints_vis")


def _numbers(value, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    """A finite float64 array of exactly `shape` (bools and strings are not numbers)."""
    def flat(v):
        if isinstance(v, list):
            for x in v:
                yield from flat(x)
        else:
            yield v

    if not isinstance(value, list) or not all(type(x) in (int, float) for x in flat(value)):
        raise ValueError(f"{where}: {key!r} must be a list of numbers")
    try:
        a = np.asarray(value, dtype=np.float64)
    except ValueError:
        raise ValueError(f"{where}: {key!r} is a ragged list") from None
    return checked_array(a, shape, where, key)


def parse_mpii(entries: object, source: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(image names, xy (N, 16, 2) in our pixel convention, labelled (N, 16)) of an MPII JSON list."""
    if not isinstance(entries, list):
        raise ValueError(f"{source}: an MPII JSON file is a list of people, got {type(entries).__name__}")
    if not entries:
        raise ValueError(f"{source}: the list of people is empty")
    names, xy, vis = [], np.zeros((len(entries), N_MPII, 2)), np.zeros((len(entries), N_MPII), bool)
    for i, e in enumerate(entries):
        where = f"{source}: entry {i}"
        if not isinstance(e, dict):
            raise ValueError(f"{where}: a person must be an object, got {type(e).__name__}")
        for key in _REQUIRED:
            if key not in e:
                raise ValueError(f"{where}: missing key {key!r}")
        name = e["image"]
        if not isinstance(name, str) or not name or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise ValueError(f"{where}: 'image' must be a relative file name, got {name!r}")
        xy[i] = _numbers(e["joints"], (N_MPII, 2), where, "joints")
        flags = _numbers(e["joints_vis"], (N_MPII,), where, "joints_vis")
        if not np.all(np.isin(flags, (0.0, 1.0))):
            raise ValueError(f"{where}: 'joints_vis' must hold 0 or 1, got {sorted(set(flags.tolist()) - {0.0, 1.0})[:3]}")
        vis[i] = flags == 1
        if np.abs(xy[i][vis[i]]).max(initial=0.0) > 1e6:
            raise ValueError(f"{where}: 'joints' holds coordinates beyond 1e6 px")
        if "center" in e:
            _numbers(e["center"], (2,), where, "center")
        if "scale" in e:
            s = e["scale"]
            if type(s) not in (int, float) or not math.isfinite(s) or s <= 0:
                raise ValueError(f"{where}: 'scale' must be a positive number, got {s!r}")
        names.append(name)
    return names, xy + MATLAB_TO_PIXELS, vis


def read_json_strict(path: Path) -> object:
    def reject(token: str):
        raise ValueError(f"{token} is not a number")

    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"), parse_constant=reject)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{path}: cannot read JSON ({e})") from None


def is_mpii(data: object) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "joints_vis" in data[0]


class MpiiSource(PhotoSource):
    kind = "mpii"

    def __init__(self, path: str | Path, images: str | Path | None = None, min_joints: int = 4, entries: object = None):
        path = Path(path)
        names, xy, vis = parse_mpii(read_json_strict(path) if entries is None else entries, str(path))
        image_dir = Path(images) if images is not None else path.parent
        joints, valid = map_to_h36m(xy, vis, MPII_TO_H36M)
        keep = np.flatnonzero(valid.sum(axis=1) >= min_joints)
        records = PoseRecords(joints_2d=joints.astype(np.float32), valid_2d=valid, box=keypoint_boxes(xy, vis)).take(keep)
        super().__init__(path, records, [image_dir / names[i] for i in keep], lacks=lacking(MPII_TO_H36M))
