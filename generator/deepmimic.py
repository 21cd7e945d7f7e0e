"""DeepMimic motion clips (Peng et al. 2018): JSON keyframes on the `humanoid3d` character.

A clip is `{"Loop": ..., "Frames": [[dt, root xyz, root quat, joint values...], ...]}`. The
values after the root follow the character's joints in ID order: 4 (a quaternion w, x, y, z,
local to the parent) for a spherical joint, 1 (an angle in radians about the joint's local z
axis) for a revolute one (knees, elbows), none for a fixed one (wrists). `dt` is the time from
this keyframe to the next, so spacing varies within and between clips. The character
(`humanoid3d.txt`, vendored) gives each joint's offset from its parent in metres; it is Y up,
x forward, z to the character's right.

Keyframes are resampled to a fixed rate with slerp (root position and revolute angles linearly)
before forward kinematics; `fps=None` keeps the keyframes.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
from pathlib import Path

import numpy as np

from generator.bvh import MAX_ABS_VALUE
from generator.mocap import DATA_DIR, DEFAULT_FPS, SkeletonProfile, compile_name_map, nodes_to_world, units_to_mm

CHARACTER_PATH = DATA_DIR / "deepmimic" / "characters" / "humanoid3d.txt"
JOINT_TYPES = ("none", "spherical", "revolute", "fixed")
REQUIRED_JOINTS = (
    "root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow", "right_wrist",
    "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip


# Bounds of plausible values (larger ones are corruption): the root within 10 km (1e7 mm, as for
# BVH), angles and quaternion components within MAX_ABS_VALUE, a clip at most an hour long (the
# resampled frames of a longer one would not fit in memory).
MAX_ROOT_M = MAX_ABS_VALUE / 1000.0
MAX_DURATION_S = 3600.0


class DeepMimicFormatError(ValueError):
    """A malformed DeepMimic clip or character file; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Character:
    """The kinematic tree of a DeepMimic character (joints in ID order, parents first)."""

    path: str
    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int64, -1 for the root
    offsets: np.ndarray  # (J, 3) metres, from the parent joint, in the parent's frame
    types: tuple[str, ...]
    head_top: np.ndarray  # (3,) top of the head body, in the neck frame
    soles: dict[str, np.ndarray]  # ankle joint -> (4, 3) sole corners of its foot box, in its frame


@functools.lru_cache(maxsize=4)
def read_character(path: str | Path = CHARACTER_PATH) -> Character:
    """The joints of a character file, plus the head top and soles from its body shapes."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        joints = sorted(data["Skeleton"]["Joints"], key=lambda j: int(j["ID"]))
        names = tuple(str(j["Name"]) for j in joints)
        parents = np.array([int(j["Parent"]) for j in joints], dtype=np.int64)
        offsets = np.array([[float(j[f"Attach{a}"]) for a in "XYZ"] for j in joints])
        twists = np.array([[float(j.get(f"AttachTheta{a}", 0.0)) for a in "XYZ"] for j in joints])
        types = tuple(str(j["Type"]) for j in joints)
        bodies = {str(b["Name"]): b for b in data.get("BodyDefs", [])}
    except OSError as e:
        raise DeepMimicFormatError(f"{path}: cannot read character: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise DeepMimicFormatError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise DeepMimicFormatError(f"{path}: not a DeepMimic character (Skeleton.Joints): {e!r}") from None
    missing = [n for n in REQUIRED_JOINTS if n not in names]
    unknown = sorted({t for t in types if t not in JOINT_TYPES})
    if missing or unknown or np.any(twists != 0) or parents[0] != -1 or np.any(parents[1:] >= np.arange(1, len(names))):
        raise DeepMimicFormatError(
            f"{path}: unsupported character (missing joints {missing}, unknown joint types {unknown}, "
            "non-zero AttachTheta, or parents not listed before children)"
        )
    neck = bodies.get("neck", {})
    radius = 0.5 * float(neck.get("Param0", 0.0))  # sphere diameter
    head_top = np.array([float(neck.get("AttachX", 0.0)), float(neck.get("AttachY", 0.0)) + radius, 0.0])
    soles = {}
    for ankle in ("right_ankle", "left_ankle"):
        box = bodies.get(ankle, {})
        centre = np.array([float(box.get(f"Attach{a}", 0.0)) for a in "XYZ"])
        half = 0.5 * np.array([float(box.get(f"Param{i}", 0.0)) for i in range(3)])
        soles[ankle] = centre + np.array([[sx * half[0], -half[1], sz * half[2]] for sx in (-1, 1) for sz in (-1, 1)])
    return Character(str(path), names, parents, offsets, types, head_top, soles)


def deepmimic_profile(character: Character) -> SkeletonProfile:
    """h36m17 from the DeepMimic joints; head points from the character's head sphere."""
    return SkeletonProfile(
        "deepmimic",
        {
            "Hip": "root",  # the pelvis centre, midway between the hip joints
            "RHip": "right_hip",
            "RKnee": "right_knee",
            "RFoot": "right_ankle",
            "LHip": "left_hip",
            "LKnee": "left_knee",
            "LFoot": "left_ankle",
            "Spine": "chest",  # 0.236 m above the pelvis (Human3.6M: 0.234)
            "Thorax": "neck",  # base of the neck, level with the shoulders
            "Neck/Nose": {"joint": "neck", "offset": [0.0, 0.11, 0.0]},  # upper neck, chin level
            "Head": {"joint": "neck", "offset": character.head_top.tolist()},  # top of the head sphere
            "LShoulder": "left_shoulder",
            "LElbow": "left_elbow",
            "LWrist": "left_wrist",
            "RShoulder": "right_shoulder",
            "RElbow": "right_elbow",
            "RWrist": "right_wrist",
        },
        units="m",
        up_axis="y",
        floor_points=tuple({"joint": a, "offset": c.tolist()} for a, corners in character.soles.items() for c in corners),
    )


