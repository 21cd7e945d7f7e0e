"""COCO keypoint JSON as an image source: hand-labelled 2D, and 3D where `posebridge label` added it.

2D: COCO-17 mapped with `joints.COCO_IMAGE_TO_H36M` (no Neck/Nose, no Head). A keypoint counts
when its third value is a visibility flag 1 or 2, or a detector score of at least
`min_confidence`. Pseudo-3D labels (`keypoints_3d`, camera mm, with `keypoints_3d_valid` and the
image's `camera_K`) count where `keypoints_3d_valid` is 1, i.e. never for an imputed joint.
Crowd annotations and people with fewer than `min_joints` labelled h36m17 joints are left out.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from generator.skeleton import NUM_JOINTS

from ..label import parse_coco, read_coco, reliability
from .joints import COCO_IMAGE_TO_H36M, lacking, map_to_h36m
from .records import PhotoSource, PoseRecords, checked_array, keypoint_boxes

log = logging.getLogger(__name__)


def _array(value, shape: tuple[int, ...], where: str, key: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key!r} is not a numeric array") from None
    return checked_array(a, shape, where, key)


class CocoSource(PhotoSource):
    kind = "coco"

    def __init__(self, path: str | Path, images: str | Path | None = None, min_joints: int = 4, min_confidence: float = 0.3, coco: dict | None = None):
        path = Path(path)
        # The lifter's strict reader (every error names the file and the annotation id); its K is
        # not used here: the image network takes camera_K where a file has it.
        parsed = read_coco(path, focal_px=1.0) if coco is None else parse_coco(coco, str(path), focal_px=1.0)
        coco = parsed.data
        image_dir = Path(images) if images is not None else path.parent
        by_id = {}
        for i, img in enumerate(coco["images"]):
            if not isinstance(img, dict) or "id" not in img or not isinstance(img.get("file_name"), str):
                raise ValueError(f"{path}: images[{i}] needs an 'id' and a 'file_name'")
            by_id[img["id"]] = img
        crowd = np.array([bool(a.get("iscrowd")) for a in coco["annotations"]], dtype=bool)
        anns = [a for a, c in zip(coco["annotations"], crowd) if not c]
        xy, conf = parsed.xy[~crowd], parsed.confidence[~crowd]
        labelled = reliability(conf, min_confidence) > 0
        joints, valid = map_to_h36m(xy, labelled, COCO_IMAGE_TO_H36M)
        joints_3d = np.zeros((len(anns), NUM_JOINTS, 3))
        valid_3d = np.zeros((len(anns), NUM_JOINTS), bool)
        K = np.zeros((len(anns), 3, 3))
        has_K = np.zeros(len(anns), bool)
        for i, a in enumerate(anns):
            if a.get("keypoints_3d") is not None:
                where = f"{path}: annotation id {a.get('id')!r}"
                joints_3d[i] = _array(a["keypoints_3d"], (NUM_JOINTS, 3), where, "keypoints_3d")
                flags = _array(a.get("keypoints_3d_valid"), (NUM_JOINTS,), where, "keypoints_3d_valid")
                if not np.all(np.isin(flags, (0, 1))):
                    raise ValueError(f"{where}: 'keypoints_3d_valid' must hold 0 or 1")
                valid_3d[i] = (flags == 1) & valid[i]
            img = by_id[a["image_id"]]
            if img.get("camera_K") is not None:
                K[i] = _array(img["camera_K"], (3, 3), f"{path}: image id {img['id']!r}", "camera_K")
                has_K[i] = True
        keep = valid.sum(axis=1) >= min_joints
        if not keep.all():
            log.info("%s: %d of %d people have fewer than %d labelled joints and are left out", path, int((~keep).sum()), len(anns), min_joints)
        records = PoseRecords(
            joints_2d=joints.astype(np.float32),
            valid_2d=valid,
            box=keypoint_boxes(xy, labelled),  # all labelled COCO points, the face included
            joints_3d=joints_3d.astype(np.float32),
            valid_3d=valid_3d,
            K=K.astype(np.float32) if has_K.all() and len(anns) else None,
        ).take(np.flatnonzero(keep))
        files = [image_dir / by_id[a["image_id"]]["file_name"] for a, k in zip(anns, keep) if k]
        super().__init__(path, records, files, lacks=lacking(COCO_IMAGE_TO_H36M))
        self.has_pseudo_3d = bool(valid_3d.any())
