"""The built-in player's scene description: what one frame shows, independent of any renderer.

Kubric-style: `sample_scene` draws everything random about a frame (pose, body shape, clothing
colours, light, background, occluders, camera) into a plain `Scene`; the renderer
(generator/render) only draws it, and `scene_ground_truth` derives the keypoints from it with the
camera math of generator/camera.py. A scene depends on (config, bank, seed, frame_id) alone, so
any frame can be regenerated on its own (resume relies on that). The ranges are documented in
docs/conventions.md ("Built-in player scene").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .body.pool import BodyPool
from .body.rig import BodyPose, pose_body, posed_joints
from .body.sampling import PATTERNS, Clothing, HumanConfig, pick
from .augment import BoneScaleConfig, mirror, sample_bone_scales, scale_bones
from .camera import DEFAULT_BASELINE_MM, camera_center, in_image, project_points, right_view_points, world_to_camera
from .camera_sampler import CROP_PROFILE, H36M_PROFILE, PHONE_PROFILE, CameraRuleError, CameraSamplerConfig, camera_rule, sample_cameras_for_poses
from .deepmimic import quat_to_matrix
from .poses import PRIOR, PoseBank
from .skeleton import JOINT_INDEX, ROOT

FloatRange = tuple[float, float]
FEET = [JOINT_INDEX["RFoot"], JOINT_INDEX["LFoot"]]

BACKGROUND_KINDS = ("solid", "gradient", "noise", "photo")
OCCLUDER_KINDS = ("box", "cylinder")
# Thickness groups of the mannequin (generator/render/mannequin.py) and clothing colour groups.
THICKNESS_GROUPS = ("torso", "arms", "legs", "neck", "head")
COLOR_GROUPS = ("skin", "hair", "top", "bottom", "shoes")
SLEEVES = ("none", "short", "long")
LEGWEAR = ("shorts", "long")

# sRGB skin tones from light to dark (a colour is drawn between two neighbours, then jittered).
SKIN_TONES = np.array(
    [
        [0.98, 0.87, 0.78],
        [0.95, 0.79, 0.67],
        [0.88, 0.69, 0.56],
        [0.78, 0.57, 0.42],
        [0.63, 0.44, 0.31],
        [0.47, 0.31, 0.21],
        [0.33, 0.22, 0.15],
    ]
)
# sRGB hair colours: black, dark brown, brown, blond, auburn, grey.
HAIR_COLORS = np.array(
    [[0.05, 0.04, 0.04], [0.17, 0.11, 0.07], [0.36, 0.24, 0.14], [0.76, 0.62, 0.40], [0.50, 0.22, 0.10], [0.62, 0.61, 0.60]]
)


def _check_range(name: str, r: FloatRange, low: float | None = None, high: float | None = None) -> None:
    if r[0] > r[1]:
        raise ValueError(f"{name}: low {r[0]} > high {r[1]}")
    if low is not None and r[0] < low:
        raise ValueError(f"{name}: must be >= {low}, got {list(r)}")
    if high is not None and r[1] > high:
        raise ValueError(f"{name}: must be <= {high}, got {list(r)}")


class _Section(BaseModel):
    """A config section whose FloatRange fields are checked low <= high (and against bounds)."""

    model_config = ConfigDict(extra="forbid")
    _bounds: ClassVar[dict[str, tuple[float | None, float | None]]] = {}  # field -> (min, max)

    @model_validator(mode="after")
    def _ranges(self):
        for name, value in self:
            if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, float) for v in value):
                _check_range(f"{type(self).__name__}.{name}", value, *self._bounds.get(name, (None, None)))
        return self


class BodyConfig(_Section):
    """Pose augmentation (limb lengths, mirroring) and body thickness."""

    mirror_probability: float = Field(0.5, ge=0.0, le=1.0)  # swap the person's left and right
    bone_scale: BoneScaleConfig | None = Field(default_factory=BoneScaleConfig)  # limb lengths; None: keep the pose's
    girth: FloatRange = (0.85, 1.25)  # thickness multiplier of the whole body
    group_jitter: float = Field(0.12, ge=0.0, le=0.5)  # each THICKNESS_GROUP gets girth * U(1 -/+ this)
    _bounds = {"girth": (0.3, 3.0)}


class AppearanceConfig(_Section):
    """Clothing-like colour groups: skin, hair, top, bottom, shoes; sleeve and leg lengths."""

    sleeve_weights: tuple[float, float, float] = (0.25, 0.35, 0.4)  # none, short, long
    shorts_probability: float = Field(0.25, ge=0.0, le=1.0)
    bald_probability: float = Field(0.1, ge=0.0, le=1.0)  # the hair group takes the skin colour
    cloth_saturation: FloatRange = (0.0, 0.9)  # HSV, drawn uniformly, hue uniform over the circle
    cloth_value: FloatRange = (0.08, 0.95)
    color_jitter: float = Field(0.06, ge=0.0, le=0.5)  # +- on each sRGB channel of skin and hair
    _bounds = {"cloth_saturation": (0.0, 1.0), "cloth_value": (0.0, 1.0)}

    @field_validator("sleeve_weights")
    @classmethod
    def _weights(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) < 0 or sum(v) <= 0:
            raise ValueError(f"must be non-negative with a positive sum, got {list(v)}")
        return v


class LightingConfig(_Section):
    """One directional light (from the camera's side of the person) plus hemisphere ambient."""

    elevation_deg: FloatRange = (10.0, 80.0)  # above the horizon
    azimuth_from_camera_deg: FloatRange = (-120.0, 120.0)  # 0 = from behind the camera
    intensity: FloatRange = (0.5, 1.3)
    ambient: FloatRange = (0.15, 0.55)  # sky brightness; the ground bounce is 30-70 % of it
    tint: float = Field(0.12, ge=0.0, le=0.5)  # warm/cool shift of the light colour, +- per channel
    _bounds = {"elevation_deg": (-90.0, 90.0), "intensity": (0.0, None), "ambient": (0.0, None)}


class BackgroundConfig(_Section):
    """Background kinds and their weights; photos come from `photo_dir` (none given: no photos)."""

    weights: dict[str, float] = Field(default_factory=lambda: {"solid": 1.0, "gradient": 1.0, "noise": 2.0, "photo": 4.0})
    photo_dir: Path | None = None
    photo_crop_scale: FloatRange = (0.35, 1.0)  # crop side / largest crop of the output aspect
    noise_cell_px: FloatRange = (3.0, 96.0)  # drawn log-uniformly
    _bounds = {"photo_crop_scale": (0.01, 1.0), "noise_cell_px": (0.5, None)}

    @field_validator("weights")
    @classmethod
    def _kinds(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(BACKGROUND_KINDS))
        if unknown:
            raise ValueError(f"unknown background kinds {unknown}; known: {list(BACKGROUND_KINDS)}")
        if any(w < 0 for w in v.values()):
            raise ValueError(f"weights must be non-negative, got {v}")
        return v

    @model_validator(mode="after")
    def _some_kind(self) -> "BackgroundConfig":
        if sum(self.active_weights().values()) <= 0:
            raise ValueError(f"no background kind has a positive weight (photo needs photo_dir): {self.weights}")
        return self

    def active_weights(self) -> dict[str, float]:
        """The weights in BACKGROUND_KINDS order, with photo dropped when there is no photo_dir."""
        return {k: self.weights.get(k, 0.0) for k in BACKGROUND_KINDS if k != "photo" or self.photo_dir is not None}


class OccluderConfig(_Section):
    """Random boxes and cylinders between the camera and the body."""

    probability: float = Field(0.25, ge=0.0, le=1.0)  # a scene has occluders at all
    count: tuple[int, int] = (1, 2)
    weights: dict[str, float] = Field(default_factory=lambda: {"box": 1.0, "cylinder": 1.0})
    half_extent_mm: FloatRange = (40.0, 180.0)  # box half sides; cylinder radius is 0.5-1x, half height 1-2.5x
    toward_camera: FloatRange = (0.05, 0.35)  # fraction of the way from a body joint to the camera
    _bounds = {"half_extent_mm": (1.0, None), "toward_camera": (0.0, 0.95)}

    @field_validator("weights")
    @classmethod
    def _kinds(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(OCCLUDER_KINDS))
        if unknown:
            raise ValueError(f"unknown occluder kinds {unknown}; known: {list(OCCLUDER_KINDS)}")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {v}")
        return v

    @field_validator("count")
    @classmethod
    def _count(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 <= v[0] <= v[1] <= 16:
            raise ValueError(f"must satisfy 0 <= low <= high <= 16, got {list(v)}")
        return v


class PostConfig(_Section):
    """Camera-like post-processing (generator/render/post.py), each effect with its own probability."""

    blur_probability: float = Field(0.15, ge=0.0, le=1.0)  # defocus: a Gaussian blur
    blur_sigma_px: FloatRange = (0.5, 1.6)
    motion_probability: float = Field(0.1, ge=0.0, le=1.0)  # motion blur along a uniform direction
    motion_length_px: FloatRange = (2.0, 9.0)
    noise_probability: float = Field(0.3, ge=0.0, le=1.0)  # Gaussian sensor noise, in 8-bit levels
    noise_sigma: FloatRange = (1.0, 6.0)
    color_jitter: float = Field(0.08, ge=0.0, le=0.5)  # per-channel gain 1 +- this, brightness offset +- 20x this levels
    jpeg_quality: tuple[int, int] | None = (70, 95)  # per-frame JPEG quality; None: the player's fixed quality
    _bounds = {"blur_sigma_px": (0.0, 20.0), "motion_length_px": (0.0, 100.0), "noise_sigma": (0.0, 64.0)}

    @field_validator("jpeg_quality")
    @classmethod
    def _quality(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        if v is not None and not 1 <= v[0] <= v[1] <= 100:
            raise ValueError(f"must satisfy 1 <= low <= high <= 100, got {list(v)}")
        return v


class SceneConfig(BaseModel):
    """Everything random about a built-in player frame; part of the run config."""

    model_config = ConfigDict(extra="forbid")

    image_size: tuple[int, int] = (256, 256)  # [width, height]; overrides the camera profiles' sizes
    # Renders add crop-like framings (the person filling most of the image) to the wide shots.
    camera: CameraSamplerConfig = Field(default_factory=lambda: CameraSamplerConfig(profiles=[H36M_PROFILE, PHONE_PROFILE, CROP_PROFILE]))
    baseline_mm: float = Field(DEFAULT_BASELINE_MM, gt=0)
    body_model: Literal["human", "mannequin"] = "human"  # an Anny human body, or the capsule mannequin
    body: BodyConfig = Field(default_factory=BodyConfig)
    human: HumanConfig = Field(default_factory=HumanConfig)
    appearance: AppearanceConfig = Field(default_factory=AppearanceConfig)
    lighting: LightingConfig = Field(default_factory=LightingConfig)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    occluders: OccluderConfig = Field(default_factory=OccluderConfig)
    post: PostConfig = Field(default_factory=PostConfig)
    pose_attempts: int = Field(20, ge=1)  # poses tried per frame before giving up on the camera rule

    @field_validator("image_size")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not (0 < v[0] <= 8192 and 0 < v[1] <= 8192):
            raise ValueError(f"must be [width, height] within 1..8192, got {list(v)}")
        return v

    @property
    def render_camera(self) -> CameraSamplerConfig:
        """The camera distribution at this config's image size (a few microseconds; not cached,
        so a `model_copy(update=...)` of the config cannot carry a stale one)."""
        return self.camera.with_image_size(*self.image_size)


# ------------------------------------------------------------------------------------------------
# The scene: plain numpy, no randomness left.


@dataclasses.dataclass
class BodyStyle:
    """Body thickness and clothing of the mannequin."""

    thickness: np.ndarray  # (len(THICKNESS_GROUPS),) multipliers of the reference radii
    colors: np.ndarray  # (len(COLOR_GROUPS), 3) sRGB in [0, 1]
    sleeve: str  # one of SLEEVES
    legwear: str  # one of LEGWEAR


@dataclasses.dataclass
class HumanBody:
    """The human body of a frame: which identity of the pool, how it is posed, what it wears."""

    identity: int  # index into the run's BodyPool
    phenotype: np.ndarray  # (6,) Anny phenotype of that identity (generator/body/model.py)
    pose: BodyPose  # segment motions, world mm
    clothing: Clothing


@dataclasses.dataclass
class Lighting:
    """A directional light and a sky/ground ambient, all colours linear RGB."""

    direction: np.ndarray  # (3,) world, unit, pointing towards the light
    color: np.ndarray  # (3,) intensity times tint
    sky: np.ndarray  # (3,) ambient from above
    ground: np.ndarray  # (3,) ambient from below


@dataclasses.dataclass
class Background:
    """What fills the pixels the body and occluders leave; the renderer resolves photos."""

    kind: str  # one of BACKGROUND_KINDS
    colors: np.ndarray  # (2, 3) sRGB: solid uses the first; gradient and noise blend both
    direction: np.ndarray  # (2,) unit gradient direction in the image (x right, y down)
    cell_px: float  # noise cell size
    roughness: float  # noise octave amplitude ratio
    offset: np.ndarray  # (2,) noise lattice offset in cells
    photo: float  # in [0, 1): picks photo floor(photo * n) of the sorted folder listing
    crop_scale: float  # photo crop size relative to the largest crop with the image's aspect
    crop_position: np.ndarray  # (2,) in [0, 1]: where the crop sits in the slack (0 = left/top)
    flip: bool  # photo mirrored horizontally


@dataclasses.dataclass
class Occluders:
    """K boxes/cylinders: a unit shape placed by centre + axes (columns = half extents)."""

    kind: np.ndarray  # (K,) int, index into OCCLUDER_KINDS
    center: np.ndarray  # (K, 3) world mm
    axes: np.ndarray  # (K, 3, 3) world mm; cylinders run along their third axis
    color: np.ndarray  # (K, 3) sRGB

    @staticmethod
    def none() -> "Occluders":
        return Occluders(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)))

    def __len__(self) -> int:
        return int(self.kind.shape[0])


@dataclasses.dataclass
class PostEffects:
    """What the camera does to the rendered image (zero/neutral values: nothing)."""

    blur_sigma_px: float
    motion_length_px: float
    motion_angle: float  # radians, image x right, y down
    gain: np.ndarray  # (3,) per-channel
    offset: float  # 8-bit levels
    noise_sigma: float  # 8-bit levels
    noise_seed: int
    jpeg_quality: int | None  # None: the player's

    @property
    def active(self) -> bool:
        return bool(self.blur_sigma_px > 0 or self.motion_length_px > 0 or self.noise_sigma > 0 or self.offset != 0 or np.any(self.gain != 1))

    @staticmethod
    def none() -> "PostEffects":
        return PostEffects(0.0, 0.0, 0.0, np.ones(3), 0.0, 0.0, 0, None)


@dataclasses.dataclass
class Scene:
    """Everything needed to draw one frame and derive its ground truth."""

    frame_id: int
    seed: int
    joints_world: np.ndarray  # (17, 3) float64, mm, world z-up
    K: np.ndarray  # (3, 3)
    R: np.ndarray  # (3, 3) world -> camera
    t: np.ndarray  # (3,)
    image_size: tuple[int, int]  # [width, height]
    baseline_mm: float
    source: dict  # {"kind": "clip"|"prior", "clip", "frame", "subject", "action", "mirrored"}
    camera_profile: str
    body: BodyStyle | None  # the mannequin's style; None for a human body
    lighting: Lighting
    background: Background
    occluders: Occluders
    human: HumanBody | None = None  # the human body; None for the mannequin
    post: PostEffects = dataclasses.field(default_factory=PostEffects.none)


@dataclasses.dataclass
class GroundTruth:
    joints_2d: np.ndarray  # (17, 2) px, left (main) camera
    joints_3d: np.ndarray  # (17, 3) camera frame mm
    joints_3d_world: np.ndarray  # (17, 3) mm
    joints_2d_right: np.ndarray  # (17, 2) px, the right view (baseline_mm to camera +x)
    in_image: np.ndarray  # (17,) bool


def scene_ground_truth(scene: Scene) -> GroundTruth:
    """The keypoints of a scene, from its pose and camera with generator.camera's functions."""
    joints_3d = world_to_camera(scene.joints_world, scene.R, scene.t)
    joints_2d = project_points(joints_3d, scene.K)
    return GroundTruth(
        joints_2d=joints_2d,
        joints_3d=joints_3d,
        joints_3d_world=np.array(scene.joints_world, dtype=np.float64, copy=True),
        joints_2d_right=project_points(right_view_points(joints_3d, scene.baseline_mm), scene.K),
        in_image=in_image(joints_2d, scene.image_size, joints_3d[:, 2]),
    )


# ------------------------------------------------------------------------------------------------
# Sampling


def frame_rng(seed: int, frame_id: int) -> np.random.Generator:
    """The generator of one frame: depends on (seed, frame_id) only."""
    return np.random.default_rng([int(seed), int(frame_id)])


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """HSV (..., 3) in [0, 1] to RGB (..., 3) in [0, 1]."""
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    return v[..., None] - v[..., None] * s[..., None] * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)


