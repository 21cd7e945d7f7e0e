"""Import Human3.6M-style data held in VideoPose3D's format into a pairs v1 file.

VideoPose3D (Pavllo et al. 2019) keeps
- `data_3d_*.npz`: `positions_3d`, a pickled dict subject -> action -> (T, 32 or 17, 3) world
  positions (metres in their Human3.6M export);
- `data_2d_*.npz`: `positions_2d`, subject -> action -> a list with one (T, 17, 2+) pixel array
  per camera, and `metadata` (`layout_name`: 'h36m' or 'coco' for COCO-ordered detections).
Cameras live in their code, so the importer takes them from a camera file (JSON, format in
docs/conventions.md, "Camera file"): per subject, the cameras in the order of the 2D lists.
Both npz files hold pickled Python objects; only load files you trust.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
from rich.progress import track
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from generator.camera import CameraModel, in_image, world_to_camera
from generator.pairs_io import VISIBILITY_OUTSIDE, VISIBILITY_VISIBLE, PairsWriter
from generator.skeleton import NUM_JOINTS, coco_to_h36m

log = logging.getLogger(__name__)

CAMERA_FILE_FORMAT = "posebridge-cameras"
# Human3.6M's 32 mocap joints -> h36m17 (the subset VideoPose3D keeps).
H36M32_TO_17 = np.array([0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27])
_CHUNK = 50_000


class NamedCamera(CameraModel):
    """One calibrated camera: CameraModel (K, image_size [w, h], world->camera R, t in mm) + a name."""

    name: str = ""


class CameraFile(BaseModel):
    """Cameras per subject, in the order of the subject's `positions_2d` lists."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["posebridge-cameras"] = CAMERA_FILE_FORMAT
    version: Literal[1] = 1
    positions_3d_unit: Literal["m", "mm"] = "m"  # the unit of positions_3d (VideoPose3D: metres)
    subjects: dict[str, list[NamedCamera]] = Field(min_length=1)


