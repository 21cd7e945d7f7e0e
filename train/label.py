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
import itertools
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


class CocoFormatError(ValueError):
    """A COCO keypoints file `label` cannot read; the message names the file and the image or annotation id."""


# Plausibility bounds: image sides in pixels, and how far outside its image (in image sizes) a
# keypoint with a non-zero visibility or score may lie (detections run a little past the edges).
MAX_IMAGE_SIDE_PX = 1e6
KEYPOINT_MARGIN = 1.0
_NUMBER_TYPES = (int, float)


@dataclasses.dataclass
class CocoKeypoints:
    """A validated COCO keypoints file: its JSON, and per annotation the xy (P, 17, 2) and the third
    values (P, 17) in COCO order, and the intrinsics K (P, 3, 3) of its image."""

    data: dict
    xy: np.ndarray
    confidence: np.ndarray
    K: np.ndarray
    image_K: dict  # image id -> (3, 3)


def _ann_name(ann: dict, i: int) -> str:
    return f"annotation id {ann.get('id')!r}" if "id" in ann else f"annotation {i} (no id)"


def _positive_side(value, what: str) -> float:
    if type(value) not in _NUMBER_TYPES or not 0 < value <= MAX_IMAGE_SIDE_PX:
        raise CocoFormatError(f"{what} is {value!r}, not a number of pixels in (0, {MAX_IMAGE_SIDE_PX:g}]")
    return float(value)


def parse_coco(coco, source: str, focal_px: float | None = None) -> CocoKeypoints:
    """Check a parsed COCO keypoints JSON and take its keypoints out; every error names the file
    and the image or annotation id. Keypoints must be 17 x [x, y, v] finite numbers, v a
    visibility flag (0, 1, 2) or a score in [0, 1], and a point with v > 0 must lie within
    KEYPOINT_MARGIN image sizes of its image."""
    if not isinstance(coco, dict):
        raise CocoFormatError(f"{source}: a COCO keypoints file is a JSON object with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        if not isinstance(coco.get(key), list):
            raise CocoFormatError(f"{source}: a COCO keypoints file needs a list under {key!r}")
    images: dict = {}
    for i, img in enumerate(coco["images"]):
        if not isinstance(img, dict) or "id" not in img or not isinstance(img["id"], (int, str)) or isinstance(img["id"], bool):
            raise CocoFormatError(f"{source}: images[{i}] must be an object with an integer or string 'id'")
        img_id = img["id"]
        if img_id in images:
            raise CocoFormatError(f"{source}: image id {img_id!r} appears twice in 'images'")
        images[img_id] = img
    sizes = {}
    for img_id, img in images.items():
        has_size = img.get("width") is not None or img.get("height") is not None
        if not has_size:
            if focal_px is None:
                raise CocoFormatError(f"{source}: image id {img_id!r} has no width/height; give --focal-px to set K")
            sizes[img_id] = (0.0, 0.0)
            continue
        where = f"{source}: image id {img_id!r}:"
        sizes[img_id] = (_positive_side(img.get("width"), f"{where} 'width'"), _positive_side(img.get("height"), f"{where} 'height'"))
    anns = coco["annotations"]
    n_values = len(COCO_JOINT_NAMES) * 3
    for i, ann in enumerate(anns):
        if not isinstance(ann, dict):
            raise CocoFormatError(f"{source}: annotations[{i}] is a {type(ann).__name__}, not an object")
        image_id = ann.get("image_id")
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool) or image_id not in images:
            raise CocoFormatError(f"{source}: {_ann_name(ann, i)} refers to image_id {image_id!r}, which is not in 'images'")
        kp = ann.get("keypoints")
        if not isinstance(kp, list) or len(kp) != n_values:
            got = "none" if kp is None else f"{len(kp)} values" if isinstance(kp, list) else f"a {type(kp).__name__}"
            raise CocoFormatError(f"{source}: {_ann_name(ann, i)}: 'keypoints' must hold 17 x [x, y, v] = {n_values} values, got {got}")
    kps = [ann["keypoints"] for ann in anns]
    try:
        numbers = set(map(type, itertools.chain.from_iterable(kps))) <= set(_NUMBER_TYPES)  # no string, bool, null, list
        flat = np.asarray(kps, dtype=np.float64).reshape(len(anns), n_values) if numbers else None
    except OverflowError:  # an integer beyond float64
        flat = None
    if flat is None:
        for i, kp in enumerate(kps):  # slow path, only on error: find the culprit
            for j, v in enumerate(kp):
                if type(v) not in _NUMBER_TYPES or abs(v) > 1e308:
                    raise CocoFormatError(
                        f"{source}: {_ann_name(anns[i], i)}: keypoints[{j}] ({COCO_JOINT_NAMES[j // 3]} {'xyv'[j % 3]}) is {v!r:.40}, not a number"
                    )
    kp = flat.reshape(-1, len(COCO_JOINT_NAMES), 3)
    xy, conf = kp[..., :2], kp[..., 2]
    size = np.array([sizes[ann["image_id"]] for ann in anns], dtype=np.float64).reshape(-1, 1, 2)
    shown = conf > 0
    margin = KEYPOINT_MARGIN * size
    outside = shown[..., None] & (size > 0) & ((xy < -margin) | (xy > size + margin))
    bad = ~np.isfinite(kp) | (conf < 0)[..., None] | (conf > 2)[..., None] | np.concatenate([outside, np.zeros_like(outside[..., :1])], axis=-1)
    if bad.any():
        i, j, c = (int(x[0]) for x in np.nonzero(bad))
        value, name = kp[i, j, c], f"keypoints[{3 * j + c}] ({COCO_JOINT_NAMES[j]} {'xyv'[c]})"
        if not np.isfinite(value):
            why = "is not finite"
        elif c == 2:
            why = "must be a visibility flag 0, 1, 2 or a score in [0, 1]"
        else:
            w, h = sizes[anns[i]["image_id"]]
            why = f"lies more than {KEYPOINT_MARGIN:g} image sizes outside its {w:g}x{h:g} image"
        raise CocoFormatError(f"{source}: {_ann_name(anns[i], i)}: {name} is {value!r}: {why}")
    K_of_image = {img_id: estimate_intrinsics(w, h, focal_px) for img_id, (w, h) in sizes.items()}
    K = np.stack([K_of_image[a["image_id"]] for a in anns]) if anns else np.zeros((0, 3, 3))
    return CocoKeypoints(coco, xy, conf, K, K_of_image)


