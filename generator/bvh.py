"""BVH reading and forward kinematics.

`read_bvh` parses HIERARCHY and MOTION into a `BVHClip` (skeleton + raw channel values);
`forward_kinematics` turns it into per-frame positions and rotations of every joint and end
site, in the file's own units and axes (`generator/mocap.py` converts to the world frame).

Conventions (those of Biovision BVH as read by Blender and MotionBuilder):
- A joint's rotation is the product of its rotation channels in the order they are listed,
  e.g. `Zrotation Xrotation Yrotation` gives R = Rz · Rx · Ry (intrinsic), angles in degrees,
  acting on column vectors; a child sits at p_parent + R_parent_world · t_child.
- A joint's translation from its parent is its OFFSET; position channels, where a joint has
  them (always the root, sometimes others), replace the OFFSET.
- End sites are extra nodes named "<parent>/End" (a second one under the same joint:
  "<parent>/End2", ...).

Malformed input raises `BVHParseError`, whose message names the file, the line and the problem;
so do numbers that no capture holds (beyond +-MAX_ABS_VALUE, or a Frame Time outside FRAME_TIME_RANGE).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

ROTATION_AXIS = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}
POSITION_AXIS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}
CANONICAL_CHANNEL = {name.upper(): name for name in (*ROTATION_AXIS, *POSITION_AXIS)}  # any case is accepted
_NUMBER = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# No mocap number is this large (file units or degrees): 1e7 mm is 10 km, 1e7 degrees 27,778 turns.
# Larger values are corruption, and after unit conversion they overflow float32 (1e300 did).
MAX_ABS_VALUE = 1e7
# A frame time outside this range (seconds) is no capture rate: 1 MHz to one frame an hour.
FRAME_TIME_RANGE = (1e-6, 3600.0)


class BVHParseError(ValueError):
    """A malformed BVH file; the message is "<file>:<line>: <problem>"."""

    def __init__(self, path: str, line: int | None, problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")


@dataclasses.dataclass(frozen=True)
class BVHSkeleton:
    """The HIERARCHY: nodes (joints and end sites) in file order, so parents come first."""

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int64, -1 for a root
    offsets: np.ndarray  # (J, 3) float64, file units
    channels: tuple[tuple[str, ...], ...]  # per node, canonical spelling ("Zrotation"); () for end sites
    channel_start: np.ndarray  # (J,) int64: column of the node's first channel in the MOTION rows
    is_end_site: np.ndarray  # (J,) bool

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint or end site named {name!r}") from None

    def ancestors_mask(self, nodes: Sequence[int]) -> np.ndarray:
        """Boolean (J,) mask of `nodes` and all their ancestors."""
        mask = np.zeros(len(self.names), dtype=bool)
        for j in nodes:
            while j >= 0 and not mask[j]:
                mask[j] = True
                j = int(self.parents[j])
        return mask


@dataclasses.dataclass(frozen=True)
class BVHClip:
    """A parsed file: skeleton, raw channel values (F, C) and the frame time in seconds."""

    path: str
    skeleton: BVHSkeleton
    motion: np.ndarray  # (F, C) float64
    frame_time: float

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


# ------------------------------------------------------------------------------------------------
# Parsing


class _Cursor:
    """Whitespace tokens of the header lines, read lazily so the MOTION body is never tokenized here."""

    def __init__(self, lines: list[bytes], path: str):
        self.lines, self.path = lines, path
        self.line = -1  # index into lines of the current token's line
        self.tokens: list[str] = []
        self.pos = 0

    def _fill(self) -> bool:
        while self.pos >= len(self.tokens):
            if self.line + 1 >= len(self.lines):
                return False
            self.line += 1
            self.tokens = self.lines[self.line].decode("utf-8", errors="replace").split()
            self.pos = 0
        return True

    @property
    def lineno(self) -> int:
        return max(self.line, 0) + 1

    @property
    def last_line(self) -> int:
        """The number of the file's last line (a final newline does not start another)."""
        return max(len(self.lines) - (self.lines[-1] == b""), 1)

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self._fill() else None

    def next(self, what: str) -> str:
        if not self._fill():
            raise self.error(f"file ends where {what} was expected", line=self.last_line)
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def rest_of_line(self) -> list[str]:
        rest = self.tokens[self.pos :]
        self.pos = len(self.tokens)
        return rest

    def expect(self, keyword: str, context: str) -> None:
        tok = self.next(f"{keyword!r} ({context})")
        if tok.upper() != keyword.upper():
            raise self.error(f"expected {keyword!r} ({context}), found {tok!r}")

    def number(self, what: str, kind: type = float) -> float:
        tok = self.next(what)
        try:
            value = kind(tok)
        except ValueError:
            raise self.error(f"{what}: {tok!r} is not a{'n integer' if kind is int else ' number'}") from None
        if not np.isfinite(value):
            raise self.error(f"{what}: {tok!r} is not finite")
        if abs(value) > MAX_ABS_VALUE:
            raise self.error(f"{what}: {tok!r} is beyond +-{MAX_ABS_VALUE:g}, not a plausible mocap value")
        return value

    def error(self, problem: str, line: int | None = None) -> BVHParseError:
        return BVHParseError(self.path, line if line is not None else self.lineno, problem)