def load_camera_file(path: str | Path) -> CameraFile:
    path = Path(path)
    try:
        return CameraFile.model_validate(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the camera file ({e})") from e
    except ValidationError as e:
        raise ValueError(f"{path}: invalid camera file:\n{e}") from e


def _load_dict(path: Path, key: str) -> dict:
    try:
        with np.load(path, allow_pickle=True) as z:
            if key not in z.files:
                raise ValueError(f"{path}: no key {key!r} (has {', '.join(z.files)})")
            value = z[key].item() if z[key].dtype == object else None
            meta = z["metadata"].item() if "metadata" in z.files and z["metadata"].dtype == object else {}
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz ({e})") from e
    if not isinstance(value, dict):
        raise ValueError(f"{path}: key {key!r} must be a pickled dict subject -> action -> arrays")
    return {"data": value, "metadata": meta if isinstance(meta, dict) else {}}


def _joints_3d(a: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[1] not in (17, 32):
        raise ValueError(f"{where}: expected (T, 32 or 17, 3) positions, got shape {a.shape}")
    return a[:, H36M32_TO_17] if a.shape[1] == 32 else a


def _joints_2d(a: np.ndarray, layout: str, where: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != NUM_JOINTS or a.shape[2] < 2:
        raise ValueError(f"{where}: expected (T, 17, 2+) keypoints, got shape {a.shape}")
    a = a[..., :2]
    if layout == "coco":
        a = coco_to_h36m(a)[0]
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{where}: keypoints hold NaN or infinity")
    return a


@dataclasses.dataclass
class ImportSummary:
    out: Path
    n: int
    sequences: int
    skipped: list[str]


def import_videopose3d(
    data_3d: str | Path,
    data_2d: str | Path,
    cameras: str | Path,
    out: str | Path,
    subjects: list[str] | None = None,
) -> ImportSummary:
    """Write a pairs v1 file with every (subject, action, camera) found in both files.

    Subjects without cameras in the camera file are an error unless `subjects` leaves them out.
    When the 3D and 2D of a sequence differ in length (VideoPose3D's detections sometimes have a
    few extra frames), both are cut to the shorter one, as VideoPose3D does.
    """
    data_3d, data_2d = Path(data_3d), Path(data_2d)
    pos3d = _load_dict(data_3d, "positions_3d")["data"]
    loaded_2d = _load_dict(data_2d, "positions_2d")
    pos2d, layout = loaded_2d["data"], str(loaded_2d["metadata"].get("layout_name", "h36m"))
    if layout not in ("h36m", "coco"):
        raise ValueError(f"{data_2d}: metadata layout_name {layout!r} is not supported (h36m or coco)")
    cams = load_camera_file(cameras)
    unit = 1000.0 if cams.positions_3d_unit == "m" else 1.0

    wanted = sorted(set(pos3d) & set(pos2d)) if subjects is None else list(subjects)
    skipped = [f"{s} (only in {data_3d.name})" for s in sorted(set(pos3d) - set(pos2d))]
    skipped += [f"{s} (only in {data_2d.name})" for s in sorted(set(pos2d) - set(pos3d))]
    plan = []  # (subject, action, camera index, frames)
    for subject in wanted:
        if subject not in pos3d or subject not in pos2d:
            raise ValueError(f"subject {subject!r} is not in both {data_3d.name} and {data_2d.name}")
        if subject not in cams.subjects:
            raise ValueError(f"{cameras}: no cameras for subject {subject!r} (has {', '.join(sorted(cams.subjects))})")
        for action in sorted(pos3d[subject]):
            if action not in pos2d[subject]:
                skipped.append(f"{subject}/{action} (no 2D)")
                continue
            views = pos2d[subject][action]
            if len(views) != len(cams.subjects[subject]):
                raise ValueError(
                    f"{data_2d}: {subject}/{action} has {len(views)} camera views but {cameras} lists "
                    f"{len(cams.subjects[subject])} cameras for {subject}"
                )
            t3 = len(pos3d[subject][action])
            for c, view in enumerate(views):
                if len(view) != t3:
                    log.info("%s/%s camera %d: %d 2D frames vs %d 3D frames; using %d", subject, action, c, len(view), t3, min(t3, len(view)))
                plan.append((subject, action, c, min(t3, len(view))))
    n = sum(p[3] for p in plan)
    if n == 0:
        raise ValueError(f"{data_3d} + {data_2d}: no sequence with both 3D and 2D to import")

    strings = {k: [] for k in ("subject", "sequence", "action", "camera")}
    with PairsWriter(out, n) as writer:
        start = 0
        for subject, action, c, frames in track(plan, description="importing", transient=True, disable=len(plan) < 20):
            where = f"{subject}/{action} camera {c}"
            cam = cams.subjects[subject][c]
            K, size, R, t = cam.arrays()
            world = _joints_3d(pos3d[subject][action], f"{data_3d}: {where}")[:frames] * unit
            j2 = _joints_2d(pos2d[subject][action][c], layout, f"{data_2d}: {where}")[:frames]
            j3 = world_to_camera(world, R, t)
            vis = np.where(in_image(j2, size, j3[..., 2]), VISIBILITY_VISIBLE, VISIBILITY_OUTSIDE).astype(np.uint8)
            for s in range(0, frames, _CHUNK):
                sl = slice(s, s + _CHUNK)
                k = len(j2[sl])
                writer.write(start, {
                    "joints_2d": j2[sl].astype(np.float32),
                    "joints_3d": j3[sl].astype(np.float32),
                    "K": np.broadcast_to(K.astype(np.float32), (k, 3, 3)),
                    "image_size": np.broadcast_to(size, (k, 2)),
                    "visibility": vis[sl],
                })
                start += k
            name = cam.name or str(c)
            strings["subject"] += [subject] * frames
            strings["sequence"] += [f"{subject}/{action}"] * frames
            strings["action"] += [action.split(" ")[0]] * frames  # "Walking 1" -> "Walking"
            strings["camera"] += [name] * frames
        for key, values in strings.items():
            writer.set_strings(key, np.array(values))
    log.info("%s: %d pairs from %d sequences", out, n, len(plan))
    return ImportSummary(Path(out), n, len(plan), skipped)
