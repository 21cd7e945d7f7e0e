"""Motion-capture clips (BVH, DeepMimic JSON) as h36m17 poses in the world frame.

`load_clip(path)` reads one clip and returns joints (F, 17, 3) float32 in world millimetres,
z up, with the lowest foot point of the whole clip on the floor z = 0, plus its `ClipInfo`.
Each source skeleton reaches h36m17 through a *name map* (`SkeletonProfile`), detected from
its joint names or given by the user. docs/conventions.md ("Pose sources") is the reference.

A name-map entry, per h36m17 joint, is one of:
- `"LeftKnee"`: a joint (or an end site, `"Head/End"`);
- `{"LeftHip": 0.5, "RightHip": 0.5}`: a weighted blend of joints (weights sum to 1);
- `{"joint": "CC_Base_Head", "offset": [0, 19, 1]}`: a point fixed in a joint's own frame,
  in file units (for landmarks no joint marks, such as the top of the head).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import logging
import re
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from generator import skeleton as sk
from generator.bvh import BVHSkeleton, forward_kinematics, read_bvh
from generator.poses import ClipInfo

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data" / "mocap"
DEFAULT_FPS = 30.0
BVH_SUFFIXES = (".bvh",)
DEEPMIMIC_SUFFIXES = (".txt", ".json")

# Millimetres per file unit. CMU's ASF unit is 1/0.45 inch (mocap.cs.cmu.edu FAQ: ×0.056444 → m).
UNITS_MM: dict[str, float] = {"mm": 1.0, "cm": 10.0, "m": 1000.0, "in": 25.4, "inch": 25.4, "cmu": 56.444}
UP_AXES = ("y", "z")

MapEntry = Union[str, Mapping[str, Any]]


class NameMapError(ValueError):
    """A name map that does not fit the skeleton (unmapped h36m17 joints, unknown joint names, ...)."""


class ClipError(ValueError):
    """A clip that cannot be turned into poses (unknown skeleton, no frames, ...); names the file."""


# ------------------------------------------------------------------------------------------------
# Frames and units


def units_to_mm(units: str | float) -> float:
    """Millimetres per file unit from a name ("cm", "cmu", ...) or a number."""
    if isinstance(units, str):
        try:
            return UNITS_MM[units.lower()]
        except KeyError:
            raise ValueError(f"unknown units {units!r}; use one of {sorted(UNITS_MM)} or mm per unit as a number") from None
    value = float(units)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"units must be a positive number of mm per file unit, got {units!r}")
    return value


# Y-up files (x, y, z) → world (x, −z, y): a +90° rotation about x, so right-handedness is kept
# (det = +1) and a figure is never mirrored. Z-up files keep their axes.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
Y_UP_TO_Z_UP.setflags(write=False)


def to_world(points: np.ndarray, mm_per_unit: float, up_axis: str) -> np.ndarray:
    """File-frame points (..., 3) → world millimetres, z up (docs/conventions.md)."""
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {UP_AXES}, got {up_axis!r}")
    points = np.asarray(points, dtype=np.float64) * mm_per_unit
    return points @ Y_UP_TO_Z_UP.T if up_axis == "y" else points


# ------------------------------------------------------------------------------------------------
# Name maps


@dataclasses.dataclass(frozen=True)
class SkeletonProfile:
    """How one source skeleton becomes h36m17: the map, its units and up axis."""

    name: str
    joints: Mapping[str, MapEntry]  # h36m17 joint name -> entry
    units: str | float | None = None  # None: guess from the leg length
    up_axis: str | None = None  # None: guess from the clip
    detect: tuple[str, ...] = ()  # all of these names present -> this profile
    # Points whose lowest position over a clip defines the floor; empty: the mapped feet and
    # everything below them (toes, end sites).
    floor_points: tuple[MapEntry, ...] = ()


def _mid(a: str, b: str) -> dict[str, float]:
    return {a: 0.5, b: 0.5}


def _cmu_joints(n: dict[str, str]) -> dict[str, MapEntry]:
    """CMU ASF topology (cgspeed BVH); `n` names its joints in one release's spelling."""
    return {
        "Hip": _mid(n["lhip"], n["rhip"]),  # the pelvis centre; CMU's root sits ~10 cm higher
        "RHip": n["rhip"],
        "RKnee": n["rknee"],
        "RFoot": n["rankle"],
        "LHip": n["lhip"],
        "LKnee": n["lknee"],
        "LFoot": n["lankle"],
        # halfway from the pelvis centre to the thorax, as in Human3.6M (234 of 486 mm)
        "Spine": {n["lhip"]: 0.25, n["rhip"]: 0.25, n["thorax"]: 0.5},
        "Thorax": n["thorax"],  # base of the neck, where both clavicles start
        "Neck/Nose": {n["neck"]: 2 / 3, n["head"]: 1 / 3},  # upper neck, chin level
        "Head": n["head"] + "/End",  # top of the head
        "LShoulder": n["lshoulder"],  # glenohumeral joint (the clavicle starts at the thorax)
        "LElbow": n["lelbow"],
        "LWrist": n["lwrist"],
        "RShoulder": n["rshoulder"],
        "RElbow": n["relbow"],
        "RWrist": n["rwrist"],
    }


