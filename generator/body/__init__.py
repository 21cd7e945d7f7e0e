"""Human bodies for the built-in player: the Anny body model (MakeHuman assets, CC0), its rig reduced
to the segments our poses drive, retargeting from h36m17 joints, and the h36m17 joints defined on
the body. Plain numpy after the identities are built; torch and anny are needed only to build them."""

from .model import ANNY_VERSION, BodyModel, Identities, PHENOTYPE_LABELS, load_body_model
from .rig import BodyPose, JointRig, SEGMENTS, pose_body, posed_joints, skin_points

__all__ = [
    "ANNY_VERSION",
    "BodyModel",
    "BodyPose",
    "Identities",
    "PHENOTYPE_LABELS",
    "SEGMENTS",
    "JointRig",
    "posed_joints",
    "load_body_model",
    "pose_body",
    "skin_points",
]
