"""Pose sources: a bank of h36m17 poses in the world frame that generators sample from.

A source is a mocap file, a folder of them (BVH or DeepMimic JSON), or `prior` (random joint
angles within anatomical limits; see prior.py). Whatever the source, the bank holds world-frame
joints in millimetres, z up, with each clip's floor at z = 0 (docs/conventions.md).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from collections.abc import Iterable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PRIOR = "prior"
BUNDLED = "bundled"  # the clips vendored under generator/data/mocap (see DATA_LICENSES.md)


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    """Where the frames of one clip came from."""

    name: str  # e.g. "02_01"
    subject: str  # performer id, e.g. "cmu_02"; clips of one subject share it
    action: str  # free text, e.g. "walk"
    path: str  # source file, or "prior"
    fps: float


@dataclasses.dataclass
class PoseBank:
    """M poses: joints (M, 17, 3) float32 world mm z-up, and for each the clip and frame it came from."""

    joints: np.ndarray
    clip_index: np.ndarray  # int32 (M,) into `clips`
    frame_index: np.ndarray  # int32 (M,) frame within the clip
    clips: list[ClipInfo]

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    def subject_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([c.subject for c in self.clips])[self.clip_index[rows]]

    def sequence_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([c.name for c in self.clips])[self.clip_index[rows]]

    def action_of(self, rows: np.ndarray) -> np.ndarray:
        return np.array([c.action for c in self.clips])[self.clip_index[rows]]

    def select_clips(self, keep: np.ndarray) -> "PoseBank":
        """The bank restricted to the clips where `keep` (len(clips),) is True (clip ids renumbered)."""
        keep = np.asarray(keep, dtype=bool)
        rows = keep[self.clip_index]
        new_id = np.cumsum(keep) - 1
        return PoseBank(
            joints=self.joints[rows],
            clip_index=new_id[self.clip_index[rows]].astype(np.int32),
            frame_index=self.frame_index[rows],
            clips=[c for c, k in zip(self.clips, keep) if k],
        )

    @staticmethod
    def concatenate(banks: list["PoseBank"]) -> "PoseBank":
        offsets = np.cumsum([0] + [len(b.clips) for b in banks[:-1]])
        return PoseBank(
            joints=np.concatenate([b.joints for b in banks]),
            clip_index=np.concatenate([b.clip_index + o for b, o in zip(banks, offsets)]).astype(np.int32),
            frame_index=np.concatenate([b.frame_index for b in banks]),
            clips=[c for b in banks for c in b.clips],
        )


class PoseSourceError(ValueError):
    """A pose source that names nothing usable (missing path, folder without clips, ...)."""


def load_pose_source(
    source: str | Path,
    *,
    seed: int = 0,
    fps: float = 30.0,
    prior_size: int = 200_000,
    name_map: Any = None,
    exclude_subjects: Iterable[str] = (),
) -> PoseBank:
    """A bank of poses from a mocap file, a folder of clips (recursively: .bvh and DeepMimic
    .txt/.json), `"bundled"` (the vendored clips) or `"prior"` (`prior_size` poses drawn from the
    pose prior with `np.random.default_rng(seed)`).

    Clips are read in sorted path order, each subsampled to `fps` (generator/mocap.py), so the
    same source gives the same bank. `name_map` (a dict or a YAML/JSON file, see
    `mocap.load_name_map`) is for BVH skeletons that are not detected. The words "bundled" and
    "prior" win over same-named paths (write "./prior" for a folder called prior).
    `exclude_subjects` leaves out every clip of those performers (e.g. the people held out for
    evaluation); naming a subject the source does not have is an error, so typos do not pass.
    """
    from generator import mocap

    if isinstance(source, str) and source == PRIOR:
        return _without_subjects(_prior_bank(seed, prior_size), exclude_subjects, source)
    path = mocap.DATA_DIR if isinstance(source, str) and source == BUNDLED else Path(source)
    if path.is_dir():
        paths = mocap.find_clips(path)
        if not paths:
            raise PoseSourceError(f"{path}: no .bvh or DeepMimic .txt/.json clips in this folder (searched recursively)")
    elif path.is_file():
        paths = [path]
    else:
        raise PoseSourceError(
            f"{source}: no such file or folder; a pose source is a mocap file, a folder of clips, "
            f"{BUNDLED!r} or {PRIOR!r}"
        )
    from rich.progress import track

    banks = []
    for p in track(paths, description="loading mocap", transient=True, disable=len(paths) < 50):
        joints, info = mocap.load_clip(p, fps=fps, name_map=name_map if p.suffix.lower() == ".bvh" else None)
        banks.append(_clip_bank(joints, info))
    bank = PoseBank.concatenate(banks)
    names = [c.name for c in bank.clips]
    if len(set(names)) < len(names):  # same file name in two folders: name clips by relative path
        root = path if path.is_dir() else path.parent
        bank.clips = [
            dataclasses.replace(c, name=Path(c.path).relative_to(root).with_suffix("").as_posix()) for c in bank.clips
        ]
    bank = _without_subjects(bank, exclude_subjects, source)
    log.info("%s: %d poses from %d clips", source, len(bank), len(bank.clips))
    return bank


def _without_subjects(bank: PoseBank, subjects: Iterable[str], source) -> PoseBank:
    subjects = set(subjects)
    if not subjects:
        return bank
    present = {c.subject for c in bank.clips}
    unknown = sorted(subjects - present)
    if unknown:
        raise PoseSourceError(f"{source}: cannot exclude subjects {unknown}: not in this source (it has {sorted(present)})")
    keep = np.array([c.subject not in subjects for c in bank.clips])
    if not keep.any():
        raise PoseSourceError(f"{source}: excluding {sorted(subjects)} leaves no clips")
    return bank.select_clips(keep)


def _clip_bank(joints: np.ndarray, info: ClipInfo) -> PoseBank:
    n = joints.shape[0]
    return PoseBank(
        joints=np.ascontiguousarray(joints, dtype=np.float32),
        clip_index=np.zeros(n, dtype=np.int32),
        frame_index=np.arange(n, dtype=np.int32),
        clips=[info],
    )


def _prior_bank(seed: int, n: int) -> PoseBank:
    from generator.prior import sample_prior_poses

    if n <= 0:
        raise PoseSourceError(f"prior_size must be positive, got {n}")
    joints = np.asarray(sample_prior_poses(np.random.default_rng(seed), n), dtype=np.float32)
    if joints.shape != (n, 17, 3):
        raise PoseSourceError(f"prior: sample_prior_poses returned shape {joints.shape}, expected {(n, 17, 3)}")
    return _clip_bank(joints, ClipInfo(name=PRIOR, subject=PRIOR, action=PRIOR, path=PRIOR, fps=0.0))