@dataclasses.dataclass(frozen=True)
class DeepMimicClip:
    """Keyframes: times (K,) s, root positions (K, 3) m, local rotations (K, J, 4) w-x-y-z."""

    path: str
    times: np.ndarray
    root_pos: np.ndarray
    quats: np.ndarray
    loop: str


def _field_names(character: Character) -> list[str]:
    fields = ["dt", "root x", "root y", "root z", "root qw", "root qx", "root qy", "root qz"]
    for name, kind in zip(character.names[1:], character.types[1:]):
        if kind == "spherical":
            fields += [f"{name} q{c}" for c in "wxyz"]
        elif kind == "revolute":
            fields.append(f"{name} angle")
    return fields


def read_deepmimic(path: str | Path, character: Character | None = None) -> DeepMimicClip:
    """Parse and validate one clip; every error names the file, and the frame and value at fault."""
    path = Path(path)
    character = character or read_character()
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as e:
        raise DeepMimicFormatError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise DeepMimicFormatError(f"{path}: not UTF-8 text: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise DeepMimicFormatError(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:  # an integer of over 4300 digits, nesting too deep
        raise DeepMimicFormatError(f"{path}: not readable JSON: {e}") from None
    if not isinstance(data, dict) or "Frames" not in data:
        raise DeepMimicFormatError(f"{path}: not a DeepMimic clip: expected a JSON object with a \"Frames\" list")
    frames = data["Frames"]
    if not isinstance(frames, list) or not frames:
        raise DeepMimicFormatError(f"{path}: \"Frames\" must be a non-empty list of frames")
    fields = _field_names(character)
    width = len(fields)
    for i, frame in enumerate(frames):
        if not isinstance(frame, list):
            raise DeepMimicFormatError(f"{path}: frame {i} is a {type(frame).__name__}, not a list of {width} numbers")
        if len(frame) != width:
            raise DeepMimicFormatError(f"{path}: frame {i} has {len(frame)} values, expected {width} for {character.path}")
    try:
        numbers = set(map(type, itertools.chain.from_iterable(frames))) <= {int, float}  # no string, bool, null, list
        values = np.asarray(frames, dtype=np.float64) if numbers else None
    except OverflowError:  # an integer beyond float64
        values = None
    if values is None or not np.isfinite(values).all():
        for i, frame in enumerate(frames):  # slow path, only on error: find the culprit
            for j, v in enumerate(frame):
                if type(v) not in (int, float) or not abs(v) <= 1e308:  # NaN compares False
                    raise DeepMimicFormatError(f"{path}: frame {i}, value {j} ({fields[j]}) is {v!r:.40}, not a finite number")
    limits = np.full(width, MAX_ABS_VALUE)
    limits[1:4] = MAX_ROOT_M
    absurd = np.abs(values) > limits
    if absurd.any():
        i, j = (int(x[0]) for x in np.nonzero(absurd))
        raise DeepMimicFormatError(f"{path}: frame {i}, value {j} ({fields[j]}) is {values[i, j]:g}, beyond +-{limits[j]:g}: not a plausible value")
    dt = values[:, 0]
    if np.any(dt < 0):
        i = int(np.flatnonzero(dt < 0)[0])
        raise DeepMimicFormatError(f"{path}: frame {i} has a negative dt {dt[i]}")
    times = np.concatenate([[0.0], np.cumsum(dt[:-1])])
    if len(frames) > 1 and times[-1] <= 0:
        raise DeepMimicFormatError(f"{path}: all dt are 0: the clip has no duration")
    if times[-1] > MAX_DURATION_S:
        raise DeepMimicFormatError(f"{path}: the dt add up to {times[-1]:g} s, longer than any clip ({MAX_DURATION_S:g} s)")
    quats = np.zeros((len(frames), len(character.names), 4))
    quats[..., 0] = 1.0
    quats[:, 0] = values[:, 4:8]
    col = 8
    for j, kind in enumerate(character.types[1:], start=1):
        if kind == "spherical":
            quats[:, j] = values[:, col : col + 4]
            col += 4
        elif kind == "revolute":
            half = 0.5 * values[:, col]
            quats[:, j, 0], quats[:, j, 3] = np.cos(half), np.sin(half)
            col += 1
    norms = np.linalg.norm(quats, axis=-1)
    if np.any(norms < 1e-6):
        i, j = (int(x[0]) for x in np.nonzero(norms < 1e-6))
        raise DeepMimicFormatError(f"{path}: frame {i}: the quaternion of {character.names[j]!r} is zero")
    return DeepMimicClip(str(path), times, values[:, 1:4], quats / norms[..., None], str(data.get("Loop", "none")))


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Shortest-arc spherical interpolation of unit quaternions (..., 4); alpha broadcasts over (...)."""
    dot = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    alpha = np.asarray(alpha)[..., None]
    theta = np.arccos(dot)
    sin = np.sin(theta)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact enough
    safe = np.where(near, 1.0, sin)
    w0 = np.where(near, 1.0 - alpha, np.sin((1.0 - alpha) * theta) / safe)
    w1 = np.where(near, alpha, np.sin(alpha * theta) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample(clip: DeepMimicClip, fps: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Root positions (F, 3) and local quaternions (F, J, 4) at a fixed rate, and the rate."""
    duration = float(clip.times[-1])
    if not fps or len(clip.times) < 2:
        rate = (len(clip.times) - 1) / duration if duration > 0 else 0.0
        return clip.root_pos, clip.quats, rate
    out_t = np.arange(0.0, duration + 1e-9, 1.0 / fps)
    i = np.searchsorted(clip.times, out_t, side="right").clip(1, len(clip.times) - 1) - 1
    span = clip.times[i + 1] - clip.times[i]
    alpha = np.where(span > 0, (out_t - clip.times[i]) / np.where(span > 0, span, 1.0), 0.0).clip(0.0, 1.0)
    root = clip.root_pos[i] + alpha[:, None] * (clip.root_pos[i + 1] - clip.root_pos[i])
    quats = slerp(clip.quats[i], clip.quats[i + 1], alpha[:, None])
    return root, quats, float(fps)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4) in w, x, y, z order."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=-2,
    )


