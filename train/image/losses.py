"""Losses of the image network, each masked per joint: a joint a sample does not have (a dataset
lacks it, it is unlabelled, or it left the crop) adds nothing, and nothing is invented for it.

- 2D: L1 between the soft-argmax position and the label, in crop coordinates [-1, 1], on every
  sample (Sun et al. 2018 found L1 best for integral regression).
- Heatmap shape: cross-entropy between each valid joint's softmax heatmap and a Gaussian of
  `heatmap_sigma` heatmap cells at its label. The soft-argmax alone gives the heatmap logits tiny
  gradients while the heatmap is still flat (each is p_k (x_k - x)), so a network trained from
  scratch learns slowly; a distribution target (Nibali et al. 2018's DSNT regularizer, here the
  cross-entropy, whose gradient is simply p - t) fixes that and keeps the mass in one blob.
- 3D: L1 of the root-relative joints in metres, where the sample has 3D (renders, pseudo-3D labels).
- Bone-length ratios (optional, Zhou et al. 2017's geometric constraint, for samples without 3D):
  within each group of bones that are the same size in the reference body up to a common factor
  (the two thighs, the two shins, ...), the ratio of each predicted length to its reference length
  should be the same; the loss is the variance of those ratios within each group.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

from generator.skeleton import H36M_BONE_LENGTHS_MM, JOINT_INDEX, PARENTS

from .dataset import MM_PER_UNIT


class LossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_2d: float = Field(1.0, ge=0)
    weight_3d: float = Field(1.0, ge=0)
    weight_heatmap: float = Field(0.05, ge=0)  # the heatmap cross-entropy (0 turns it off)
    heatmap_sigma: float = Field(1.0, gt=0)  # its Gaussian target's std, in heatmap cells
    weight_bone: float = Field(0.0, ge=0)  # 0 turns the bone-length-ratio loss off


# Bones (by child joint) whose lengths keep a fixed ratio: left and right twins (Zhou et al.'s groups).
BONE_GROUPS: tuple[tuple[str, ...], ...] = (
    ("RKnee", "LKnee"),  # thighs
    ("RFoot", "LFoot"),  # shins
    ("RElbow", "LElbow"),  # upper arms
    ("RWrist", "LWrist"),  # forearms
    ("RHip", "LHip"),  # pelvis to hips
    ("RShoulder", "LShoulder"),  # thorax to shoulders
)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the valid joints (valid (B, J) of 0/1); 0 when none is valid."""
    err = (pred - target).abs().sum(dim=-1) * valid
    return err.sum() / (valid.sum() * pred.shape[-1]).clamp(min=1.0)


def heatmap_loss(heatmaps: torch.Tensor, joints_2d: torch.Tensor, valid: torch.Tensor, sigma: float) -> torch.Tensor:
    """Mean over valid joints of the cross-entropy between the heatmap (B, J, h, w) probabilities and
    a normalized Gaussian of std `sigma` cells at the label (B, J, 2) in [-1, 1] crop coordinates."""
    b, j, h, w = heatmaps.shape
    xs = (torch.arange(w, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5) / w * 2 - 1
    ys = (torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device) + 0.5) / h * 2 - 1
    gx = torch.exp(-0.5 * ((xs - joints_2d[..., :1]) * (w / 2) / sigma) ** 2)  # (B, J, w)
    gy = torch.exp(-0.5 * ((ys - joints_2d[..., 1:]) * (h / 2) / sigma) ** 2)  # (B, J, h)
    target = gy[..., :, None] * gx[..., None, :]
    target = target / target.sum(dim=(2, 3), keepdim=True).clamp(min=1e-12)
    ce = -(target * torch.log(heatmaps.clamp(min=1e-12))).sum(dim=(2, 3))  # (B, J)
    return (ce * valid).sum() / valid.sum().clamp(min=1.0)


def bone_ratio_loss(joints_3d: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Variance of length / reference length within each BONE_GROUPS group, averaged over the
    samples with `weight` 1 (B,)."""
    children = torch.tensor([[JOINT_INDEX[n] for n in g] for g in BONE_GROUPS], device=joints_3d.device)
    parents = torch.as_tensor(PARENTS.copy(), device=joints_3d.device)[children]
    ref = torch.as_tensor(H36M_BONE_LENGTHS_MM / MM_PER_UNIT, dtype=joints_3d.dtype, device=joints_3d.device)[children]
    lengths = (joints_3d[:, children] - joints_3d[:, parents]).norm(dim=-1)  # (B, G, 2)
    ratio = lengths / ref
    var = ((ratio - ratio.mean(dim=-1, keepdim=True)) ** 2).mean(dim=(-1, -2))  # (B,)
    return (var * weight).sum() / weight.sum().clamp(min=1.0)


def image_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The total loss and its parts for one batch (tensors on the model's device)."""
    loss_2d = masked_l1(out["joints_2d"], batch["joints_2d"], batch["valid_2d"])
    loss_3d = masked_l1(out["joints_3d"], batch["joints_3d"], batch["valid_3d"])
    total = cfg.weight_2d * loss_2d + cfg.weight_3d * loss_3d
    parts = {"loss_2d": loss_2d, "loss_3d": loss_3d}
    if cfg.weight_heatmap > 0:
        loss_heatmap = heatmap_loss(out["heatmaps"], batch["joints_2d"], batch["valid_2d"], cfg.heatmap_sigma)
        total = total + cfg.weight_heatmap * loss_heatmap
        parts["loss_heatmap"] = loss_heatmap
    if cfg.weight_bone > 0:
        without_3d = (batch["valid_3d"].sum(dim=1) == 0).to(out["joints_3d"].dtype)
        loss_bone = bone_ratio_loss(out["joints_3d"], without_3d)
        total = total + cfg.weight_bone * loss_bone
        parts["loss_bone"] = loss_bone
    return {"loss": total, **parts}