class _HierarchyBuilder:
    def __init__(self, cur: _Cursor):
        self.cur = cur
        self.names: list[str] = []
        self.parents: list[int] = []
        self.offsets: list[tuple[float, float, float]] = []
        self.channels: list[tuple[str, ...]] = []
        self.is_end: list[bool] = []
        self.seen: dict[str, int] = {}

    def node(self, name: str, parent: int, end_site: bool, opened_at: int) -> None:
        cur = self.cur
        if name in self.seen:
            raise cur.error(f"duplicate joint name {name!r} (first defined at line {self.seen[name]})")
        self.seen[name] = opened_at
        me = len(self.names)
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append((0.0, 0.0, 0.0))
        self.channels.append(())
        self.is_end.append(end_site)
        cur.expect("{", f"after {name!r}")
        have_offset = have_channels = False
        end_count = 0
        while True:
            tok = cur.peek()
            if tok is None:
                raise cur.error(
                    f"file ends inside {name!r} (its '{{' at line {opened_at} is never closed)", line=cur.last_line
                )
            key = tok.upper()
            cur.next(tok)
            if key == "}":
                break
            if key == "OFFSET":
                if have_offset:
                    raise cur.error(f"second OFFSET in {name!r}")
                self.offsets[me] = tuple(cur.number(f"OFFSET {'xyz'[i]} of {name!r}") for i in range(3))
                have_offset = True
            elif key == "CHANNELS" and not end_site:
                if have_channels:
                    raise cur.error(f"second CHANNELS in {name!r}")
                self.channels[me] = self._channels(name)
                have_channels = True
            elif key == "JOINT" and not end_site:
                line = cur.lineno
                self.node(self._name(f"JOINT under {name!r}"), me, False, line)
            elif key == "END" and not end_site:
                line = cur.lineno
                site = cur.next("'Site' after 'End'")
                if site.upper() != "SITE":
                    raise cur.error(f"expected 'End Site', found 'End {site}'")
                end_count += 1
                self.node(f"{name}/End" + (str(end_count) if end_count > 1 else ""), me, True, line)
            elif key in ("ROOT", "MOTION", "HIERARCHY"):
                raise cur.error(f"{tok!r} inside {name!r}: missing '}}' to close the block opened at line {opened_at}")
            else:
                where = "an End Site" if end_site else f"joint {name!r}"
                raise cur.error(f"unknown token {tok!r} in {where}")
        if not have_offset:
            raise cur.error(f"{name!r} (line {opened_at}) has no OFFSET")

    def _name(self, what: str) -> str:
        """A joint name: the rest of the line (names may hold spaces), without a trailing '{'."""
        line = self.cur.lineno
        parts = self.cur.rest_of_line()
        if parts and parts[-1] == "{":
            self.cur.pos -= 1  # leave the brace for the caller
            parts = parts[:-1]
        elif parts and parts[-1].endswith("{"):
            raise self.cur.error(f"put a space before '{{' in {' '.join(parts)!r}", line=line)
        if not parts:
            raise self.cur.error(f"missing name of {what}", line=line)
        return " ".join(parts)

    def _channels(self, name: str) -> tuple[str, ...]:
        cur = self.cur
        count = cur.number(f"CHANNELS count of {name!r}", int)
        if count < 0 or count > 64:
            raise cur.error(f"bad CHANNELS count {count} in {name!r}")
        out = []
        for i in range(count):
            tok = cur.peek()
            if tok is None or tok.upper() not in CANONICAL_CHANNEL:
                found = "the end of the file" if tok is None else repr(tok)
                raise cur.error(f"CHANNELS of {name!r} says {count} but channel {i + 1} is {found}")
            out.append(CANONICAL_CHANNEL[cur.next("channel").upper()])
        return tuple(out)


