"""The prediction figure: a photo with each person's predicted 2D skeleton, beside their 3D."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from generator.skeleton import BONES

from ..figures import _bone_colour, _save, draw_pose_3d, plt


def render_prediction_figure(image, people: list, out: str | Path, title: str | None = None) -> Path:
    """`image` (a path or an (H, W, 3) array) with every person's 2D (dots shaded by confidence)
    and, per person, the root-relative 3D seen a little from the side (blue left, red right)."""
    from PIL import Image

    pixels = np.asarray(Image.open(image).convert("RGB")) if isinstance(image, (str, Path)) else np.asarray(image)
    n = max(1, len(people))
    fig = plt.figure(figsize=(4.2 + 2.6 * n, 3.6))
    grid = fig.add_gridspec(1, 1 + n, width_ratios=[1.6] + [1.0] * n)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(pixels)
    for k, p in enumerate(people):
        uv = p.joints_2d
        for child, parent in BONES:
            ax.plot(uv[[child, parent], 0], uv[[child, parent], 1], color=_bone_colour(child), lw=1.6)
        ax.scatter(uv[:, 0], uv[:, 1], s=8, c=np.clip(p.confidence, 0, 1), cmap="YlOrBr_r", vmin=0, vmax=1, edgecolors="k", linewidths=0.3, zorder=3)
        x0, y0, x1, y1 = p.box
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="white", lw=0.6, ls="--"))
        ax.text(x0, y0, str(k + 1), color="white", fontsize=7, va="bottom")
    ax.set_xlim(0, pixels.shape[1])
    ax.set_ylim(pixels.shape[0], 0)
    ax.axis("off")
    ax.set_title(title or (Path(image).name if isinstance(image, (str, Path)) else "prediction"), fontsize=8)
    for k, p in enumerate(people):
        depth = "" if p.joints_3d_camera is None else f", root at {p.joints_3d_camera[0, 2] / 1000:.1f} m"
        draw_pose_3d(fig.add_subplot(grid[0, 1 + k], projection="3d"), p.joints_3d_relative, f"person {k + 1}: 3D{depth}")
    fig.tight_layout()
    return _save(fig, out)
