"""The built-in player's renderer: a capsule-and-ellipsoid mannequin drawn headless with moderngl on EGL."""

from .backgrounds import PhotoFolderError, PhotoLibrary
from .mannequin import JointSurfaces, Primitives, mannequin_primitives
from .renderer import MannequinRenderer, PrimitiveRenderer, RenderedFrame, create_context, projection_from_intrinsics

__all__ = [
    "JointSurfaces",
    "MannequinRenderer",
    "PhotoFolderError",
    "PhotoLibrary",
    "PrimitiveRenderer",
    "Primitives",
    "RenderedFrame",
    "create_context",
    "mannequin_primitives",
    "projection_from_intrinsics",
]
