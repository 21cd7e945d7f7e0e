"""Random cameras around a posed person, drawn from ranges in a pydantic config.

A config holds one or more camera *profiles* (by default a Human3.6M-like studio rig and a
handheld phone), each a set of ranges. Sampling is vectorized over the batch: a profile is drawn
per sample, then every parameter from that profile's range. Cameras look at the pelvis plus a
jitter; a rejection rule redraws the camera of any sample whose fraction of in-image joints is
below `min_in_frame_fraction`. The defaults are documented in docs/conventions.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .camera import in_image, intrinsics_matrix, look_at, project_points, world_to_camera

FloatRange = tuple[float, float]


class CameraProfile(BaseModel):
    """Ranges for one kind of camera. All ranges are [low, high], drawn uniformly."""

    model_config = ConfigDict(extra="forbid")

    name: str
    weight: float = Field(1.0, gt=0)
    distance_mm: FloatRange  # camera centre to the look-at point
    azimuth_deg: FloatRange = (-180.0, 180.0)  # around the world z axis, relative to the person's facing
    elevation_deg: FloatRange  # above the horizontal plane through the look-at point
    roll_deg: FloatRange = (0.0, 0.0)  # about the optical axis
    fov_deg: FloatRange | None = None  # field of view across the *longer* image side
    focal_px: FloatRange | None = None  # alternatively, the focal length directly
    principal_point_jitter: float = Field(0.0, ge=0, le=0.25)  # +- fraction of width/height
    image_sizes: list[tuple[int, int]]  # [width, height] choices, drawn uniformly
    look_at_jitter_mm: float = Field(0.0, ge=0)  # std of an isotropic Gaussian around the pelvis

    @model_validator(mode="after")
    def _check(self) -> "CameraProfile":
        if (self.fov_deg is None) == (self.focal_px is None):
            raise ValueError(f"profile {self.name!r}: give exactly one of fov_deg and focal_px")
        for field in ("distance_mm", "azimuth_deg", "elevation_deg", "roll_deg", "fov_deg", "focal_px"):
            r = getattr(self, field)
            if r is not None and r[0] > r[1]:
                raise ValueError(f"profile {self.name!r}: {field} low {r[0]} > high {r[1]}")
        if self.distance_mm[0] <= 0:
            raise ValueError(f"profile {self.name!r}: distance_mm must be positive")
        if not -89.0 <= self.elevation_deg[0] <= self.elevation_deg[1] <= 89.0:
            raise ValueError(f"profile {self.name!r}: elevation_deg must lie within [-89, 89]")
        if self.fov_deg is not None and not 1.0 <= self.fov_deg[0] <= self.fov_deg[1] < 179.0:
            raise ValueError(f"profile {self.name!r}: fov_deg must lie within [1, 179)")
        if not self.image_sizes or any(w <= 0 or h <= 0 for w, h in self.image_sizes):
            raise ValueError(f"profile {self.name!r}: image_sizes must be positive [width, height] pairs")
        return self


# Human3.6M: four static cameras about 1.5-1.8 m high, 3.5-6.5 m from the subject, 1000x1000
# images, fx ~ 1145-1150 px (about 47 degrees), principal point within ~1% of the centre.
H36M_PROFILE = CameraProfile(
    name="h36m",
    distance_mm=(3500.0, 6500.0),
    elevation_deg=(0.0, 20.0),
    roll_deg=(-3.0, 3.0),
    fov_deg=(43.0, 51.0),
    principal_point_jitter=0.01,
    image_sizes=[(1000, 1000)],
    look_at_jitter_mm=150.0,
)

# A handheld phone main camera (26-28 mm equivalent: 60-75 degrees across the long side), held
# 1.5-5 m away between knee and above-head height, landscape or portrait, tilted a little.
PHONE_PROFILE = CameraProfile(
    name="phone",
    distance_mm=(1800.0, 5000.0),
    elevation_deg=(-15.0, 35.0),
    roll_deg=(-8.0, 8.0),
    fov_deg=(60.0, 75.0),
    principal_point_jitter=0.02,
    image_sizes=[(1920, 1080), (1080, 1920), (1280, 720), (720, 1280)],
    look_at_jitter_mm=250.0,
)


class CameraSamplerConfig(BaseModel):
    """The camera distribution: weighted profiles plus the in-frame rejection rule."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[CameraProfile] = Field(default_factory=lambda: [H36M_PROFILE, PHONE_PROFILE])
    min_in_frame_fraction: float = Field(0.9, ge=0.0, le=1.0)
    max_rounds: int = Field(30, ge=1)  # redraws per sample before it is reported as rejected

    def with_image_size(self, width: int, height: int) -> "CameraSamplerConfig":
        """The same distribution rendered at one fixed image size (FOV ranges are kept)."""
        profiles = [p.model_copy(update={"image_sizes": [(int(width), int(height))]}) for p in self.profiles]
        return self.model_copy(update={"profiles": profiles})


