"""The built-in player's renderer: a capsule-and-ellipsoid mannequin drawn headless with moderngl on EGL."""

from .backgrounds import PhotoFolderError, PhotoLibrary
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