def _uniform(rng: np.random.Generator, r: FloatRange, size=None):
    return rng.uniform(r[0], r[1], size)


def _choose(rng: np.random.Generator, weights: dict[str, float], n: int) -> list[str]:
    """n names drawn with probability proportional to their weights."""
    names = list(weights)
    cumulative = np.cumsum([weights[k] for k in names])
    return [names[i] for i in np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")]


def _cloth_colors(rng: np.random.Generator, config: AppearanceConfig, n: int) -> np.ndarray:
    hsv = np.stack(
        [rng.random(n), _uniform(rng, config.cloth_saturation, n), _uniform(rng, config.cloth_value, n)], axis=1
    )
    return hsv_to_rgb(hsv)


def _from_table(rng: np.random.Generator, table: np.ndarray, jitter: float) -> np.ndarray:
    """A colour between two neighbouring rows of `table`, jittered per channel."""
    i = int(rng.integers(len(table) - 1))
    c = table[i] + rng.random() * (table[i + 1] - table[i])
    return np.clip(c + rng.uniform(-jitter, jitter, 3), 0.0, 1.0)


def sample_body_style(rng: np.random.Generator, body: BodyConfig, appearance: AppearanceConfig) -> BodyStyle:
    girth = _uniform(rng, body.girth)
    thickness = girth * rng.uniform(1.0 - body.group_jitter, 1.0 + body.group_jitter, len(THICKNESS_GROUPS))
    skin = _from_table(rng, SKIN_TONES, appearance.color_jitter)
    hair = _from_table(rng, HAIR_COLORS, appearance.color_jitter)
    if rng.random() < appearance.bald_probability:
        hair = skin
    top, bottom, shoes = _cloth_colors(rng, appearance, 3)
    sleeve = _choose(rng, dict(zip(SLEEVES, appearance.sleeve_weights)), 1)[0]
    legwear = LEGWEAR[0] if rng.random() < appearance.shorts_probability else LEGWEAR[1]
    return BodyStyle(thickness=thickness, colors=np.stack([skin, hair, top, bottom, shoes]), sleeve=sleeve, legwear=legwear)


def sample_clothing(rng: np.random.Generator, human: HumanConfig, appearance: AppearanceConfig) -> Clothing:
    """Skin, hair and garments of a human body, from the same appearance ranges as the mannequin's."""
    skin = _from_table(rng, SKIN_TONES, appearance.color_jitter)
    hair = _from_table(rng, HAIR_COLORS, appearance.color_jitter)
    if rng.random() < appearance.bald_probability:
        hair = skin
    cloth = _cloth_colors(rng, appearance, 5)
    sleeve = _choose(rng, dict(zip(SLEEVES, appearance.sleeve_weights)), 1)[0]
    sleeve_end = _uniform(rng, {"none": human.sleeveless_end, "short": human.short_sleeve_end, "long": human.long_sleeve_end}[sleeve])
    leg_end = _uniform(rng, human.shorts_end if rng.random() < appearance.shorts_probability else human.trousers_end)
    waist, neckline = _uniform(rng, human.waist), _uniform(rng, human.neckline)
    patterns = pick(rng, human.pattern_weights, PATTERNS, 2)
    periods = np.exp(rng.uniform(*np.log(human.pattern_period_mm), 2))
    return Clothing(
        skin=skin, hair=hair, eye=np.array([0.22, 0.15, 0.1]) * rng.uniform(0.4, 1.4), top=cloth[0], top2=cloth[1], bottom=cloth[2],
        bottom2=cloth[3], shoes=cloth[4] * 0.6, sleeve_end=float(sleeve_end), leg_end=float(leg_end), waist=float(waist), neckline=float(neckline), top_pattern=int(patterns[0]),
        bottom_pattern=int(patterns[1]), top_period_mm=float(periods[0]), bottom_period_mm=float(periods[1]),
    )


def _pose_human(rng: np.random.Generator, bodies: BodyPool, target: np.ndarray) -> tuple[int, BodyPose, np.ndarray]:
    """A random identity of the pool posed like `target`; its joints (17, 3) are the frame's ground
    truth. The body keeps its own bone lengths, so it is lifted or lowered to keep the target's
    lowest ankle height (feet on the ground stay on it)."""
    identity = int(rng.integers(len(bodies)))
    pose = pose_body(bodies.rigs[identity], target)
    joints = posed_joints(bodies.rigs[identity], pose)
    lift = np.array([0.0, 0.0, target[FEET, 2].min() - joints[FEET, 2].min()])
    return identity, BodyPose(pose.rotations, pose.translations + lift), joints + lift


def sample_post_effects(rng: np.random.Generator, config: PostConfig) -> PostEffects:
    u = rng.random(3)
    blur = _uniform(rng, config.blur_sigma_px) if u[0] < config.blur_probability else 0.0
    motion = _uniform(rng, config.motion_length_px) if u[1] < config.motion_probability else 0.0
    angle = rng.uniform(0.0, np.pi)
    noise = _uniform(rng, config.noise_sigma) if u[2] < config.noise_probability else 0.0
    gain = 1.0 + rng.uniform(-config.color_jitter, config.color_jitter, 3)
    offset = 20.0 * rng.uniform(-config.color_jitter, config.color_jitter)
    quality = None if config.jpeg_quality is None else int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    return PostEffects(float(blur), float(motion), float(angle), gain, float(offset), float(noise), int(rng.integers(2**31)), quality)


def sample_lighting(rng: np.random.Generator, config: LightingConfig, camera_azimuth: float) -> Lighting:
    elevation = np.deg2rad(_uniform(rng, config.elevation_deg))
    azimuth = camera_azimuth + np.deg2rad(_uniform(rng, config.azimuth_from_camera_deg))
    direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    warm = rng.uniform(-config.tint, config.tint)
    tint = np.array([1.0 + warm, 1.0, 1.0 - warm])
    sky = _uniform(rng, config.ambient) * np.array([1.0 - 0.5 * warm, 1.0, 1.0 + 0.5 * warm])
    return Lighting(direction=direction, color=_uniform(rng, config.intensity) * tint, sky=sky, ground=sky * rng.uniform(0.3, 0.7))


def sample_background(rng: np.random.Generator, config: BackgroundConfig) -> Background:
    kind = _choose(rng, config.active_weights(), 1)[0]
    angle = rng.uniform(0.0, 2.0 * np.pi)
    colors = hsv_to_rgb(np.stack([rng.random(2), rng.uniform(0.0, 0.8, 2), rng.uniform(0.1, 1.0, 2)], axis=1))
    return Background(
        kind=kind,
        colors=colors,
        direction=np.array([np.cos(angle), np.sin(angle)]),
        cell_px=float(np.exp(_uniform(rng, tuple(np.log(config.noise_cell_px))))),
        roughness=float(rng.uniform(0.35, 0.75)),
        offset=rng.uniform(0.0, 4096.0, 2),
        photo=float(rng.random()),
        crop_scale=float(_uniform(rng, config.photo_crop_scale)),
        crop_position=rng.random(2),
        flip=bool(rng.random() < 0.5),
    )


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 3, 3) uniformly random rotations (from unit quaternions)."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return quat_to_matrix(q)


