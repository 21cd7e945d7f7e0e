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

from .camera import camera_center, in_image, intrinsics_matrix, orbit_camera, project_points, world_to_camera
from .sampling import standard_normal
from .skeleton import NUM_JOINTS, ROOT, facing_yaw

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
    # Crop-like framing: the person's joint box (its diagonal, plus SUBJECT_MARGIN) spans this
    # fraction of the shorter image side, and the camera looks at the box centre. The distance is
    # then computed, clipped to distance_mm.
    fill_fraction: FloatRange | None = None

    @model_validator(mode="after")
    def _check(self) -> "CameraProfile":
        if (self.fov_deg is None) == (self.focal_px is None):
            raise ValueError(f"profile {self.name!r}: give exactly one of fov_deg and focal_px")
        for field in ("distance_mm", "azimuth_deg", "elevation_deg", "roll_deg", "fov_deg", "focal_px"):
            r = getattr(self, field)
            if r is not None and r[0] > r[1]:
                raise ValueError(f"profile {self.name!r}: {field} low {r[0]} > high {r[1]}")
        if self.fill_fraction is not None and not 0.05 <= self.fill_fraction[0] <= self.fill_fraction[1] <= 1.5:
            raise ValueError(f"profile {self.name!r}: fill_fraction must lie within [0.05, 1.5]")
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


# A person filling most of the frame, as in the crops pose networks train on: a phone or compact
# camera at 35-70 degrees, anywhere around the person, the whole body spanning 60-95 % of the
# shorter image side.
CROP_PROFILE = CameraProfile(
    name="crop",
    weight=2.0,
    distance_mm=(800.0, 12000.0),
    elevation_deg=(-10.0, 35.0),
    roll_deg=(-10.0, 10.0),
    fov_deg=(35.0, 70.0),
    principal_point_jitter=0.04,
    image_sizes=[(256, 256)],
    look_at_jitter_mm=40.0,
    fill_fraction=(0.6, 0.95),
)
# The joints lie inside the body: the skin, the head top and the soles extend the joint box's
# diagonal by about this factor.
SUBJECT_MARGIN = 1.15


class CameraSamplerConfig(BaseModel):
    """The camera distribution: weighted profiles plus the in-frame rejection rule."""

    model_config = ConfigDict(extra="forbid")

    profiles: list[CameraProfile] = Field(default_factory=lambda: [H36M_PROFILE, PHONE_PROFILE])
    min_in_frame_fraction: float = Field(0.9, ge=0.0, le=1.0)
    # The camera centre stays at least this far above the pose's lowest joint (a lower bound of the
    # floor), so low elevations at long distances never put the camera under the ground. None: off.
    min_camera_height_mm: float | None = Field(150.0)
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


def min_in_frame_count(config: CameraSamplerConfig, num_joints: int = NUM_JOINTS) -> int:
    """The fewest in-image joints a sample needs: the smallest c with c / num_joints >= the fraction."""
    return next(c for c in range(num_joints + 1) if c / num_joints >= config.min_in_frame_fraction)


class CameraRuleError(ValueError):
    """No camera of the configured ranges meets the acceptance rule; the message names the rule."""


def camera_rule(config: CameraSamplerConfig, num_joints: int = NUM_JOINTS) -> str:
    """The acceptance rule in words, with the config keys that set it (for error messages)."""
    height = config.min_camera_height_mm
    floor = "" if height is None else f", the camera at least {height:g} mm above the lowest joint (camera.min_camera_height_mm)"
    return (
        f"{min_in_frame_count(config, num_joints)} of {num_joints} joints in the image "
        f"(camera.min_in_frame_fraction = {config.min_in_frame_fraction:g}), every joint in front of the camera{floor}"
    )


@dataclasses.dataclass
class CameraParams:
    """Drawn camera parameters for n samples, before they are turned into extrinsics.

    Angles in radians; `azimuth` is relative to the person's facing (add the facing yaw to get
    the world azimuth). `look_at_offset` (3, n) is the jitter of the look-at point from the pelvis.
    """

    profile: np.ndarray  # int64 (n,) index into config.profiles
    distance: np.ndarray  # (n,) mm, camera centre to the look-at point
    azimuth: np.ndarray
    elevation: np.ndarray
    roll: np.ndarray
    focal: np.ndarray  # (n,) px, fx = fy
    cx: np.ndarray
    cy: np.ndarray
    image_size: np.ndarray  # int32 (n, 2) [width, height]
    look_at_offset: np.ndarray  # (3, n) mm, world frame
    fill: np.ndarray | None = None  # (n,) crop framing fraction, NaN where the profile has none; None: no profile has one
    min_distance: np.ndarray | None = None  # (n,) the profile's distance_mm bounds, for crop framing
    max_distance: np.ndarray | None = None

    def intrinsics(self, dtype=np.float64) -> np.ndarray:
        return intrinsics_matrix(self.focal, self.focal, self.cx, self.cy, dtype=dtype)