def forward_kinematics(character: Character, root_pos: np.ndarray, quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions (F, J, 3) m and world rotations (F, J, 3, 3), character frame (Y up)."""
    local = quat_to_matrix(quats)
    pos = np.zeros(quats.shape[:2] + (3,))
    rot = np.zeros(quats.shape[:2] + (3, 3))
    pos[:, 0], rot[:, 0] = root_pos, local[:, 0]
    for j in range(1, len(character.names)):
        p = int(character.parents[j])
        pos[:, j] = pos[:, p] + rot[:, p] @ character.offsets[j]
        rot[:, j] = rot[:, p] @ local[:, j]
    return pos, rot


def load_deepmimic_joints(path: str | Path, *, fps: float | None = DEFAULT_FPS) -> tuple[np.ndarray, float]:
    """h36m17 joints (F, 17, 3) float64 world mm of one clip (floor at z = 0), and its frame rate."""
    char = read_character()
    clip = read_deepmimic(path, char)
    root, quats, rate = resample(clip, fps)
    pos, rot = forward_kinematics(char, root, quats)
    profile = deepmimic_profile(char)
    compiled = compile_name_map(profile, char.names, char.parents, str(path))
    return nodes_to_world(compiled, pos, rot, units_to_mm(profile.units), profile.up_axis, str(path)), rate