NEAR_CLEARANCE_MM = 200.0  # occluders keep at least this far from the camera centre


def sample_occluders(rng: np.random.Generator, config: OccluderConfig, joints_world: np.ndarray, camera_pos: np.ndarray) -> Occluders:
    """Boxes and cylinders placed on the way from random joints to the camera."""
    if rng.random() >= config.probability:
        return Occluders.none()
    n = int(rng.integers(config.count[0], config.count[1] + 1))
    kind = np.array([OCCLUDER_KINDS.index(k) for k in _choose(rng, config.weights, n)], dtype=np.int64)
    half = _uniform(rng, config.half_extent_mm, (n, 3))
    cylinder = kind == OCCLUDER_KINDS.index("cylinder")
    # Cylinders: a round cross-section (radius 0.5-1x) and a longer axis (1-2.5x).
    half[cylinder, 1] = half[cylinder, 0] = half[cylinder, 0] * rng.uniform(0.5, 1.0, int(cylinder.sum()))
    half[cylinder, 2] *= rng.uniform(1.0, 2.5, int(cylinder.sum()))
    rot = _random_rotations(rng, n)
    target = joints_world[rng.integers(0, joints_world.shape[0], n)]
    frac = _uniform(rng, config.toward_camera, n)
    center = target + frac[:, None] * (camera_pos - target) + rng.normal(0.0, 0.3, (n, 3)) * half
    # Keep each whole shape (its bounding sphere) clear of the camera: push it back if needed.
    offset = center - camera_pos
    dist = np.linalg.norm(offset, axis=1)
    min_dist = NEAR_CLEARANCE_MM + np.linalg.norm(half, axis=1)
    center = np.where((dist < min_dist)[:, None], camera_pos + offset * (min_dist / np.maximum(dist, 1e-9))[:, None], center)
    return Occluders(
        kind=kind,
        center=center,
        axes=rot * half[:, None, :],
        color=hsv_to_rgb(np.stack([rng.random(n), rng.uniform(0.0, 0.9, n), rng.uniform(0.1, 0.95, n)], axis=1)),
    )


