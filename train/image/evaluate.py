"""Evaluate the image network on a source: PCK@0.2 on real photos, MPJPE where 3D exists.

Each person is cropped deterministically around their labelled box (the usual single-person
protocol: the evaluation knows where the person is, not their pose). Predictions go back to image
pixels through the crop's affine.

- 2D: PCK@0.2, the fraction of joints within 0.2 x the torso diameter of the label, the torso
  being the distance from the left shoulder to the right hip (the LSP protocol; the right shoulder
  to the left hip when one of those is missing, and the person is left out of PCK when both are),
  per joint over the people that have that joint, and `pck_02` the mean over the joints the
  dataset has.
- 3D (people with all 17 root-relative joints, e.g. renders): MPJPE (root-aligned) and P-MPJPE
  (Procrustes) of the network's root-relative pose (train/metrics.py), and where K is known the
  absolute MPJPE after the geometric search places the pose on the rays of the predicted 2D.
- `symmetry_pct`: how much the predicted left and right limbs differ in length (%), a 3D
  consistency figure for photos without 3D ground truth.
- The same figures for the training data's mean pose (`baseline_mean_pose`), the trivial predictor.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from rich.progress import track
from torch.utils.data import DataLoader

from generator.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

from .. import metrics as M
from ..search import geometric_search
from .dataset import MM_PER_UNIT, CropDataset
from .model import ImagePoseNet, channels_last
from .records import ImageSource

PCK_FRACTION = 0.2
TORSO_PAIRS = ((JOINT_INDEX["LShoulder"], JOINT_INDEX["RHip"]), (JOINT_INDEX["RShoulder"], JOINT_INDEX["LHip"]))


@dataclasses.dataclass
class Predictions:
    joints_2d: np.ndarray  # (N, 17, 2) image pixels
    joints_3d: np.ndarray  # (N, 17, 3) root-relative, camera axes, mm
    mean_2d: np.ndarray  # (N, 17, 2) the mean pose in each person's crop, image pixels
    mean_3d: np.ndarray  # (17, 3) mm


def crop_to_image(norm: np.ndarray, to_image: np.ndarray, size: int) -> np.ndarray:
    """[-1, 1] crop coordinates (N, 17, 2) -> image pixels through (N, 2, 3) affines."""
    crop = (norm + 1.0) / 2.0 * size
    return np.einsum("nij,nkj->nki", to_image[..., :2], crop) + to_image[:, None, :, 2]


@torch.no_grad()
def predict_source(model: ImagePoseNet, source: ImageSource, pad: float, limit: int | None = None, batch: int = 64,
                   workers: int = 0, progress: bool = False) -> Predictions:  # fmt: skip
    """The network's predictions for the first `limit` people of `source` (eval crops)."""
    model.eval()
    device = next(model.parameters()).device
    size = model.cfg.input_size
    n = len(source) if limit is None else min(limit, len(source))
    data = CropDataset([source], size, None, pad=pad)
    loader = DataLoader(torch.utils.data.Subset(data, range(n)), batch_size=batch, num_workers=workers)
    out2, out3, to_img = [], [], []
    for b in track(loader, description="predicting", transient=True, disable=not progress):
        images = b["image"].to(device)
        if channels_last(model):
            images = images.contiguous(memory_format=torch.channels_last)
        o = model(images)
        out2.append(o["joints_2d"].double().cpu().numpy())
        out3.append(o["joints_3d"].double().cpu().numpy())
        to_img.append(b["to_image"].double().numpy())
    norm, to_image = np.concatenate(out2), np.concatenate(to_img)
    mean = np.broadcast_to(model.mean_2d.double().cpu().numpy(), norm.shape)
    return Predictions(
        joints_2d=crop_to_image(norm, to_image, size),
        joints_3d=np.concatenate(out3) * MM_PER_UNIT,
        mean_2d=crop_to_image(mean, to_image, size),
        mean_3d=model.mean_3d.double().cpu().numpy() * MM_PER_UNIT,
    )


def torso_diameter(joints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N,) torso diameters (LShoulder-RHip, else RShoulder-LHip), NaN where neither pair is labelled."""
    out = np.full(len(joints), np.nan)
    for a, b in reversed(TORSO_PAIRS):  # the first pair wins where both exist
        ok = valid[:, a] & valid[:, b]
        out[ok] = np.linalg.norm(joints[ok, a] - joints[ok, b], axis=-1)
    out[out <= 0] = np.nan
    return out


def pck(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, fraction: float = PCK_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint PCK (17,) (NaN for a joint no person has) and the per-joint counts (17,)."""
    torso = torso_diameter(gt, valid)
    use = valid & np.isfinite(torso)[:, None]
    hit = (np.linalg.norm(pred - gt, axis=-1) <= fraction * np.nan_to_num(torso)[:, None]) & use
    n = use.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, hit.sum(axis=0) / np.maximum(n, 1), np.nan), n


