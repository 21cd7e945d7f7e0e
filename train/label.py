"""3D labels for a real 2D dataset: lift every person of a COCO-keypoints file into the camera.

How the paper built its in-the-wild 3D labels: 2D keypoints (hand labels or detections) go through
the trained lifter and the geometric search, which places the 3D pose so that it reprojects onto
the 2D exactly. Output: the same COCO JSON with, per annotation,

- `keypoints_3d`: 17 [x, y, z] in h36m17 order, mm, OpenCV camera frame (null when skipped);
- `keypoints_3d_valid`: 17 flags, 1 where the joint's 2D was reliable, 0 where it was imputed;
- `keypoints_3d_status`: "lifted", or "skipped: <why>";

per image `camera_K` (the intrinsics used), and a top-level `keypoints_3d_info`.

Missing and low-confidence keypoints are handled explicitly. The third value of each COCO keypoint
is read as a confidence: COCO's visibility flags 1 and 2 (labelled) count as reliable and 0 as
missing; detector scores in (0, 1) are compared with `min_confidence`. Joints derived from several
COCO points (pelvis, thorax, spine, head) are reliable only when all of their points are. A person
is skipped unless the pelvis and at least `min_joints` of the 17 joints are reliable; the other
joints are imputed from the training data's mean pose, fitted (scale and shift) to the reliable
ones, and flagged 0. Nothing is silently NaN.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from generator.camera import intrinsics_matrix
from generator.skeleton import COCO_JOINT_NAMES, JOINT_NAMES, NUM_JOINTS, ROOT, SKELETON_NAME, coco_to_h36m
from generator.store import atomic_write

from .inference import Lifter
from .normalization import normalized_to_pixels, pixels_to_normalized
from .search import SEARCH_METHODS

log = logging.getLogger(__name__)

# Vendored real 2D data (generator/data/real/, DATA_LICENSES.md): COCO photos with hand labels,
# and a slice of AIST++ detections (no images).
REAL_DATA_DIR = Path(__file__).resolve().parents[1] / "generator" / "data" / "real"
COCO_FIXTURE = REAL_DATA_DIR / "coco" / "test_coco.json"
AISTPP_SLICE = REAL_DATA_DIR / "aistpp" / "aistpp_d04_ch01_slice.json"


class LabelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    focal_px: float | None = Field(None, gt=0)  # None: estimated from each image's size
    min_confidence: float = Field(0.3, ge=0, le=1)
    min_joints: int = Field(12, ge=1, le=NUM_JOINTS)
    search: str = "fast"


def estimate_intrinsics(width: float, height: float, focal_px: float | None = None) -> np.ndarray:
    """K with the principal point at the image centre and, unless given, f = the image diagonal.

    f = sqrt(W^2 + H^2) (a 53 degree diagonal field of view) is the usual guess for photos of
    unknown cameras (CLIFF, Li et al. 2022); it sits between a phone's main camera and a
    short telephoto.
    """
    f = float(np.hypot(width, height)) if focal_px is None else float(focal_px)
    return intrinsics_matrix(f, f, width / 2.0, height / 2.0)


def coco_keypoints(annotations: list[dict], source: str) -> tuple[np.ndarray, np.ndarray]:
    """COCO `keypoints` of each annotation -> xy (P, 17, 2) and confidence (P, 17), COCO order."""
    flat = np.zeros((len(annotations), len(COCO_JOINT_NAMES) * 3))
    for i, ann in enumerate(annotations):
        kp = ann.get("keypoints")
        if kp is None or len(kp) != flat.shape[1]:
            got = "none" if kp is None else f"{len(kp)} values"
            raise ValueError(f"{source}: annotation id {ann.get('id')!r}: 'keypoints' must hold 17 x [x, y, v] = 51 values, got {got}")
        flat[i] = kp
    if not np.all(np.isfinite(flat)):
        bad = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
        raise ValueError(f"{source}: annotation id {annotations[bad].get('id')!r}: 'keypoints' holds NaN or infinity")
    kp = flat.reshape(-1, 17, 3)
    return kp[..., :2], kp[..., 2]


def reliability(confidence: np.ndarray, min_confidence: float) -> np.ndarray:
    """Per-keypoint confidence in [0, 1]: visibility flags >= 1 count as 1, scores stay, 0 is missing."""
    conf = np.where(confidence >= 1.0, 1.0, confidence)
    return np.where(conf >= max(min_confidence, 1e-9), conf, 0.0)


def impute_from_mean(points: np.ndarray, reliable: np.ndarray, mean_pose: np.ndarray) -> np.ndarray:
    """Fill unreliable joints of points (P, 17, 2) with the mean pose (17, 2) fitted by scale + shift
    to the reliable ones (least squares, vectorized over people)."""
    w = reliable.astype(np.float64)[..., None]
    count = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    m_bar = (w * mean_pose).sum(axis=1, keepdims=True) / count
    x_bar = (w * points).sum(axis=1, keepdims=True) / count
    m_c, x_c = mean_pose - m_bar, points - x_bar
    scale = (w * m_c * x_c).sum(axis=(1, 2)) / np.maximum((w * m_c * m_c).sum(axis=(1, 2)), 1e-12)
    scale = np.maximum(scale, 1e-6)[:, None, None]
    fitted = scale * m_c + x_bar
    return np.where(reliable[..., None], points, fitted)


def lift_people(lifter: Lifter, joints_px: np.ndarray, reliable: np.ndarray, K: np.ndarray, options: LabelOptions) -> tuple[np.ndarray, list[str]]:
    """Lift h36m17 2D people (P, 17, 2) px with per-joint reliability (P, 17) under K (P, 3, 3):
    camera-frame 3D (P, 17, 3) mm (zeros where skipped) and a status per person ("lifted" or
    "skipped: <why>"). Unreliable joints are imputed from the lifter's mean pose first."""
    n_reliable = reliable.sum(axis=1)
    keep = reliable[:, ROOT] & (n_reliable >= options.min_joints)
    rows = np.flatnonzero(keep)
    joints_3d = np.zeros((len(joints_px), NUM_JOINTS, 3))
    if rows.size:
        rays = pixels_to_normalized(joints_px[rows], K[rows])
        filled = impute_from_mean(rays, reliable[rows], lifter.mean_pose_2d())
        pixels = normalized_to_pixels(filled, K[rows])
        joints_3d[rows] = lifter.lift(pixels, K[rows], search=options.search).joints
    status = [
        "lifted" if keep[i] else "skipped: " + ("pelvis (both hips) not reliable" if not reliable[i, ROOT] else f"{n_reliable[i]} of 17 joints reliable, need {options.min_joints}")
        for i in range(len(joints_px))
    ]
    return joints_3d, status