@dataclasses.dataclass
class CameraBatch:
    """N cameras: K (N,3,3), image_size (N,2) int32 [w, h], world->camera R (N,3,3) and t (N,3)."""

    K: np.ndarray
    image_size: np.ndarray
    R: np.ndarray
    t: np.ndarray
    profile: np.ndarray  # int (N,), index into config.profiles

    def __len__(self) -> int:
        return int(self.K.shape[0])

    def take(self, index) -> "CameraBatch":
        return CameraBatch(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

    def put(self, index, other: "CameraBatch") -> None:
        for f in dataclasses.fields(self):
            getattr(self, f.name)[index] = getattr(other, f.name)


def _table(config: CameraSamplerConfig, field: str) -> np.ndarray:
    """(P, 2) array of one range field over the profiles."""
    return np.array([getattr(p, field) for p in config.profiles], dtype=np.float64)


def sample_cameras(rng: np.random.Generator, target_world: np.ndarray, config: CameraSamplerConfig) -> CameraBatch:
    """Draw one camera per look-at target (N, 3) (world frame, mm), vectorized over N."""
    target_world = np.asarray(target_world, dtype=np.float64)
    n = target_world.shape[0]
    profiles = config.profiles
    weights = np.array([p.weight for p in profiles])
    which = rng.choice(len(profiles), size=n, p=weights / weights.sum()) if len(profiles) > 1 else np.zeros(n, dtype=np.int64)

    def uniform(field: str) -> np.ndarray:
        r = _table(config, field)[which]
        return rng.uniform(r[:, 0], r[:, 1])

    distance = uniform("distance_mm")
    azimuth = np.deg2rad(uniform("azimuth_deg"))
    elevation = np.deg2rad(uniform("elevation_deg"))
    roll = np.deg2rad(uniform("roll_deg"))

    # Image size: a uniform choice among each profile's sizes.
    size_table = [np.array(p.image_sizes, dtype=np.int32) for p in profiles]
    counts = np.array([len(s) for s in size_table])
    pick = np.floor(rng.random(n) * counts[which]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    image_size = np.concatenate(size_table)[offsets[which] + pick]

    # Focal length: from FOV across the longer side, or drawn in pixels.
    long_side = image_size.max(axis=1).astype(np.float64)
    has_fov = np.array([p.fov_deg is not None for p in profiles])[which]
    fov_r = np.array([p.fov_deg or (1.0, 1.0) for p in profiles])[which]
    foc_r = np.array([p.focal_px or (1.0, 1.0) for p in profiles])[which]
    u = rng.random(n)
    fov = np.deg2rad(fov_r[:, 0] + u * (fov_r[:, 1] - fov_r[:, 0]))
    focal = np.where(has_fov, 0.5 * long_side / np.tan(0.5 * fov), foc_r[:, 0] + u * (foc_r[:, 1] - foc_r[:, 0]))

    jitter = np.array([p.principal_point_jitter for p in profiles])[which]
    cx = image_size[:, 0] * (0.5 + jitter * rng.uniform(-1.0, 1.0, n))
    cy = image_size[:, 1] * (0.5 + jitter * rng.uniform(-1.0, 1.0, n))
    K = intrinsics_matrix(focal, focal, cx, cy)

    look_std = np.array([p.look_at_jitter_mm for p in profiles])[which]
    target = target_world + rng.standard_normal((n, 3)) * look_std[:, None]
    ce = np.cos(elevation)
    offset = np.stack([ce * np.cos(azimuth), ce * np.sin(azimuth), np.sin(elevation)], axis=1)
    R, t = look_at(target + distance[:, None] * offset, target, roll)
    return CameraBatch(K=K, image_size=image_size, R=R, t=t, profile=which)


def in_frame_fraction(joints_world: np.ndarray, cameras: CameraBatch) -> np.ndarray:
    """Fraction (N,) of joints that project inside each camera's image, in front of it."""
    cam = world_to_camera(joints_world, cameras.R, cameras.t)
    uv = project_points(cam, cameras.K)
    return in_image(uv, cameras.image_size, cam[..., 2]).mean(axis=-1)


def sample_cameras_for_poses(
    rng: np.random.Generator, joints_world: np.ndarray, config: CameraSamplerConfig, root: int = 0
) -> tuple[CameraBatch, np.ndarray]:
    """Cameras for poses (N, 17, 3) with the rejection rule applied.

    Samples whose in-frame fraction is too low get a new camera, up to `config.max_rounds` times.
    Returns the cameras and an `accepted` mask (N,); the caller replaces rejected poses.
    """
    cams = sample_cameras(rng, joints_world[:, root], config)
    accepted = in_frame_fraction(joints_world, cams) >= config.min_in_frame_fraction
    for _ in range(config.max_rounds - 1):
        todo = np.flatnonzero(~accepted)
        if todo.size == 0:
            break
        redraw = sample_cameras(rng, joints_world[todo, root], config)
        cams.put(todo, redraw)
        accepted[todo] = in_frame_fraction(joints_world[todo], redraw) >= config.min_in_frame_fraction
    return cams, accepted