_CMU_MAX = dict(  # cgspeed "3dsMax-friendly" release (also bvh11's files)
    lhip="LeftHip", rhip="RightHip", lknee="LeftKnee", rknee="RightKnee", lankle="LeftAnkle", rankle="RightAnkle",
    thorax="lowerneck", neck="Neck", head="Head", lshoulder="LeftShoulder", lelbow="LeftElbow", lwrist="LeftWrist",
    rshoulder="RightShoulder", relbow="RightElbow", rwrist="RightWrist",
)  # fmt: skip
_CMU_MB = dict(  # cgspeed "MotionBuilder-friendly" release (una-dinosauria/cmu-mocap and most copies)
    lhip="LeftUpLeg", rhip="RightUpLeg", lknee="LeftLeg", rknee="RightLeg", lankle="LeftFoot", rankle="RightFoot",
    thorax="Neck", neck="Neck1", head="Head", lshoulder="LeftArm", lelbow="LeftForeArm", lwrist="LeftHand",
    rshoulder="RightArm", relbow="RightForeArm", rwrist="RightHand",
)  # fmt: skip

CMU_PROFILE = SkeletonProfile(
    "cmu", _cmu_joints(_CMU_MAX), units="cmu", up_axis="y", detect=("LHipJoint", "LeftHip", "lowerback", "lowerneck")
)
CMU_MB_PROFILE = SkeletonProfile(
    "cmu_mb", _cmu_joints(_CMU_MB), units="cmu", up_axis="y", detect=("LHipJoint", "LeftUpLeg", "LowerBack", "Neck1")
)

# Character Creator 3 / iClone skeleton (CC_Base_*), cm, Y up. Its head frame has y up, z forward;
# the eyes sit at (0, 8.2, 8.2) cm in it, so the top of the skull is ~11 cm above eye level.
CC_PROFILE = SkeletonProfile(
    "cc",
    {
        "Hip": _mid("CC_Base_L_Thigh", "CC_Base_R_Thigh"),
        "RHip": "CC_Base_R_Thigh",
        "RKnee": "CC_Base_R_Calf",
        "RFoot": "CC_Base_R_Foot",
        "LHip": "CC_Base_L_Thigh",
        "LKnee": "CC_Base_L_Calf",
        "LFoot": "CC_Base_L_Foot",
        "Spine": {"CC_Base_L_Thigh": 0.25, "CC_Base_R_Thigh": 0.25, "CC_Base_L_Clavicle": 0.25, "CC_Base_R_Clavicle": 0.25},
        "Thorax": _mid("CC_Base_L_Clavicle", "CC_Base_R_Clavicle"),  # sternoclavicular notch
        "Neck/Nose": _mid("CC_Base_NeckTwist02", "CC_Base_Head"),  # upper neck, chin level
        "Head": {"joint": "CC_Base_Head", "offset": [0.0, 19.0, 1.0]},  # top of the skull
        "LShoulder": "CC_Base_L_Upperarm",
        "LElbow": "CC_Base_L_Forearm",
        "LWrist": "CC_Base_L_Hand",
        "RShoulder": "CC_Base_R_Upperarm",
        "RElbow": "CC_Base_R_Forearm",
        "RWrist": "CC_Base_R_Hand",
    },
    units="cm",
    up_axis="y",
    detect=("CC_Base_Hip", "CC_Base_L_Thigh", "CC_Base_R_Thigh"),
)

BVH_PROFILES: tuple[SkeletonProfile, ...] = (CMU_PROFILE, CMU_MB_PROFILE, CC_PROFILE)