@dataclasses.dataclass
class LabelSummary:
    out: Path
    people: int
    lifted: int
    skipped: int
    images: int


def lift_coco(lifter: Lifter, coco: dict, options: LabelOptions, source: str = "coco") -> tuple[dict, LabelSummary]:
    """Add keypoints_3d to every annotation of a COCO dict (a new dict is returned)."""
    if options.search not in SEARCH_METHODS:
        raise ValueError(f"unknown search {options.search!r}; choose one of {', '.join(SEARCH_METHODS)}")
    for key in ("images", "annotations"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{source}: a COCO keypoints file needs a list under {key!r}")
    out = json.loads(json.dumps(coco))  # a deep copy that stays plain JSON
    images = {img.get("id"): img for img in out["images"]}
    anns = out["annotations"]
    K_of_image: dict = {}
    for img_id, img in images.items():
        if options.focal_px is None and not (img.get("width") and img.get("height")):
            raise ValueError(f"{source}: image id {img_id!r} has no width/height; give --focal-px to set K")
        w, h = float(img.get("width") or 0.0), float(img.get("height") or 0.0)
        K_of_image[img_id] = estimate_intrinsics(w, h, options.focal_px)
        img["camera_K"] = K_of_image[img_id].round(3).tolist()
    for ann in anns:
        if ann.get("image_id") not in images:
            raise ValueError(f"{source}: annotation id {ann.get('id')!r} refers to image_id {ann.get('image_id')!r}, which is not in 'images'")

    xy, conf = coco_keypoints(anns, source) if anns else (np.zeros((0, 17, 2)), np.zeros((0, 17)))
    joints_px, joint_conf = coco_to_h36m(xy, reliability(conf, options.min_confidence))
    reliable = joint_conf > 0
    K = np.stack([K_of_image[a["image_id"]] for a in anns]) if anns else np.zeros((0, 3, 3))
    joints_3d, status = lift_people(lifter, joints_px, reliable, K, options)
    keep = np.array([s == "lifted" for s in status], dtype=bool)
    for i, ann in enumerate(anns):
        ann["keypoints_3d"] = np.round(joints_3d[i], 1).tolist() if status[i] == "lifted" else None
        ann["keypoints_3d_valid"] = reliable[i].astype(int).tolist()
        ann["keypoints_3d_status"] = status[i]
    out["keypoints_3d_info"] = {
        "skeleton": SKELETON_NAME,
        "joint_names": list(JOINT_NAMES),
        "units": "mm",
        "frame": "camera (OpenCV: x right, y down, z forward); K per image in images[].camera_K",
        "model": lifter.kind,
        "checkpoint": lifter.source,
        "search": options.search,
        "focal_px": options.focal_px if options.focal_px is not None else "estimated: image diagonal",
        "min_confidence": options.min_confidence,
        "min_joints": options.min_joints,
    }
    summary = LabelSummary(Path(source), len(anns), int(keep.sum()), int((~keep).sum()), len(images))
    return out, summary


def label_coco(
    checkpoint: str | Path,
    coco_json: str | Path,
    out: str | Path,
    focal_px: float | None = None,
    min_confidence: float = 0.3,
    min_joints: int = 12,
    search: str = "fast",
) -> LabelSummary:
    """Read a COCO keypoints file, lift every person, write the labelled JSON to `out` (atomically)."""
    coco_json, out = Path(coco_json), Path(out)
    try:
        coco = json.loads(coco_json.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{coco_json}: cannot read COCO JSON ({e})") from e
    if not isinstance(coco, dict):
        raise ValueError(f"{coco_json}: a COCO keypoints file is a JSON object with 'images' and 'annotations'")
    options = LabelOptions(focal_px=focal_px, min_confidence=min_confidence, min_joints=min_joints, search=search)
    labelled, summary = lift_coco(Lifter.load(checkpoint), coco, options, source=str(coco_json))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(labelled).encode())
    summary.out = out
    log.info("%s: lifted %d of %d people -> %s", coco_json, summary.lifted, summary.people, out)
    return summary