class CameraTables:
    """A config's per-profile ranges as arrays in one dtype, gathered per sample by profile.

    Build it once per config and dtype, then draw from it many times (`draw_camera_params`).
    """

    # Ranges drawn uniformly, in this order (the lens is the FOV or the focal length).
    FIELDS = ("distance", "azimuth", "elevation", "roll", "lens")

    def __init__(self, config: CameraSamplerConfig, dtype=np.float64):
        self.dtype = np.dtype(dtype)
        profiles = config.profiles
        weights = np.array([p.weight for p in profiles], dtype=np.float64)
        self.cum_weights = (np.cumsum(weights) / weights.sum())[:-1].astype(dtype)
        rad = np.pi / 180.0
        ranges = np.array(
            [
                [p.distance_mm, np.multiply(p.azimuth_deg, rad), np.multiply(p.elevation_deg, rad), np.multiply(p.roll_deg, rad),
                 np.multiply(p.fov_deg, rad) if p.fov_deg is not None else p.focal_px]
                for p in profiles
            ],
            dtype=np.float64,
        )  # (P, F, 2)  # fmt: skip
        self.low = np.ascontiguousarray(ranges[..., 0].T, dtype=dtype)  # (F, P)
        self.width = np.ascontiguousarray((ranges[..., 1] - ranges[..., 0]).T, dtype=dtype)
        self.has_fov = np.array([p.fov_deg is not None for p in profiles])
        # (2, P): principal point jitter (fraction of the size), look-at jitter (mm)
        self.jitter = np.array([[p.principal_point_jitter for p in profiles], [p.look_at_jitter_mm for p in profiles]], dtype=dtype)
        sizes = [np.array(p.image_sizes, dtype=np.int32) for p in profiles]
        self.size_count = np.array([len(s) for s in sizes])
        self.size_offset = np.concatenate([[0], np.cumsum(self.size_count)[:-1]])
        self.sizes = np.concatenate(sizes)
        self.has_fill = np.array([p.fill_fraction is not None for p in profiles])
        self.fill = np.array([p.fill_fraction or (0.0, 0.0) for p in profiles], dtype=dtype).T  # (2, P) low, high


def draw_camera_params(rng: np.random.Generator, n: int, tables: CameraTables) -> CameraParams:
    """Draw n cameras' parameters, vectorized, in the tables' dtype (float32 for the pair generator).

    A profile is drawn per sample by weight, then every parameter uniformly from that profile's
    range; the look-at offset is Gaussian. The draw order is fixed, so a seeded `rng` gives the
    same cameras every time.
    """
    dtype = tables.dtype
    u = rng.random((4 + len(CameraTables.FIELDS), n), dtype=dtype)  # profile, size, cx, cy, the fields
    which = np.searchsorted(tables.cum_weights, u[0], side="right")
    values = tables.width.take(which, axis=1)
    values *= u[4:]
    values += tables.low.take(which, axis=1)
    distance, azimuth, elevation, roll, lens = values

    count = tables.size_count.take(which)
    pick = np.minimum((u[1] * count).astype(np.int64), count - 1)
    image_size = np.take(tables.sizes, tables.size_offset.take(which) + pick, axis=0)
    size = image_size.T.astype(dtype)  # (2, n)
    focal = 0.5 * np.maximum(size[0], size[1]) / np.tan(0.5 * lens)  # FOV across the longer side
    if not tables.has_fov.all():
        focal = np.where(tables.has_fov[which], focal, lens)
    pp_jitter, look_std = tables.jitter.take(which, axis=1)
    cx = size[0] * (0.5 + pp_jitter * (2 * u[2] - 1))
    cy = size[1] * (0.5 + pp_jitter * (2 * u[3] - 1))
    offset = standard_normal(rng, (3, n), dtype)
    offset *= look_std
    fill = min_d = max_d = None
    if tables.has_fill.any():  # drawn only then, so configs without crop framing keep their streams
        low, high = tables.fill.take(which, axis=1)
        fill = np.where(tables.has_fill[which], low + (high - low) * rng.random(n, dtype=dtype), np.nan).astype(dtype)
        min_d = tables.low[0].take(which)
        max_d = min_d + tables.width[0].take(which)
    return CameraParams(
        profile=which,
        distance=distance,
        azimuth=azimuth,
        elevation=elevation,
        roll=roll,
        focal=focal,
        cx=cx,
        cy=cy,
        image_size=image_size,
        look_at_offset=offset,
        fill=fill,
        min_distance=min_d,
        max_distance=max_d,
    )