def _augment_pose(rng: np.random.Generator, joints: np.ndarray, config: BodyConfig) -> tuple[np.ndarray, bool]:
    """Bone-length scaling and mirroring with generator.augment (the camera's azimuth already
    covers every facing, so there is no yaw)."""
    joints = joints.astype(np.float64)
    if config.bone_scale is not None:
        joints = scale_bones(joints, sample_bone_scales(rng, 1, config.bone_scale, dtype=np.float64)[0])
    mirrored = bool(rng.random() < config.mirror_probability)
    return (mirror(joints) if mirrored else joints), mirrored


def _source(bank: PoseBank, row: int, mirrored: bool) -> dict:
    clip = bank.clips[int(bank.clip_index[row])]
    return {
        "kind": "prior" if clip.path == PRIOR else "clip",
        "clip": clip.name,
        "frame": int(bank.frame_index[row]),
        "subject": clip.subject,
        "action": clip.action,
        "mirrored": mirrored,
    }


def sample_scene(config: SceneConfig, bank: PoseBank, seed: int, frame_id: int) -> Scene:
    """Draw one frame's scene; a function of (config, bank, seed, frame_id) alone.

    The pose is drawn from the bank and augmented, then a camera from the Core sampler; when the
    sampler cannot frame the pose (its in-frame rule), another pose is drawn, up to
    `config.pose_attempts` times.
    """
    if len(bank) == 0:
        raise ValueError("the pose bank is empty")
    rng = frame_rng(seed, frame_id)
    cam_config = config.render_camera
    bodies = BodyPool.for_config(config.human) if config.body_model == "human" else None
    for _ in range(config.pose_attempts):
        row = int(rng.integers(len(bank)))
        joints, mirrored = _augment_pose(rng, bank.joints[row], config.body)
        if bodies is not None:
            identity, body_pose, joints = _pose_human(rng, bodies, joints)
        cams, accepted = sample_cameras_for_poses(rng, joints[None], cam_config)
        if accepted[0]:
            break
    else:
        raise CameraRuleError(
            f"frame {frame_id}: no pose out of {config.pose_attempts} could be framed by the camera sampler under its "
            f"rule ({camera_rule(cam_config)}); loosen the camera ranges"
        )
    K, R, t = cams.K[0], cams.R[0], cams.t[0]
    camera_pos = camera_center(R, t)
    to_camera = camera_pos - joints[ROOT]
    if bodies is None:
        body, human = sample_body_style(rng, config.body, config.appearance), None
    else:
        clothing = sample_clothing(rng, config.human, config.appearance)
        body, human = None, HumanBody(identity, bodies.identities.phenotype[identity], body_pose, clothing)
    lighting = sample_lighting(rng, config.lighting, float(np.arctan2(to_camera[1], to_camera[0])))
    background = sample_background(rng, config.background)
    occluders = sample_occluders(rng, config.occluders, joints, camera_pos)
    post = sample_post_effects(rng, config.post)
    return Scene(
        frame_id=int(frame_id),
        seed=int(seed),
        joints_world=joints,
        K=K,
        R=R,
        t=t,
        image_size=(int(config.image_size[0]), int(config.image_size[1])),
        baseline_mm=float(config.baseline_mm),
        source=_source(bank, row, mirrored),
        camera_profile=cam_config.profiles[int(cams.profile[0])].name,
        body=body,
        lighting=lighting,
        background=background,
        occluders=occluders,
        human=human,
        post=post,
    )
