"""`ImagePoseEstimator`: a trained image network at inference, on any photo.

Per person (a box given, e.g. a COCO `bbox`, or else the whole image): the crop goes through the
network, the 2D comes back to image pixels and the 3D stays root-relative (camera axes, mm). When
K is known (given, or estimated from the image size as `posebridge label` does: f = the image
diagonal, principal point at the centre) the geometric search (train/search.py, `fast`) places
the pose in the camera so that it reprojects exactly onto the predicted 2D.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from generator.skeleton import JOINT_NAMES, SKELETON_NAME
from generator.store import atomic_write

from ..label import estimate_intrinsics
from ..search import geometric_search
from .augment import crop_matrix, eval_crop, invert_affine, warp
from .checkpoint import load_image_checkpoint
from .config import ImageTrainConfig
from .dataset import MM_PER_UNIT
from .evaluate import crop_to_image
from .model import ImagePoseNet, channels_last
from .records import decode_reduced
from .trainer import build_model


@dataclasses.dataclass
class PersonPose:
    box: np.ndarray  # (4,) [x0, y0, x1, y1] the crop was made around, pixels
    joints_2d: np.ndarray  # (17, 2) image pixels
    confidence: np.ndarray  # (17,) heatmap mass within 2 heatmap cells of the soft-argmax (0-1)
    joints_3d_relative: np.ndarray  # (17, 3) root-relative, camera axes, mm
    joints_3d_camera: np.ndarray | None  # (17, 3) placed in the camera, mm (None without K)
    K: np.ndarray | None

    def to_json(self) -> dict:
        r = lambda a, d=2: None if a is None else np.round(a, d).tolist()  # noqa: E731
        return {"box": r(self.box), "keypoints_2d": r(self.joints_2d), "confidence": r(self.confidence, 3),
                "keypoints_3d_relative": r(self.joints_3d_relative, 1), "keypoints_3d_camera": r(self.joints_3d_camera, 1),
                "camera_K": r(self.K, 3)}  # fmt: skip


class ImagePoseEstimator:
    """A loaded image network in eval mode: `ImagePoseEstimator.load(run_dir)`, then `predict`."""

    def __init__(self, model: ImagePoseNet, config: ImageTrainConfig, source: str = ""):
        self.model = model.eval()
        self.config = config
        self.source = source
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "ImagePoseEstimator":
        ckpt = load_image_checkpoint(path, map_location=device)
        cfg = ckpt.config.model_copy(update={"device": device})
        model = build_model(cfg, torch.device(device), seeded=False)
        model.load_state_dict(ckpt.model_state)
        return cls(model, cfg, str(ckpt.path))

    @property
    def size(self) -> int:
        return self.config.net.input_size

    @torch.no_grad()
    def predict(self, image, boxes: np.ndarray | None = None, K: np.ndarray | None = None, focal_px: float | None = None,
                estimate_K: bool = True) -> list[PersonPose]:  # fmt: skip
        """People in one image (a path, a PIL image or an (H, W, 3) uint8 array). `boxes` (P, 4)
        [x0, y0, x1, y1] pick the people (default: one person, the whole image); K (3, 3) places
        them, or, with `estimate_K`, K from the image size (and `focal_px` when given)."""
        from PIL import Image

        if isinstance(image, (str, Path)):
            im, _ = decode_reduced(Path(image), 1, str(image))
        else:
            im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
        w, h = im.size
        boxes = np.array([[0.0, 0.0, w, h]]) if boxes is None or len(boxes) == 0 else np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        pad = [1.0 if np.allclose(b, [0, 0, w, h]) else self.config.augment.pad for b in boxes]  # a whole image is not padded
        crops, to_image = [], []
        for b, p in zip(boxes, pad):
            t = invert_affine(crop_matrix(eval_crop(b, p), self.size))
            crops.append(warp(im, t, self.size))
            to_image.append(t)
        images = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).to(self.device)
        if channels_last(self.model):
            images = images.contiguous(memory_format=torch.channels_last)
        out = self.model(images)
        to_image = np.stack(to_image)
        joints_2d = crop_to_image(out["joints_2d"].double().cpu().numpy(), to_image, self.size)
        rel = out["joints_3d"].double().cpu().numpy() * MM_PER_UNIT
        conf = _confidence(out["heatmaps"], out["joints_2d"]).cpu().numpy()
        if K is None and estimate_K:
            K = estimate_intrinsics(w, h, focal_px)
        placed = None if K is None else geometric_search(rel, joints_2d, np.broadcast_to(K, (len(rel), 3, 3)), method="fast").joints
        return [PersonPose(boxes[i], joints_2d[i], conf[i], rel[i], None if placed is None else placed[i], None if K is None else np.asarray(K))
                for i in range(len(boxes))]  # fmt: skip


def _confidence(heatmaps: torch.Tensor, joints_2d: torch.Tensor, radius_cells: float = 2.0) -> torch.Tensor:
    """(B, 17) heatmap probability within `radius_cells` heatmap cells of each soft-argmax position."""
    b, j, h, w = heatmaps.shape
    xs = ((torch.arange(w, dtype=heatmaps.dtype) + 0.5) / w * 2 - 1).view(1, 1, 1, w)
    ys = ((torch.arange(h, dtype=heatmaps.dtype) + 0.5) / h * 2 - 1).view(1, 1, h, 1)
    dx = (xs - joints_2d[..., 0, None, None]) * w / 2
    dy = (ys - joints_2d[..., 1, None, None]) * h / 2
    near = (dx**2 + dy**2) <= radius_cells**2
    return (heatmaps * near).sum(dim=(2, 3))


def people_boxes_from_coco(coco_json: Path) -> dict[str, np.ndarray]:
    """{file_name: (P, 4) [x0, y0, x1, y1]} from the `bbox` of every non-crowd annotation of a COCO file."""
    from ..label import read_coco

    coco = read_coco(coco_json, focal_px=1.0).data
    names = {img.get("id"): img.get("file_name") for img in coco["images"]}
    out: dict[str, list] = {}
    for a in coco["annotations"]:
        if a.get("iscrowd") or a.get("bbox") is None:
            continue
        bb = np.asarray(a["bbox"], dtype=np.float64)
        if bb.shape != (4,) or not np.isfinite(bb).all() or bb[2] <= 0 or bb[3] <= 0:
            raise ValueError(f"{coco_json}: annotation id {a.get('id')!r}: 'bbox' must be [x, y, width, height] with a positive size")
        out.setdefault(names.get(a.get("image_id")), []).append([bb[0], bb[1], bb[0] + bb[2], bb[1] + bb[3]])
    return {k: np.asarray(v) for k, v in out.items() if k}


@dataclasses.dataclass
class PredictSummary:
    out: Path
    images: int
    people: int
    figures: list[Path]


def predict_images(checkpoint: str | Path, images: list[Path], out: str | Path, coco: Path | None = None, focal_px: float | None = None,
                   device: str = "cpu", figures: bool = True, max_people: int = 4) -> PredictSummary:  # fmt: skip
    """Predict every image, write `out/predictions.json` and a figure per image (`out/<stem>_pose.png`)."""
    from .figures import render_prediction_figure

    estimator = ImagePoseEstimator.load(checkpoint, device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    boxes = people_boxes_from_coco(coco) if coco else {}
    results, written = [], []
    for path in images:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such image")
        people = estimator.predict(path, boxes.get(path.name), focal_px=focal_px)
        results.append({"image": str(path), "people": [p.to_json() for p in people]})
        if figures:
            written.append(render_prediction_figure(path, people[:max_people], out / f"{path.stem}_pose.png"))
    payload = {"skeleton": SKELETON_NAME, "joint_names": list(JOINT_NAMES), "units": "pixels (2D), mm (3D, OpenCV camera axes)",
               "checkpoint": estimator.source, "images": results}  # fmt: skip
    atomic_write(out / "predictions.json", json.dumps(payload, indent=1).encode())
    return PredictSummary(out, len(images), sum(len(r["people"]) for r in results), written)