def frame_subjects(params: CameraParams, low: np.ndarray, high: np.ndarray, root: np.ndarray) -> None:
    """Crop-like framing, in place, for the samples whose profile has a fill fraction: the camera
    looks at the centre of the person's joint box (low, high: (3, n) world mm; root (3, n) the
    pelvis the offset is relative to), from the distance at which the box's diagonal times
    SUBJECT_MARGIN spans that fraction of the shorter image side."""
    if params.fill is None:
        return
    framed = np.isfinite(params.fill)
    extent = SUBJECT_MARGIN * np.sqrt(((high - low) ** 2).sum(axis=0))
    short = params.image_size.min(axis=1).astype(params.focal.dtype)
    with np.errstate(invalid="ignore"):
        distance = np.clip(params.focal * extent / (params.fill * short), params.min_distance, params.max_distance)
    params.distance = np.where(framed, distance, params.distance).astype(params.distance.dtype)
    centre = 0.5 * (low + high) - root
    params.look_at_offset = np.where(framed, params.look_at_offset + centre, params.look_at_offset).astype(params.look_at_offset.dtype)


def sample_cameras(
    rng: np.random.Generator, target_world: np.ndarray, config: CameraSamplerConfig, facing_rad: np.ndarray | None = None,
    joints_world: np.ndarray | None = None,
) -> CameraBatch:
    """Draw one camera per look-at target (N, 3) (world frame, mm), vectorized over N.

    `facing_rad` (N,) is each person's facing yaw (skeleton.facing_yaw); the profile's azimuth is
    measured from it (0 = in front of the person). Without it, azimuth is measured from world +x.
    Profiles with crop framing need the poses, `joints_world` (N, J, 3).
    """
    target_world = np.asarray(target_world, dtype=np.float64)
    n = target_world.shape[0]
    params = draw_camera_params(rng, n, CameraTables(config))
    if params.fill is not None:
        if joints_world is None:
            raise ValueError("crop framing (a profile's fill_fraction) needs the poses: pass joints_world")
        frame_subjects(params, joints_world.min(axis=1).T, joints_world.max(axis=1).T, target_world.T)
    azimuth = params.azimuth if facing_rad is None else params.azimuth + np.asarray(facing_rad, dtype=np.float64)
    R, t = orbit_camera(target_world + params.look_at_offset.T, params.distance, azimuth, params.elevation, params.roll)
    return CameraBatch(K=params.intrinsics(), image_size=params.image_size, R=R, t=t, profile=params.profile)


def camera_above_floor(camera_z: np.ndarray, joints_z: np.ndarray, config: CameraSamplerConfig, joint_axis: int = -1) -> np.ndarray:
    """True where a camera centre's height `camera_z` (N,) clears the lowest of its pose's joint
    heights `joints_z` by `config.min_camera_height_mm` (always True when that is None)."""
    if config.min_camera_height_mm is None:
        return np.ones(np.shape(camera_z), dtype=bool)
    return camera_z - joints_z.min(axis=joint_axis) >= config.min_camera_height_mm


def in_frame_count(joints_world: np.ndarray, cameras: CameraBatch, with_in_front: bool = False):
    """Number (N,) of joints that project inside each camera's image, in front of it; with
    `with_in_front`, also whether every joint is in front of the camera (N,) bool."""
    cam = world_to_camera(joints_world, cameras.R, cameras.t)
    uv = project_points(cam, cameras.K)
    count = in_image(uv, cameras.image_size, cam[..., 2]).sum(axis=-1)
    return (count, (cam[..., 2] > 0).all(axis=-1)) if with_in_front else count


def sample_cameras_for_poses(
    rng: np.random.Generator, joints_world: np.ndarray, config: CameraSamplerConfig, root: int = ROOT
) -> tuple[CameraBatch, np.ndarray]:
    """Cameras for world poses (N, 17, 3) with the rejection rule applied.

    Each camera looks at its pose's pelvis, with the azimuth measured from the pose's facing.
    Samples with fewer than `min_in_frame_count` joints in the image, a joint at or behind the
    camera, or the camera too low (`camera_above_floor`), get a new camera, up to
    `config.max_rounds` draws in all. Returns the cameras and an `accepted` mask (N,); the caller
    replaces rejected poses.
    """
    joints_world = np.asarray(joints_world, dtype=np.float64)
    need = min_in_frame_count(config, joints_world.shape[-2])
    facing = facing_yaw(joints_world)

    def ok(joints: np.ndarray, cams: CameraBatch) -> np.ndarray:
        height = camera_center(cams.R, cams.t)[:, 2]
        inside, in_front = in_frame_count(joints, cams, with_in_front=True)
        return (inside >= need) & in_front & camera_above_floor(height, joints[..., 2], config)

    cams = sample_cameras(rng, joints_world[:, root], config, facing, joints_world)
    accepted = ok(joints_world, cams)
    for _ in range(config.max_rounds - 1):
        todo = np.flatnonzero(~accepted)
        if todo.size == 0:
            break
        redraw = sample_cameras(rng, joints_world[todo, root], config, facing[todo], joints_world[todo])
        cams.put(todo, redraw)
        accepted[todo] = ok(joints_world[todo], redraw)
    return cams, accepted