def read_bvh(path: str | Path) -> BVHClip:
    """Parse a BVH file (any channel order/count, end sites, CRLF, tabs)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise BVHParseError(str(path), None, f"cannot read: {e.strerror or e}") from None
    return parse_bvh(raw, source=str(path))


def parse_bvh(data: bytes | str, source: str = "<string>") -> BVHClip:
    """Parse BVH text; `source` names it in error messages."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark
    if b"\n" not in data:  # classic-Mac line ends
        data = data.replace(b"\r", b"\n")
    lines = data.split(b"\n")
    cur = _Cursor(lines, source)
    if cur.peek() is None:
        raise cur.error("empty file", line=1)
    cur.expect("HIERARCHY", "the first word of a BVH file")
    b = _HierarchyBuilder(cur)
    try:
        while (tok := cur.peek()) is not None and tok.upper() == "ROOT":
            cur.next("ROOT")
            line = cur.lineno
            b.node(b._name("ROOT"), -1, False, line)
    except RecursionError:
        raise cur.error("the hierarchy is nested too deeply") from None
    if not b.names:
        raise cur.error("no ROOT joint after HIERARCHY")
    tok = cur.peek()
    if tok is None:
        raise cur.error("file ends after the hierarchy: no MOTION section", line=cur.last_line)
    if tok.upper() != "MOTION":
        extra = " (an extra '}'?)" if tok == "}" else ""
        raise cur.error(f"expected 'MOTION' or another 'ROOT' after the hierarchy, found {tok!r}{extra}")
    cur.next("MOTION")
    num_frames = int(_header_value(cur, ("FRAMES:",), "Frames:", int))
    frame_time = float(_header_value(cur, ("FRAME", "TIME:"), "Frame Time:", float))
    if num_frames < 0:
        raise cur.error(f"negative frame count {num_frames}")
    if frame_time <= 0:
        raise cur.error(f"Frame Time must be positive, found {frame_time}")
    if not FRAME_TIME_RANGE[0] <= frame_time <= FRAME_TIME_RANGE[1]:
        raise cur.error(f"Frame Time {frame_time:g} s lies outside {FRAME_TIME_RANGE[0]:g}..{FRAME_TIME_RANGE[1]:g} s")
    if cur.rest_of_line():
        raise cur.error("unexpected text after the Frame Time value")
    skeleton = _skeleton(b)
    motion = _parse_motion(lines, cur.line + 1, num_frames, skeleton, source, cur.last_line)
    return BVHClip(path=source, skeleton=skeleton, motion=motion, frame_time=frame_time)


def _header_value(cur: _Cursor, words: tuple[str, ...], label: str, kind: type) -> float:
    """Read `Frames: N` / `Frame Time: t`, also when the value is glued to the colon."""
    for i, word in enumerate(words):
        tok = cur.next(f"{label!r}")
        up = tok.upper()
        if i == len(words) - 1 and up.startswith(word) and len(up) > len(word):
            cur.pos -= 1
            cur.tokens[cur.pos] = tok[len(word) :]
            break
        if up != word:
            raise cur.error(f"expected {label!r}, found {tok!r}")
    return cur.number(f"{label} value", kind)


def _skeleton(b: _HierarchyBuilder) -> BVHSkeleton:
    counts = np.array([len(c) for c in b.channels], dtype=np.int64)
    parents = np.array(b.parents, dtype=np.int64)
    offsets = np.array(b.offsets, dtype=np.float64).reshape(-1, 3)
    is_end = np.array(b.is_end, dtype=bool)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    for a in (parents, offsets, is_end, start):
        a.setflags(write=False)
    return BVHSkeleton(tuple(b.names), parents, offsets, tuple(b.channels), start, is_end)


