"""Evaluate a lifter on a pairs file: the standard metrics, per joint and per action.

The input 2D is the file's `joints_2d`, optionally with Gaussian pixel noise (a fixed seed); the
reprojection error is measured against the 2D the lifter saw. Metrics are accumulated chunk by
chunk, so files larger than memory are fine.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from rich.progress import track

from generator.pairs_io import Pairs, load_pairs
from generator.skeleton import JOINT_NAMES, NUM_JOINTS

from . import metrics as M
from .inference import Lifter
from .search import GridConfig, geometric_search

SUMMARY_KEYS = ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "pck3d_150", "auc", "abs_mpjpe_mm", "reprojection_px", "n")
# Per-joint error kinds accumulated (each (N, 17)).
_KINDS = ("mpjpe", "p_mpjpe", "n_mpjpe", "abs_mpjpe", "reprojection", "net_mpjpe", "rigid_abs_mpjpe", "rigid_reprojection")


@dataclasses.dataclass
class _Sums:
    """Running per-joint sums of each error kind, overall and per action, plus PCK counts."""

    joint: dict[str, np.ndarray] = dataclasses.field(default_factory=lambda: {k: np.zeros(NUM_JOINTS) for k in _KINDS})
    action: dict[str, dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)
    action_n: dict[str, int] = dataclasses.field(default_factory=dict)
    below: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(len(M.AUC_THRESHOLDS_MM)))
    below_pck: float = 0.0
    n: int = 0

    def add(self, errors: dict[str, np.ndarray], actions: np.ndarray) -> None:
        for k, e in errors.items():
            self.joint[k] += e.sum(axis=0)
        names, inverse = np.unique(actions, return_inverse=True)
        for i, name in enumerate(names):
            rows = inverse == i
            acc = self.action.setdefault(str(name), {k: np.zeros(NUM_JOINTS) for k in _KINDS})
            for k, e in errors.items():
                acc[k] += e[rows].sum(axis=0)
            self.action_n[str(name)] = self.action_n.get(str(name), 0) + int(rows.sum())
        p1 = errors["mpjpe"]
        self.below += (p1.reshape(-1)[None, :] < M.AUC_THRESHOLDS_MM[:, None]).sum(axis=1)
        self.below_pck += float((p1 < M.PCK_THRESHOLD_MM).sum())
        self.n += len(p1)


@dataclasses.dataclass
class Evaluation:
    """Summary metrics (the JSON's top level), per-joint and per-action tables."""

    summary: dict
    without_search: dict
    per_joint: list[dict]
    per_action: list[dict]
    search: str
    noise_px: float
    model: str

    def to_json(self) -> dict:
        return {
            **self.summary,
            "search": self.search,
            "noise_px": self.noise_px,
            "model": self.model,
            "without_search": self.without_search,
            "per_joint": self.per_joint,
            "per_action": self.per_action,
        }

    def markdown(self) -> str:
        s = self.summary
        lines = [
            f"Model `{self.model}`, search `{self.search}`, 2D noise {self.noise_px:g} px, {s['n']} poses",
            "",
            "| metric | value |",
            "| --- | ---: |",
            f"| MPJPE (P1, mm) | {s['mpjpe_mm']:.1f} |",
            f"| P-MPJPE (P2, mm) | {s['p_mpjpe_mm']:.1f} |",
            f"| N-MPJPE (mm) | {s['n_mpjpe_mm']:.1f} |",
            f"| PCK3D@150mm | {s['pck3d_150']:.3f} |",
            f"| AUC 0-150mm | {s['auc']:.3f} |",
            f"| absolute MPJPE (mm) | {s['abs_mpjpe_mm']:.1f} |",
            f"| reprojection (px) | {s['reprojection_px']:.3g} |",
        ]
        if self.search != "none":
            w = self.without_search
            lines += [
                f"| MPJPE without search (mm) | {w['mpjpe_mm']:.1f} |",
                f"| absolute MPJPE without search (mm) | {w['abs_mpjpe_mm']:.1f} |",
                f"| reprojection without search (px) | {w['reprojection_px']:.3g} |",
            ]
        lines += ["", "| joint | MPJPE (mm) | P-MPJPE (mm) | abs (mm) |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {r['joint']} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | {r['abs_mpjpe_mm']:.1f} |" for r in self.per_joint]
        lines += ["", "| action | n | MPJPE (mm) | P-MPJPE (mm) | abs (mm) |", "| --- | ---: | ---: | ---: | ---: |"]
        lines += [
            f"| {r['action']} | {r['n']} | {r['mpjpe_mm']:.1f} | {r['p_mpjpe_mm']:.1f} | {r['abs_mpjpe_mm']:.1f} |"
            for r in self.per_action
        ]
        return "\n".join(lines)


def placement_errors(joints: np.ndarray, gt: np.ndarray, pixels: np.ndarray, K: np.ndarray) -> dict[str, np.ndarray]:
    """Per-joint errors (n, 17) of placed camera-frame joints: against the ground truth under each
    protocol, and against the input 2D."""
    return {
        "mpjpe": M.errors_root_aligned(joints, gt),
        "p_mpjpe": M.errors_procrustes(joints, gt),
        "n_mpjpe": M.errors_scale_aligned(joints, gt),
        "abs_mpjpe": M.errors_absolute(joints, gt),
        "reprojection": M.reprojection_errors(joints, pixels, K),
    }


def summary_metrics(errors: dict[str, np.ndarray]) -> dict:
    """The summary (SUMMARY_KEYS) of one batch of `placement_errors`."""
    sums = _Sums()
    sums.add(errors, np.full(len(errors["mpjpe"]), "all"))
    return _summary(sums)


def chunk_errors(lifter: Lifter, pixels: np.ndarray, K: np.ndarray, gt: np.ndarray, search: str, grid: GridConfig | None) -> dict[str, np.ndarray]:
    """Per-joint errors (n, 17) of every kind for one chunk."""
    lifted = lifter.lift(pixels, K, search=search, grid=grid)
    rigid = lifted.joints if search == "none" else geometric_search(lifted.pose_net, pixels, K, method="none").joints
    return {
        **placement_errors(lifted.joints, gt, pixels, K),
        "net_mpjpe": M.errors_root_aligned(lifted.pose_net, gt),
        "rigid_abs_mpjpe": M.errors_absolute(rigid, gt),
        "rigid_reprojection": M.reprojection_errors(rigid, pixels, K),
    }


def evaluate_pairs(
    lifter: Lifter,
    pairs: Pairs,
    search: str = "fast",
    noise_px: float = 0.0,
    seed: int = 0,
    grid: GridConfig | None = None,
    chunk: int = 32768,
    limit: int | None = None,
    progress: bool = True,
) -> Evaluation:
    """All metrics of `lifter` on `pairs` (the first `limit` rows when given)."""
    n = len(pairs) if limit is None else min(limit, len(pairs))
    if n == 0:
        raise ValueError("nothing to evaluate: the pairs file has no rows")
    rng = np.random.default_rng(seed)
    sums = _Sums()
    starts = range(0, n, chunk)
    for start in track(starts, description="evaluating", transient=True, disable=not progress or len(starts) < 3):
        sl = slice(start, min(start + chunk, n))
        part = pairs.select(sl)
        pixels = part.joints_2d.astype(np.float64)
        if noise_px > 0:
            pixels = pixels + rng.normal(0.0, noise_px, pixels.shape)
        actions = part.action if part.action is not None else np.full(len(part), "all")
        errors = chunk_errors(lifter, pixels, part.K_per_sample(), part.joints_3d, search, grid)
        sums.add(errors, actions)
    return _summarize(sums, search, noise_px, lifter.kind)


def _mean_errors(sums: _Sums) -> dict[str, float]:
    return {k: float(v.sum() / (sums.n * NUM_JOINTS)) for k, v in sums.joint.items()}


def _summary(sums: _Sums) -> dict:
    """The summary metrics (SUMMARY_KEYS) of the accumulated errors."""
    n = sums.n
    mean = _mean_errors(sums)
    return {
        "mpjpe_mm": mean["mpjpe"],
        "p_mpjpe_mm": mean["p_mpjpe"],
        "n_mpjpe_mm": mean["n_mpjpe"],
        "pck3d_150": sums.below_pck / (n * NUM_JOINTS),
        "auc": float(np.mean(sums.below / (n * NUM_JOINTS))),
        "abs_mpjpe_mm": mean["abs_mpjpe"],
        "reprojection_px": mean["reprojection"],
        "n": n,
    }


def _summarize(sums: _Sums, search: str, noise_px: float, model: str) -> Evaluation:
    n = sums.n
    mean = _mean_errors(sums)
    summary = _summary(sums)
    without = {
        "mpjpe_mm": mean["net_mpjpe"],
        "abs_mpjpe_mm": mean["rigid_abs_mpjpe"],
        "reprojection_px": mean["rigid_reprojection"],
    }
    per_joint = [
        {
            "joint": JOINT_NAMES[j],
            "mpjpe_mm": float(sums.joint["mpjpe"][j] / n),
            "p_mpjpe_mm": float(sums.joint["p_mpjpe"][j] / n),
            "abs_mpjpe_mm": float(sums.joint["abs_mpjpe"][j] / n),
        }
        for j in range(NUM_JOINTS)
    ]
    per_action = [
        {
            "action": name,
            "n": sums.action_n[name],
            "mpjpe_mm": float(acc["mpjpe"].sum() / (sums.action_n[name] * NUM_JOINTS)),
            "p_mpjpe_mm": float(acc["p_mpjpe"].sum() / (sums.action_n[name] * NUM_JOINTS)),
            "abs_mpjpe_mm": float(acc["abs_mpjpe"].sum() / (sums.action_n[name] * NUM_JOINTS)),
        }
        for name, acc in sorted(sums.action.items())
    ]
    return Evaluation(summary, without, per_joint, per_action, search, noise_px, model)


def evaluate_run(
    checkpoint: str | Path,
    pairs: str | Path | Pairs,
    search: str = "fast",
    noise_px: float = 0.0,
    seed: int = 0,
    grid: GridConfig | None = None,
) -> dict:
    """Load a run (directory or .pt) and a pairs file, evaluate, return the JSON-ready metrics dict."""
    lifter = Lifter.load(checkpoint)
    data = pairs if isinstance(pairs, Pairs) else load_pairs(pairs, mmap=True)
    return evaluate_pairs(lifter, data, search=search, noise_px=noise_px, seed=seed, grid=grid).to_json()