def detect_profile(names: tuple[str, ...] | list[str]) -> SkeletonProfile | None:
    """The built-in profile whose identifying joints are all present, or None."""
    have = set(names)
    for profile in BVH_PROFILES:
        if all(n in have for n in profile.detect):
            return profile
    return None


def load_name_map(name_map: Mapping[str, Any] | str | Path) -> SkeletonProfile:
    """A user's name map: a dict, or a YAML/JSON file holding one.

    Either the flat map {h36m17 joint: entry}, or {"joints": {...}, "units": ..., "up_axis": ...,
    "floor_points": [...]} to also fix the units, up axis and floor points.
    """
    source = "name map"
    if isinstance(name_map, (str, Path)):
        path = Path(name_map)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise NameMapError(f"{path}: cannot read name map: {e.strerror or e}") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
            raise NameMapError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {e}") from None
    else:
        data = name_map
    if not isinstance(data, Mapping):
        raise NameMapError(f"{source}: a name map must be a mapping of h36m17 joint -> entry, got {type(data).__name__}")
    if "joints" in data:
        unknown = set(data) - {"joints", "units", "up_axis", "floor_points"}
        if unknown:
            raise NameMapError(f"{source}: unknown keys {sorted(unknown)}; allowed: joints, units, up_axis, floor_points")
        joints = data["joints"]
        if not isinstance(joints, Mapping):
            raise NameMapError(f"{source}: 'joints' must be a mapping of h36m17 joint -> entry")
        up = data.get("up_axis")
        if up is not None and str(up).lower() not in UP_AXES:
            raise NameMapError(f"{source}: up_axis must be one of {UP_AXES}, got {up!r}")
        units = data.get("units")
        if units is not None:
            try:
                units_to_mm(units)
            except ValueError as e:
                raise NameMapError(f"{source}: {e}") from None
        floor = data.get("floor_points") or ()
        if isinstance(floor, (str, Mapping)) or not isinstance(floor, (list, tuple)):
            raise NameMapError(f"{source}: floor_points must be a list of entries")
        return SkeletonProfile(source, _canonical_keys(joints, source), units, up and str(up).lower(), (), tuple(floor))
    return SkeletonProfile(source, _canonical_keys(data, source))


def _canonical_keys(joints: Mapping[str, Any], source: str) -> dict[str, MapEntry]:
    lower = {n.lower(): n for n in sk.JOINT_NAMES}
    out: dict[str, MapEntry] = {}
    for key, entry in joints.items():
        name = lower.get(str(key).lower())
        if name is None:
            raise NameMapError(f"{source}: {key!r} is not an h36m17 joint; the joints are {list(sk.JOINT_NAMES)}")
        out[name] = entry
    return out  # unmapped joints are reported by compile_name_map, with every other problem


Local = tuple[tuple[int, int, np.ndarray], ...]  # (output row, node, offset in the node's frame)