def read_coco(path: str | Path, focal_px: float | None = None) -> CocoKeypoints:
    """Read and check a COCO keypoints JSON file (see `parse_coco`); it is never written to."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CocoFormatError(f"{path}: cannot read COCO JSON: {e.strerror or e}") from None
    try:
        coco = json.loads(raw)
    except UnicodeDecodeError as e:
        raise CocoFormatError(f"{path}: not UTF-8 text: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise CocoFormatError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:  # an integer of over 4300 digits, nesting too deep
        raise CocoFormatError(f"{path}: not readable JSON: {e}") from None
    return parse_coco(coco, str(path), focal_px)


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


def lift_coco(lifter: Lifter, coco: dict | CocoKeypoints, options: LabelOptions, source: str = "coco") -> tuple[dict, LabelSummary]:
    """Add keypoints_3d to every annotation of a COCO dict (a new dict is returned)."""
    if options.search not in SEARCH_METHODS:
        raise ValueError(f"unknown search {options.search!r}; choose one of {', '.join(SEARCH_METHODS)}")
    parsed = coco if isinstance(coco, CocoKeypoints) else parse_coco(coco, source, options.focal_px)
    out = json.loads(json.dumps(parsed.data))  # a deep copy that stays plain JSON
    images = {img["id"]: img for img in out["images"]}
    anns = out["annotations"]
    K = parsed.K
    for img_id, img in images.items():
        img["camera_K"] = parsed.image_K[img_id].round(3).tolist()

    joints_px, joint_conf = coco_to_h36m(parsed.xy, reliability(parsed.confidence, options.min_confidence))
    reliable = joint_conf > 0
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
    options = LabelOptions(focal_px=focal_px, min_confidence=min_confidence, min_joints=min_joints, search=search)
    coco = read_coco(coco_json, options.focal_px)  # bad input is reported before the model is loaded
    labelled, summary = lift_coco(Lifter.load(checkpoint), coco, options, source=str(coco_json))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, json.dumps(labelled).encode())
    summary.out = out
    log.info("%s: lifted %d of %d people -> %s", coco_json, summary.lifted, summary.people, out)
    return summary
