"""The identity pool of a player process: N bodies drawn once from the HumanConfig's distributions,
with everything posing, ground truth and visibility need. Built once per process and config
(Anny start-up about 2 s, then about 5 ms a body), so no frame pays for it."""

from __future__ import annotations

import functools
import json

import numpy as np

from .model import BodyModel, Identities, load_body_model
from .rig import BODY_JOINTS, SEGMENT_INDEX, JointRig
from .sampling import IDENTITY_STREAM, HumanConfig, sample_phenotypes
from ..skeleton import JOINT_INDEX

# Segments whose surface may show at a joint's pixel while the joint still counts as visible.
JOINT_SEGMENTS: dict[str, tuple[str, ...]] = {
    "Hip": ("pelvis", "spine04", "thigh.L", "thigh.R"),
    "RHip": ("pelvis", "spine04", "thigh.R"),
    "RKnee": ("thigh.R", "shin.R"),
    "RFoot": ("shin.R",),
    "LHip": ("pelvis", "spine04", "thigh.L"),
    "LKnee": ("thigh.L", "shin.L"),
    "LFoot": ("shin.L",),
    "Spine": ("pelvis", "spine04", "spine03", "spine02", "chest"),
    "Thorax": ("spine02", "chest", "neck01", "upperarm.L", "upperarm.R"),
    "Neck/Nose": ("head", "neck02"),
    "Head": ("head", "neck02"),
    "LShoulder": ("chest", "upperarm.L"),
    "LElbow": ("upperarm.L", "forearm.L"),
    "LWrist": ("forearm.L",),
    "RShoulder": ("chest", "upperarm.R"),
    "RElbow": ("upperarm.R", "forearm.R"),
    "RWrist": ("forearm.R",),
}
assert set(JOINT_SEGMENTS) == set(BODY_JOINTS)


def _allowed_matrix() -> np.ndarray:
    """(17, 1 + S) bool: which mask values (1 + segment) count as the joint's own surface."""
    m = np.zeros((17, 1 + len(SEGMENT_INDEX)), bool)
    for joint, segs in JOINT_SEGMENTS.items():
        m[JOINT_INDEX[joint], [1 + SEGMENT_INDEX[s] for s in segs]] = True
    return m


JOINT_SURFACE = _allowed_matrix()


class BodyPool:
    """N identities: rest meshes, rigs and each joint's depth below the body's surface."""

    def __init__(self, config: HumanConfig):
        self.config = config
        self.model: BodyModel = load_body_model()
        rng = np.random.default_rng([IDENTITY_STREAM, config.identity_seed])
        self.identities: Identities = self.model.identities(sample_phenotypes(rng, config, config.identities))
        self.rigs: list[JointRig] = [self.model.joint_rig(self.identities, i) for i in range(len(self.identities))]
        self.joint_depth = np.stack([self._joint_depth(i) for i in range(len(self.identities))])

    def __len__(self) -> int:
        return len(self.identities)

    def _joint_depth(self, i: int) -> np.ndarray:
        """(17,) how far below the surface each rest joint of identity i lies, at most: twice its
        distance to the nearest vertex of its own segments, plus 20 mm. A joint counts as visible
        while the surface seen at its pixel is no nearer the camera than that."""
        joints = self.rigs[i].rest_joints()
        v = self.identities.vertices[i].astype(np.float64)
        own = JOINT_SURFACE[:, 1 + self.model.influence_segments[:, 0]].T  # (V, 17)
        d2 = ((v[:, None, :] - joints[None]) ** 2).sum(axis=-1)
        return 2.0 * np.sqrt(np.where(own, d2, np.inf).min(axis=0)) + 20.0

    @staticmethod
    @functools.cache
    def _cached(config_json: str) -> "BodyPool":
        return BodyPool(HumanConfig.model_validate_json(config_json))

    @classmethod
    def for_config(cls, config: HumanConfig) -> "BodyPool":
        """The process-wide pool of a config (built on first use)."""
        return cls._cached(json.dumps(config.model_dump(mode="json"), sort_keys=True))