@dataclasses.dataclass(frozen=True)
class CompiledMap:
    """A name map bound to one skeleton: points = weights @ node positions, except the rows
    that are points fixed in a node's frame (`local`). The same form serves the floor points."""

    weights: np.ndarray  # (17, J) over the skeleton's nodes
    local: Local
    floor_weights: np.ndarray  # (P, J)
    floor_local: Local
    nodes: tuple[int, ...]  # every node read (FK needs these and their ancestors)

    def joints(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """(F, 17, 3) from node positions (F, J, 3) and rotations (F, J, 3, 3)."""
        return _evaluate(self.weights, self.local, pos, rot)

    def floor(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """(F, P, 3): the points the floor rests on."""
        return _evaluate(self.floor_weights, self.floor_local, pos, rot)


def _evaluate(weights: np.ndarray, local: Local, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    used = np.flatnonzero(np.abs(weights).sum(axis=0))  # nodes FK skipped are NaN: leave them out
    out = np.einsum("kj,fjd->fkd", weights[:, used], pos[:, used])
    for row, node, offset in local:
        out[:, row] = pos[:, node] + rot[:, node] @ offset
    return out


def compile_name_map(
    profile: SkeletonProfile, names: tuple[str, ...], parents: np.ndarray, source: str
) -> CompiledMap:
    """Bind `profile` to a skeleton's node names; every problem is reported at once."""
    index = {n: i for i, n in enumerate(names)}
    problems: list[str] = []
    missing_joints = [n for n in sk.JOINT_NAMES if profile.joints.get(n) is None]
    if missing_joints:
        problems.append(f"unmapped h36m17 joints: {missing_joints}")

    def parse(entry: Any, what: str) -> tuple[dict[int, float], tuple[int, np.ndarray] | None]:
        def node(name: Any) -> int | None:
            if isinstance(name, str) and name in index:
                return index[name]
            close = difflib.get_close_matches(str(name), names, n=3)
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            problems.append(f"{what}: no joint or end site named {name!r} in the skeleton{hint}")
            return None

        if isinstance(entry, str):
            j = node(entry)
            return ({j: 1.0} if j is not None else {}), None
        if isinstance(entry, Mapping) and set(entry) == {"joint", "offset"}:
            j = node(entry["joint"])
            try:
                offset = np.asarray(entry["offset"], dtype=np.float64).reshape(3)
            except (TypeError, ValueError):
                problems.append(f"{what}: offset must be three numbers, got {entry['offset']!r}")
                return {}, None
            return {}, ((j, offset) if j is not None else None)
        if isinstance(entry, Mapping) and entry:
            blend: dict[int, float] = {}
            try:
                total = sum(float(w) for w in entry.values())
            except (TypeError, ValueError):
                problems.append(f"{what}: blend weights must be numbers, got {dict(entry)!r}")
                return {}, None
            if abs(total - 1.0) > 1e-6:
                problems.append(f"{what}: blend weights sum to {total:g}, not 1")
            for name, w in entry.items():
                j = node(name)
                if j is not None:
                    blend[j] = blend.get(j, 0.0) + float(w)
            return blend, None
        problems.append(
            f"{what}: an entry is a joint name, a {{joint: weight}} blend or {{joint: name, offset: [x, y, z]}}; got {entry!r}"
        )
        return {}, None

    def rows(entries: Sequence[Any], labels: Sequence[str]) -> tuple[np.ndarray, Local]:
        weights = np.zeros((len(entries), len(names)))
        local = []
        for row, (entry, label) in enumerate(zip(entries, labels)):
            if entry is None:  # an unmapped joint, already reported
                continue
            blend, point = parse(entry, label)
            for j, w in blend.items():
                weights[row, j] = w
            if point is not None:
                local.append((row, *point))
        return weights, tuple(local)

    weights, local = rows([profile.joints.get(n) for n in sk.JOINT_NAMES], [f"h36m17 {n!r}" for n in sk.JOINT_NAMES])
    floor_entries: list[Any] = list(profile.floor_points)
    if not floor_entries:  # default: the mapped feet and everything below them
        feet_rows = (sk.JOINT_INDEX["RFoot"], sk.JOINT_INDEX["LFoot"])
        feet = {int(j) for k in feet_rows for j in np.flatnonzero(weights[k])} | {n for k, n, _ in local if k in feet_rows}
        floor_entries = [names[d] for d in sorted({d for j in feet for d in _descendants(parents, j)})]
    floor_weights, floor_local = rows(floor_entries, [f"floor point {i}" for i in range(len(floor_entries))])
    if problems:
        raise NameMapError(f"{source}: name map {profile.name!r} does not fit this skeleton: " + "; ".join(problems))
    nodes = set(np.flatnonzero(weights.any(axis=0)).tolist()) | {n for _, n, _ in local}
    nodes |= set(np.flatnonzero(floor_weights.any(axis=0)).tolist()) | {n for _, n, _ in floor_local}
    return CompiledMap(weights, local, floor_weights, floor_local, tuple(sorted(nodes)))


def _descendants(parents: np.ndarray, node: int) -> list[int]:
    inside = np.zeros(len(parents), dtype=bool)
    inside[node] = True
    for j in range(node + 1, len(parents)):  # parents precede children
        if parents[j] >= 0 and inside[parents[j]]:
            inside[j] = True
    return np.flatnonzero(inside).tolist()


# ------------------------------------------------------------------------------------------------
# Guessing units and up axis (only for skeletons without a built-in profile, when not given)


def guess_up_axis(joints: np.ndarray) -> str:
    """'y' or 'z': the file axis along which the head is farthest above the feet, on average."""
    feet = joints[:, [sk.JOINT_INDEX["RFoot"], sk.JOINT_INDEX["LFoot"]]].mean(axis=1)
    rise = (joints[:, sk.JOINT_INDEX["Head"]] - feet).mean(axis=0)
    return "y" if rise[1] >= rise[2] else "z"


def guess_units(joints: np.ndarray) -> str:
    """The unit that makes the median leg (hip→knee→ankle) closest to 850 mm, in log scale."""
    legs = [("RHip", "RKnee", "RFoot"), ("LHip", "LKnee", "LFoot")]
    length = np.median(
        [
            np.linalg.norm(joints[:, sk.JOINT_INDEX[a]] - joints[:, sk.JOINT_INDEX[b]], axis=-1)
            + np.linalg.norm(joints[:, sk.JOINT_INDEX[b]] - joints[:, sk.JOINT_INDEX[c]], axis=-1)
            for a, b, c in legs
        ]
    )
    candidates = ["mm", "cm", "m", "inch", "cmu"]
    return min(candidates, key=lambda u: abs(np.log(max(length, 1e-9) * UNITS_MM[u] / 850.0)))


# ------------------------------------------------------------------------------------------------
# Clips


def is_deepmimic_file(path: Path) -> bool:
    """A .txt/.json that looks like a DeepMimic motion: a JSON object with "Frames" near the top."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and b'"Frames"' in head


def find_clips(folder: str | Path) -> list[Path]:
    """Every BVH and DeepMimic clip under `folder` (recursively), sorted by path."""
    folder = Path(folder)
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = path.suffix.lower()
        if suffix in BVH_SUFFIXES or (suffix in DEEPMIMIC_SUFFIXES and is_deepmimic_file(path)):
            out.append(path)
    return out


@functools.lru_cache(maxsize=1)
def cmu_descriptions() -> dict[str, str]:
    """CMU clip id ("02_01") -> description, from B. Hahne's index (vendored)."""
    out = {}
    path = DATA_DIR / "cmu_walks" / "cmu-mocap-index-text.txt"
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^(\d+)_(\d+)\s+(.+?)\s*$", line)
        if m:
            out[f"{int(m[1]):02d}_{int(m[2]):02d}"] = m[3]
    return out


_CMU_NAME = re.compile(r"^(\d{1,3})_(\d{1,3})$")


def clip_metadata(path: Path) -> tuple[str, str, str]:
    """(name, subject, action) from the file name: CMU "02_01"/"002_01" → subject "cmu_02" with
    CMU's description; DeepMimic "humanoid3d_walk" → subject "deepmimic", action "walk"."""
    stem = path.stem
    m = _CMU_NAME.match(stem)
    if m:
        subject, trial = int(m[1]), int(m[2])
        key = f"{subject:02d}_{trial:02d}"
        return stem, f"cmu_{subject:02d}", cmu_descriptions().get(key, "unknown")
    if stem.startswith("humanoid3d_"):
        return stem, "deepmimic", stem[len("humanoid3d_") :]
    return stem, stem, "unknown"


def nominal_rate(fps: float) -> float:
    """Snap a rate read from a rounded frame time (".0083333" → 120.0005) to the whole number meant."""
    return float(round(fps)) if abs(fps - round(fps)) <= 1e-4 * fps else fps


def frame_indices(num_frames: int, source_fps: float, fps: float | None) -> tuple[np.ndarray, float]:
    """Frames to keep for a target rate (the nearest source frames; no interpolation) and the rate kept."""
    if not fps or fps >= source_fps or num_frames == 0:
        return np.arange(num_frames), source_fps
    ratio = source_fps / fps
    if abs(ratio - round(ratio)) < 1e-3:
        step = int(round(ratio))
        return np.arange(0, num_frames, step), source_fps / step
    times = np.arange(0.0, (num_frames - 1) / source_fps + 1e-9, 1.0 / fps)
    return np.unique(np.round(times * source_fps).astype(np.int64).clip(0, num_frames - 1)), fps


OUTLIER_JUMP_MM = 300.0


def leading_outlier_frames(joints: np.ndarray) -> int:
    """How many first frames to drop: those before a jump, within the first 5 steps, of over
    30 cm at some joint and over 5x any other step of the first 30. That is a pose some
    exporters prepend to the motion (a T-pose) or a tracking glitch at the start."""
    if len(joints) < 8:
        return 0
    steps = np.linalg.norm(np.diff(joints[:31], axis=0), axis=-1).max(axis=-1)
    i = int(np.argmax(steps[:5]))
    rest = np.delete(steps, i)
    return i + 1 if steps[i] > OUTLIER_JUMP_MM and steps[i] > 5.0 * rest.max() else 0


def nodes_to_world(
    compiled: CompiledMap, pos: np.ndarray, rot: np.ndarray, mm_per_unit: float, up_axis: str, source: str = ""
) -> np.ndarray:
    """h36m17 joints in world mm with the clip's lowest foot point at z = 0.

    Leading outlier frames (`leading_outlier_frames`) are dropped first, so they move neither
    the floor nor the frames: the result may then be shorter than `pos`.
    """
    joints = to_world(compiled.joints(pos, rot), mm_per_unit, up_axis)
    floor = to_world(compiled.floor(pos, rot), mm_per_unit, up_axis)
    drop = leading_outlier_frames(joints)
    if drop:
        log.info("%s: dropped the first %d frame(s), a prepended pose or a glitch before the motion", source, drop)
        joints, floor = joints[drop:], floor[drop:]
    joints[..., 2] -= floor[..., 2].min()
    return joints


def load_bvh_clip(
    path: str | Path,
    *,
    fps: float | None = DEFAULT_FPS,
    name_map: Mapping[str, Any] | str | Path | SkeletonProfile | None = None,
    units: str | float | None = None,
    up_axis: str | None = None,
) -> tuple[np.ndarray, float]:
    """h36m17 joints (F, 17, 3) float64 world mm of one BVH file, and the frame rate kept."""
    path = Path(path)
    clip = read_bvh(path)
    skel: BVHSkeleton = clip.skeleton
    if clip.num_frames == 0:
        raise ClipError(f"{path}: the clip has no frames")
    if name_map is None:
        profile = detect_profile(skel.names)
        if profile is None:
            shown = ", ".join(n for n, end in zip(skel.names, skel.is_end_site) if not end)
            raise ClipError(
                f"{path}: unknown skeleton (joints: {shown[:300]}); pass a name map (dict or YAML/JSON file) "
                f"mapping each h36m17 joint {list(sk.JOINT_NAMES)} to a joint of this skeleton"
            )
    else:
        profile = name_map if isinstance(name_map, SkeletonProfile) else load_name_map(name_map)
    compiled = compile_name_map(profile, skel.names, skel.parents, str(path))
    pos, rot = forward_kinematics(skel, clip.motion, compiled.nodes)
    units = units if units is not None else profile.units
    up_axis = up_axis if up_axis is not None else profile.up_axis
    if units is None or up_axis is None:
        raw = compiled.joints(pos, rot)
        if up_axis is None:
            up_axis = guess_up_axis(raw)
            log.warning("%s: up axis not given; guessed %r from the pose", path, up_axis)
        if units is None:
            units = guess_units(raw)
            log.warning("%s: units not given; guessed %r from the leg length", path, units)
    joints = nodes_to_world(compiled, pos, rot, units_to_mm(units), up_axis.lower(), str(path))
    keep, kept_fps = frame_indices(len(joints), nominal_rate(clip.fps), fps)
    return joints[keep], kept_fps


def load_clip(
    path: str | Path,
    *,
    fps: float | None = DEFAULT_FPS,
    name_map: Mapping[str, Any] | str | Path | SkeletonProfile | None = None,
    units: str | float | None = None,
    up_axis: str | None = None,
) -> tuple[np.ndarray, ClipInfo]:
    """One clip (BVH, or DeepMimic .txt/.json) → joints (F, 17, 3) float32 world mm, and its ClipInfo.

    `fps` (default 30; None keeps every frame): BVH keeps the nearest source frames, DeepMimic
    is resampled with slerp. For BVH, `name_map`, `units` ("mm", "cm", "m", "inch", "cmu" or mm
    per unit) and `up_axis` ("y"/"z") override what is detected from the skeleton; DeepMimic
    clips always use the humanoid3d character and its map.
    """
    from generator import deepmimic  # deepmimic imports this module

    path = Path(path)
    if not path.is_file():
        raise ClipError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in BVH_SUFFIXES:
        joints, kept_fps = load_bvh_clip(path, fps=fps, name_map=name_map, units=units, up_axis=up_axis)
    elif suffix in DEEPMIMIC_SUFFIXES:
        joints, kept_fps = deepmimic.load_deepmimic_joints(path, fps=fps)
    else:
        raise ClipError(f"{path}: unknown clip format {suffix!r}; expected .bvh or DeepMimic .txt/.json")
    name, subject, action = clip_metadata(path)
    info = ClipInfo(name=name, subject=subject, action=action, path=str(path), fps=float(kept_fps))
    return joints.astype(np.float32), info