def _parse_motion(
    lines: list[bytes], first: int, num_frames: int, skeleton: BVHSkeleton, source: str, last_line: int
) -> np.ndarray:
    """Rows of the MOTION block; numbers parsed by numpy in one go, then checked to be plausible."""
    num_channels = skeleton.num_channels
    body = lines[first:]
    counts = np.fromiter((len(x.split()) for x in body), dtype=np.int64, count=len(body))
    rows = np.flatnonzero(counts)  # blank lines are ignored
    if rows.size < num_frames:
        raise BVHParseError(
            source, last_line, f"Frames: says {num_frames} but the file ends after {rows.size} frame lines"
        )
    rows = rows[:num_frames]  # lines after the declared frames are ignored
    bad = np.flatnonzero(counts[rows] != num_channels)
    if bad.size:
        r = int(rows[bad[0]])
        raise BVHParseError(
            source,
            first + r + 1,
            f"frame {int(bad[0])} has {int(counts[r])} values, the hierarchy declares {num_channels} channels",
        )
    if num_frames == 0 or num_channels == 0:
        return np.zeros((num_frames, num_channels))
    end = first + int(rows[-1]) + 1
    text = b"\n".join(lines[first:end])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # older numpy warns and stops early
            values = np.fromstring(text, sep=" ")
    except ValueError:  # a token that is not a number
        values = np.empty(0)
    if values.size != num_frames * num_channels or not np.isfinite(values).all():
        _raise_bad_number(lines, first, rows, source)
    values = values.reshape(num_frames, num_channels)
    absurd = np.abs(values) > MAX_ABS_VALUE
    if absurd.any():
        frame, col = (int(i[0]) for i in np.nonzero(absurd))
        channel = [f"{name} {c}" for name, chans in zip(skeleton.names, skeleton.channels) for c in chans][col]
        raise BVHParseError(
            source,
            first + int(rows[frame]) + 1,
            f"frame {frame}, value {col + 1} ({channel}) is {values[frame, col]:g}, beyond +-{MAX_ABS_VALUE:g}: "
            "not a plausible mocap value",
        )
    return values


def _raise_bad_number(lines: list[bytes], first: int, rows: np.ndarray, source: str) -> None:
    """Slow path, only on error: find the first token that is not a plain finite decimal number."""
    for r in rows:
        for tok in lines[first + int(r)].split():
            if not _NUMBER.fullmatch(tok):
                shown = tok.decode("utf-8", errors="replace")
                raise BVHParseError(source, first + int(r) + 1, f"{shown!r} is not a finite number")
    raise BVHParseError(source, first + int(rows[0]) + 1, "MOTION values could not be parsed")


# ------------------------------------------------------------------------------------------------
# Forward kinematics


def euler_matrices(angles_deg: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """R = R_axes[0](a0) · R_axes[1](a1) · ... for angles (..., k) in degrees; axes 0=x, 1=y, 2=z."""
    angles = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for i, axis in enumerate(axes):
        c, s = np.cos(angles[..., i]), np.sin(angles[..., i])
        r = np.zeros(angles.shape[:-1] + (3, 3))
        a, b = [(1, 2), (2, 0), (0, 1)][axis]  # the plane the rotation acts in
        r[..., axis, axis] = 1.0
        r[..., a, a] = c
        r[..., b, b] = c
        r[..., a, b] = -s
        r[..., b, a] = s
        out = out @ r
    return out


def forward_kinematics(
    skeleton: BVHSkeleton, motion: np.ndarray, nodes: Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """World positions (F, J, 3) and rotations (F, J, 3, 3) of every node, in file units and axes.

    Vectorized over frames (one pass over the nodes). With `nodes`, only those and their
    ancestors are computed; the others are NaN.
    """
    motion = np.asarray(motion, dtype=np.float64)
    num_frames, num_nodes = motion.shape[0], len(skeleton.names)
    todo = skeleton.ancestors_mask(nodes) if nodes is not None else np.ones(num_nodes, dtype=bool)
    pos = np.full((num_frames, num_nodes, 3), np.nan)
    rot = np.full((num_frames, num_nodes, 3, 3), np.nan)
    for j in np.flatnonzero(todo):
        chans = skeleton.channels[j]
        start = int(skeleton.channel_start[j])
        local_t = np.broadcast_to(skeleton.offsets[j], (num_frames, 3))
        rot_cols = [start + i for i, c in enumerate(chans) if c in ROTATION_AXIS]
        pos_cols = {POSITION_AXIS[c]: start + i for i, c in enumerate(chans) if c in POSITION_AXIS}
        if pos_cols:  # position channels replace the OFFSET on the axes they name
            local_t = local_t.copy()
            for axis, col in pos_cols.items():
                local_t[:, axis] = motion[:, col]
        axes = [ROTATION_AXIS[c] for c in chans if c in ROTATION_AXIS]
        local_r = euler_matrices(motion[:, rot_cols], axes) if axes else np.eye(3)
        parent = int(skeleton.parents[j])
        if parent < 0:
            pos[:, j] = local_t
            rot[:, j] = local_r
        else:
            if pos_cols:
                pos[:, j] = pos[:, parent] + (rot[:, parent] @ local_t[:, :, None])[:, :, 0]
            else:
                pos[:, j] = pos[:, parent] + rot[:, parent] @ skeleton.offsets[j]
            rot[:, j] = rot[:, parent] @ local_r
    return pos, rot