@dataclasses.dataclass
class ImageEvaluation:
    summary: dict
    per_joint: list[dict]
    source: str

    def to_json(self) -> dict:
        return {**self.summary, "source": self.source, "per_joint": self.per_joint}

    def markdown(self) -> str:
        s, b = self.summary, self.summary["baseline_mean_pose"]
        fmt = lambda v, f: "–" if v is None else format(v, f)  # noqa: E731
        lines = [f"{self.source}: {s['n']} people", "", "| metric | network | mean pose |", "| --- | ---: | ---: |",
                 f"| PCK@0.2 (torso) | {fmt(s['pck_02'], '.3f')} | {fmt(b['pck_02'], '.3f')} |"]  # fmt: skip
        if s.get("mpjpe_mm") is not None:
            lines += [f"| MPJPE (mm) | {s['mpjpe_mm']:.1f} | {b['mpjpe_mm']:.1f} |", f"| P-MPJPE (mm) | {s['p_mpjpe_mm']:.1f} | {b['p_mpjpe_mm']:.1f} |"]
            if s.get("abs_mpjpe_mm") is not None:
                lines.append(f"| absolute MPJPE, placed by the search (mm) | {s['abs_mpjpe_mm']:.1f} | – |")
        lines += ["", "| joint | PCK@0.2 | n | MPJPE (mm) |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r['joint']} | {fmt(r['pck_02'], '.3f')} | {r['n']} | {fmt(r.get('mpjpe_mm'), '.1f')} |" for r in self.per_joint]
        return "\n".join(lines)


def bone_asymmetry(joints_3d: np.ndarray) -> np.ndarray:
    """(N,) mean relative difference (%) between the left and right thigh, shin, upper arm, forearm,
    hip and shoulder of 3D poses: 0 for a body, whatever its size; a 3D consistency figure that
    needs no 3D ground truth (real photos)."""
    pairs = np.array([(JOINT_INDEX[a], JOINT_INDEX[b]) for a, b in (("LKnee", "RKnee"), ("LFoot", "RFoot"), ("LElbow", "RElbow"),
                                                                    ("LWrist", "RWrist"), ("LHip", "RHip"), ("LShoulder", "RShoulder"))])  # fmt: skip
    parents = PARENTS[pairs]
    lengths = np.linalg.norm(joints_3d[:, pairs] - joints_3d[:, parents], axis=-1)  # (N, 6, 2)
    return 100 * (np.abs(lengths[..., 0] - lengths[..., 1]) / np.maximum(lengths.mean(axis=-1), 1e-9)).mean(axis=1)


def evaluate_predictions(pred: Predictions, source: ImageSource, n: int) -> ImageEvaluation:
    """Metrics of predictions for the first n people of `source`."""
    r = source.records
    gt2, v2 = r.joints_2d[:n].astype(np.float64), r.valid_2d[:n].copy()
    v2[:, source.lacks] = False
    per_joint_pck, counts = pck(pred.joints_2d, gt2, v2)
    base_pck, _ = pck(pred.mean_2d, gt2, v2)
    has = counts > 0
    summary: dict = {
        "pck_02": float(np.mean(per_joint_pck[has])) if has.any() else None,
        "n": int(n),
        "n_pck": int(np.isfinite(torso_diameter(gt2, v2)).sum()),
        "joints_evaluated": int(has.sum()),
        "baseline_mean_pose": {"pck_02": float(np.mean(base_pck[has])) if has.any() else None},
    }
    summary["symmetry_pct"] = float(bone_asymmetry(pred.joints_3d).mean())
    full3d = r.root_relative_valid()[:n].all(axis=1)
    per_joint_3d = np.full(NUM_JOINTS, np.nan)
    if full3d.any():
        gt3 = r.root_relative_3d()[:n][full3d].astype(np.float64)
        p3 = pred.joints_3d[full3d]
        e1 = M.errors_root_aligned(p3, gt3)
        per_joint_3d = e1.mean(axis=0)
        mean3 = np.broadcast_to(pred.mean_3d, gt3.shape)
        summary.update(mpjpe_mm=float(e1.mean()), p_mpjpe_mm=float(M.errors_procrustes(p3, gt3).mean()), n_3d=int(full3d.sum()))
        summary["baseline_mean_pose"].update(mpjpe_mm=float(M.errors_root_aligned(mean3, gt3).mean()),
                                             p_mpjpe_mm=float(M.errors_procrustes(mean3, gt3).mean()))  # fmt: skip
        if r.K is not None:
            placed = geometric_search(p3, pred.joints_2d[full3d], r.K[:n][full3d].astype(np.float64), method="fast").joints
            summary["abs_mpjpe_mm"] = float(M.errors_absolute(placed, r.joints_3d[:n][full3d].astype(np.float64)).mean())
    else:
        summary.update(mpjpe_mm=None, p_mpjpe_mm=None, n_3d=0)
    per_joint = [
        {"joint": JOINT_NAMES[j], "pck_02": None if not has[j] else float(per_joint_pck[j]), "n": int(counts[j]),
         "mpjpe_mm": None if np.isnan(per_joint_3d[j]) else float(per_joint_3d[j])}
        for j in range(NUM_JOINTS)
    ]  # fmt: skip
    return ImageEvaluation(summary, per_joint, source.describe())


def evaluate_image_source(model: ImagePoseNet, source: ImageSource, pad: float, limit: int | None = None, workers: int = 0, progress: bool = False) -> ImageEvaluation:
    if len(source) == 0:
        raise ValueError(f"{source.describe()}: nobody to evaluate")
    n = len(source) if limit is None else min(limit, len(source))
    return evaluate_predictions(predict_source(model, source, pad, n, workers=workers, progress=progress), source, n)
