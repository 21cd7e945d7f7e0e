"""Pose sources: a bank of h36m17 poses in the world frame that generators sample from.

A source is a mocap file, a folder of them (BVH or DeepMimic JSON), or `prior` (random joint
angles within anatomical limits; see prior.py). Whatever the source, the bank holds world-frame
joints in millimetres, z up, with each clip's floor at z = 0 (docs/conventions.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

PRIOR = "prior"


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
