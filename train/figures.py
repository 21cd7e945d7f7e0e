"""Figures (matplotlib, Agg): training loss curves and lifted real photos (2D overlay beside 3D)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from generator.skeleton import BONES, joint_colour_rgb  # noqa: E402
from generator.store import atomic_write  # noqa: E402


def _bone_colour(child: int) -> tuple[float, float, float]:
    return tuple(c / 255 for c in joint_colour_rgb(child))


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format=out.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write(out, buf.getbuffer())
    return out


def draw_pose_3d(ax, rel: np.ndarray, title: str) -> None:
    """A root-relative pose (17, 3) mm in the camera frame on a 3D axis, seen from beside the camera."""
    # Plot axes: camera x (right), z (depth, away from the camera), -y (up).
    p = np.stack([rel[:, 0], rel[:, 2], -rel[:, 1]], axis=1)
    for child, parent in BONES:
        ax.plot(*p[[child, parent]].T, color=_bone_colour(child), lw=2)
    r = max(float(np.abs(p).max()), 400.0)
    ax.set_xlim(-r, r)
    ax.set_ylim(-r, r)
    ax.set_zlim(-r, r)
    ax.set_box_aspect((1, 1, 1))
    ax.view_init(elev=12, azim=-60)
    ax.set_xticklabels([])
    ax.set_yticklabels([])
    ax.set_zticklabels([])
    ax.set_title(title, fontsize=7)


_LIFTER_SERIES = (("loss", "total"), ("loss_3d", "3D"), ("loss_view", "right view"))


def _val_value(val: dict | None, key: str) -> float | None:
    """`val[key]`, or the first nested summary's (per-source validation dicts)."""
    if not val:
        return None
    if key in val:
        return val[key]
    first = next(iter(val.values()))
    return first.get(key) if isinstance(first, dict) else None


def plot_loss_curves(
    history: dict,
    out: str | Path,
    series: tuple[tuple[str, str], ...] = _LIFTER_SERIES,
    ylabel: str = "MSE (standardized)",
    val_key: str = "mpjpe_mm",
    val_label: str = "MPJPE (mm)",
    val_title: str = "validation (fast search)",
) -> Path:
    """Training losses (`series`: history key, legend) against steps (log scale) and, when
    present, the validation metric `val_key` per epoch."""
    steps = history["steps"]
    val = [(e["step"], v) for e in history["epochs"] if (v := _val_value(e.get("val"), val_key)) is not None]
    fig, axes = plt.subplots(1, 2 if val else 1, figsize=(11 if val else 6, 4), squeeze=False)
    ax = axes[0, 0]
    for key, label in series:
        y = np.asarray(steps.get(key, []), dtype=float)
        if y.size and np.isfinite(y).any():
            ax.plot(steps["step"], y, label=label)
    stage, start = None, 0
    for e in history["epochs"]:  # epoch boundaries, and the name of each training stage where it starts
        if e["stage"] != stage:
            stage = e["stage"]
            ax.annotate(stage.replace("_", " "), (start, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                        textcoords="offset points", fontsize=8, color="0.35")
        ax.axvline(e["step"], color="0.85", lw=0.8, zorder=0)
        start = e["step"]
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title("training loss")
    ax.legend()
    if val:
        ax = axes[0, 1]
        ax.plot(*zip(*val), marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel(val_label)
        ax.set_title(val_title)
    return _save(fig, out)


def _lifted_people(coco: dict, max_people: int) -> list[tuple[dict, dict]]:
    """(image, annotation) of lifted people, the largest first within each image, images in order."""
    images = {img["id"]: img for img in coco["images"]}
    lifted = [a for a in coco["annotations"] if a.get("keypoints_3d")]
    lifted.sort(key=lambda a: (list(images).index(a["image_id"]), -sum(a["keypoints_3d_valid"]), -float(a.get("area") or 0)))
    picked, per_image = [], {}
    for ann in lifted:  # spread over images before taking a second person from one
        if per_image.get(ann["image_id"], 0) == 0:
            picked.append(ann)
            per_image[ann["image_id"]] = 1
    picked += [a for a in lifted if a not in picked]
    return [(images[a["image_id"]], a) for a in picked[:max_people]]


def render_lifted_figure(labelled_json: str | Path | dict, image_dir: str | Path | None, out: str | Path, max_people: int = 6) -> Path:
    """Lifted real photos: each person's photo with the 2D skeleton drawn over it, beside the 3D
    skeleton (camera frame, seen from the side a little). Imputed joints are drawn as rings."""
    from PIL import Image

    from generator.camera import project_points

    coco = labelled_json if isinstance(labelled_json, dict) else json.loads(Path(labelled_json).read_text())
    people = _lifted_people(coco, max_people)
    if not people:
        raise ValueError("no lifted person to draw (every annotation was skipped)")
    cols = min(3, len(people))
    rows = -(-len(people) // cols)
    fig = plt.figure(figsize=(4.8 * cols, 2.7 * rows + 0.3))
    for i, (img, ann) in enumerate(people):
        joints = np.asarray(ann["keypoints_3d"], dtype=np.float64)
        valid = np.asarray(ann["keypoints_3d_valid"], dtype=bool)
        uv = project_points(joints[None], np.asarray(img["camera_K"]))[0]
        ax = fig.add_subplot(rows, 2 * cols, 2 * i + 1)
        path = Path(image_dir) / img.get("file_name", "") if image_dir else None
        if path is not None and path.is_file():
            ax.imshow(Image.open(path).convert("RGB"))
        else:  # keypoints without a photo (e.g. detections): a grey canvas
            ax.add_patch(plt.Rectangle((0, 0), img.get("width", 1e4), img.get("height", 1e4), color="0.9", zorder=0))
        for child, parent in BONES:
            ax.plot(uv[[child, parent], 0], uv[[child, parent], 1], color=_bone_colour(child), lw=2)
        ax.scatter(uv[valid, 0], uv[valid, 1], s=9, c="yellow", edgecolors="k", linewidths=0.4, zorder=3)
        ax.scatter(uv[~valid, 0], uv[~valid, 1], s=16, facecolors="none", edgecolors="deeppink", linewidths=1.0, zorder=3)
        lo, hi = uv.min(axis=0), uv.max(axis=0)
        pad = 0.25 * (hi - lo).max() + 10
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(hi[1] + pad, lo[1] - pad)
        ax.set_title(f"{img.get('file_name', img['id'])}", fontsize=7)
        ax.axis("off")

        ax3 = fig.add_subplot(rows, 2 * cols, 2 * i + 2, projection="3d")
        draw_pose_3d(ax3, joints - joints[:1], f"3D, root at {joints[0, 2] / 1000:.1f} m")
    fig.suptitle("lifted real photos: 2D keypoints (yellow; pink rings = imputed) and the 3D pose placed by the "
                 "geometric search; blue = left side, red = right side", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)
