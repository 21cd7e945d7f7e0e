"""The built-in player's renderers, headless with moderngl on EGL: the skinned human body and the capsule mannequin."""

from .backgrounds import PhotoFolderError, PhotoLibrary
from .human import HumanRenderer
from .mannequin import JointSurfaces, Primitives, mannequin_primitives
from .renderer import (
    MASK_PERSON,
    FrameTarget,
    MannequinRenderer,
    PrimitiveRenderer,
    RenderedFrame,
    SceneRenderer,
    create_context,
    projection_from_intrinsics,
)

__all__ = [
    "MASK_PERSON",
    "FrameTarget",
    "HumanRenderer",
    "JointSurfaces",
    "MannequinRenderer",
    "PhotoFolderError",
    "PhotoLibrary",
    "PrimitiveRenderer",
    "Primitives",
    "RenderedFrame",
    "SceneRenderer",
    "create_context",
    "mannequin_primitives",
    "projection_from_intrinsics",
]
