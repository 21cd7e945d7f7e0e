"""Wire protocol, version 1.1: the messages a player (built-in or Unity) sends to the collector.

Every message is one ZeroMQ multipart message whose first part is a UTF-8 JSON header with a
`type` discriminator. A frame is `[header, image]`, or `[header, image, mask]` when its header
has a `mask` (new in 1.1: the person mask as a PNG); every control message (hello, heartbeat,
end, error) is `[header]` alone. docs/protocol.md is the prose reference; the JSON Schemas
exported from these models into `bridge/schema/` are the contract the C# player is written
against (`posebridge schema --check` verifies they are current).

Versioning: `protocol` is "MAJOR.MINOR". A reader accepts any message of its own major version;
fields it does not know (a newer minor's additions) are ignored. A new minor may only add
optional fields, and optional message parts that a header field announces; anything else is a
new major, which a reader rejects with a clear reason. A reader ignores parts beyond those it
knows when the header's minor is newer than its own (a 1.1 reader takes a 1.2 frame's extra
parts as unknown additions). A 1.0 reader predates that rule and refuses any frame of more than
two parts, so a player sends the mask part only when its settings ask for it (docs/protocol.md).
Every field of 1.0 is required (only `meta` and error's `frame_id` have defaults); the 1.1
`mask` field is optional and absent, not null, when there is no mask part.
`Model.build(...)` fills in `protocol` and `type`.

The models validate in strict mode (no string-to-number coercion) and reject NaN and infinity.
Geometry that JSON Schema cannot express (K is a pinhole matrix, R is a rotation, the image
shape matches the camera) is checked by the collector (`bridge.collector.check_frame`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from generator.skeleton import NUM_JOINTS, SKELETON_NAME

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1
PROTOCOL_VERSION = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"

MAX_IMAGE_SIDE = 16384
UINT32_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
SCHEMA_DIR = Path(__file__).with_name("schema")
SCHEMA_ID_BASE = "https://github.com/posebridge/posebridge/blob/main/bridge/schema/"

Encoding = Literal["jpeg", "png", "raw"]
PlayerKind = Literal["builtin", "unity"]
Visibility = Literal[0, 1, 2]

Vec2 = tuple[float, float]
Vec3 = tuple[float, float, float]
Mat3 = tuple[Vec3, Vec3, Vec3]


def _joints(dim: str, description: str) -> Any:
    return Field(min_length=NUM_JOINTS, max_length=NUM_JOINTS, description=f"{NUM_JOINTS} joints in h36m17 order, each {dim}; {description}")


class ProtocolError(ValueError):
    """A message breaks the protocol; the text is the reason the collector records."""


class _Wire(BaseModel):
    # Strict: a JSON string is never coerced into a number. Unknown fields are ignored (a newer
    # minor's additions); the exported schema still lists exactly this version's fields.
    model_config = ConfigDict(
        strict=True,
        allow_inf_nan=False,
        extra="ignore",
        json_schema_extra={"additionalProperties": False},
        json_schema_serialization_defaults_required=True,
    )


class _Envelope(_Wire):
    """Fields every message carries."""

    protocol: str = Field(
        pattern=r"^[0-9]{1,4}\.[0-9]{1,4}$",
        description='Protocol version "MAJOR.MINOR". Readers accept their own major and ignore unknown fields.',
        json_schema_extra={"pattern": rf"^{PROTOCOL_MAJOR}\.[0-9]{{1,4}}$"},
    )
    run_id: str = Field(pattern=ID_PATTERN, description="The run this message belongs to, as handed to the player by the launcher.")
    player_id: str = Field(pattern=ID_PATTERN, description="The sending player process; unique within a run (a restarted player gets a new id).")
    seq: int = Field(
        ge=0,
        le=INT64_MAX,
        description="Per-player sequence number over every message the player sends (hello is 0), +1 each; a jump is a gap.",
    )

    @classmethod
    def build(cls, **fields):
        """The message with `protocol` (this version) and `type` filled in."""
        return cls(protocol=PROTOCOL_VERSION, type=get_args(cls.model_fields["type"].annotation)[0], **fields)

    @property
    def minor(self) -> int:
        """The minor version the sender speaks."""
        return int(self.protocol.split(".", 1)[1])

    @field_validator("protocol")
    @classmethod
    def _same_major(cls, v: str) -> str:
        major = int(v.split(".", 1)[0])
        if major != PROTOCOL_MAJOR:
            raise ValueError(f"unsupported protocol major version {major} (this reader speaks {PROTOCOL_MAJOR}.x)")
        return v


class Camera(_Wire):
    """The left (main) camera: pinhole intrinsics, image size and world-to-camera extrinsics."""

    K: Mat3 = Field(description="Intrinsics in pixels, rows [[fx, s, cx], [0, fy, cy], [0, 0, 1]]; pixel origin at the top-left corner of the top-left pixel.")
    image_size: tuple[
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)], Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)]
    ] = Field(description="[width, height] in pixels.")
    R: Mat3 = Field(description="World-to-camera rotation (rows), X_cam = R X_world + t; OpenCV camera frame (x right, y down, z forward), world z up.")
    t: Vec3 = Field(description="World-to-camera translation in millimetres.")


class ClipSource(_Wire):
    """The pose came from frame `frame` of a motion clip."""

    kind: Literal["clip"] = Field(description="Discriminator.")
    clip: str = Field(min_length=1, max_length=256, description="Clip name, e.g. a BVH file stem or a Unity AnimationClip name.")
    frame: int = Field(ge=0, le=INT64_MAX, description="Frame index within the clip (0-based, at the clip's sampling rate).")
    subject: str = Field(max_length=256, description="Performer id; clips of one performer share it.")
    action: str = Field(max_length=256, description="Free-text action label, e.g. 'walk'.")


class PriorSource(_Wire):
    """The pose was drawn from the pose prior (random joint angles within anatomical limits)."""

    kind: Literal["prior"] = Field(description="Discriminator.")


PoseSource = Annotated[Union[ClipSource, PriorSource], Field(discriminator="kind")]


class ImageInfo(_Wire):
    """What the second message part holds, so the collector can check it without decoding it."""

    encoding: Encoding = Field(description="jpeg (baseline or progressive JFIF), png, or raw (row-major uint8, rows top to bottom, channels RGB[A]).")
    shape: tuple[
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)],
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)],
        Literal[1, 3, 4],
    ] = Field(description="[height, width, channels] of the decoded pixels; must agree with camera.image_size.")
    size_bytes: int = Field(ge=1, le=INT64_MAX, description="Length of the image part in bytes.")
    crc32: int = Field(ge=0, le=UINT32_MAX, description="CRC-32 (IEEE 802.3 polynomial, as zlib.crc32 and PNG) of the image part, unsigned.")


def _present_only(schema: dict) -> None:
    """An optional field's exported schema: writers omit it rather than send null."""
    branches = schema.pop("anyOf")
    schema.pop("default", None)
    schema.update(next(b for b in branches if b.get("type") != "null"))


class MaskInfo(_Wire):
    """What the optional third message part holds (protocol 1.1): the person mask."""

    encoding: Literal["png"] = Field(description="png: 8-bit greyscale (colour type 0), one byte per pixel: 1 where the person is the visible surface, 0 elsewhere.")
    shape: tuple[
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)],
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)],
    ] = Field(description="[height, width] of the decoded mask; must equal image.shape[:2].")
    size_bytes: int = Field(ge=1, le=INT64_MAX, description="Length of the mask part in bytes.")
    crc32: int = Field(ge=0, le=UINT32_MAX, description="CRC-32 (as image.crc32) of the mask part, unsigned.")


MetaValue = Union[bool, int, float, str]


class FrameHeader(_Envelope):
    """One rendered frame with its ground truth. Sent as part 1 of `[header, image]`, or of `[header, image, mask]` when `mask` is present."""

    @property
    def parts(self) -> int:
        """How many message parts this header announces."""
        return FRAME_PARTS + (self.mask is not None)


    type: Literal["frame"] = Field(description="Message type discriminator.")
    frame_id: int = Field(ge=0, le=INT64_MAX, description="Frame id within the run's dataset: the scene is a function of (config, seed, frame_id).")
    seed: int = Field(ge=0, le=INT64_MAX, description="The run seed the scene was drawn with.")
    skeleton: Literal["h36m17"] = Field(description="Joint order of every joints array (docs/conventions.md).")
    camera: Camera
    joints_2d: list[Vec2] = _joints("[u, v]", "pixels in the left (main) image.")
    joints_3d: list[Vec3] = _joints("[x, y, z]", "millimetres in the left camera frame (absolute, not root-relative).")
    joints_3d_world: list[Vec3] = _joints("[x, y, z]", "millimetres in the world frame (z up, floor at z = 0).")
    visibility: list[Visibility] = _joints("0, 1 or 2", "0 = outside the image, 1 = occluded, 2 = visible.")
    joints_2d_right: list[Vec2] = _joints("[u, v]", "pixels in the right view: the left camera moved baseline_mm along its +x, same K.")
    baseline_mm: float = Field(gt=0, description="Stereo baseline of the right view in millimetres.")
    source: PoseSource = Field(description="Where the pose came from.")
    image: ImageInfo
    mask: MaskInfo | None = Field(
        None,
        exclude_if=lambda v: v is None,
        json_schema_extra=_present_only,
        description="Protocol 1.1, optional: the person mask sent as the third message part. Absent (not null) when the frame has no mask part.",
    )
    meta: dict[str, MetaValue] = Field(default_factory=dict, description="Free-form per-frame scalars (randomization parameters); not validated.")


class Capabilities(_Wire):
    """What a player can produce."""

    encodings: list[Encoding] = Field(min_length=1, description="Image encodings the player can send.")
    visibility: Literal["depth_buffer", "raycast", "none"] = Field(description="How the player decides occlusion (visibility 1 vs 2).")
    right_view: bool = Field(description="Whether frames carry joints_2d_right (always true in protocol 1).")
    max_image_size: tuple[
        Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)], Annotated[int, Field(ge=1, le=MAX_IMAGE_SIDE)]
    ] = Field(description="Largest [width, height] in pixels the player renders.")


class Hello(_Envelope):
    """The first message of every player connection (seq 0)."""

    type: Literal["hello"] = Field(description="Message type discriminator.")
    player_kind: PlayerKind = Field(description="builtin (posebridge's Python player) or unity.")
    versions: dict[str, Annotated[str, Field(max_length=128)]] = Field(description="Software versions, e.g. {'posebridge': '0.1.0', 'unity': '6000.0.23f1'}.")
    capabilities: Capabilities
    frames_planned: int = Field(ge=0, le=INT64_MAX, description="How many frames the player intends to send.")
    pid: int = Field(ge=0, le=INT64_MAX, description="The player's process id (0 when unknown).")
    host: str = Field(max_length=256, description="The player's host name.")


class Heartbeat(_Envelope):
    """Sent about once a second while the player works, so the launcher can tell a stall from a slow frame."""

    type: Literal["heartbeat"] = Field(description="Message type discriminator.")
    frames_sent: int = Field(ge=0, le=INT64_MAX, description="Frames sent so far.")
    frames_planned: int = Field(ge=0, le=INT64_MAX, description="Frames the player intends to send in total.")
    fps: float = Field(ge=0, description="The player's recent rate in frames per second.")


class EndOfStream(_Envelope):
    """The player's last message: it has sent everything it will send."""

    type: Literal["end"] = Field(description="Message type discriminator.")
    frames_sent: int = Field(ge=0, le=INT64_MAX, description="Frames the player sent in total.")


class ErrorMessage(_Envelope):
    """A player-side failure, reported before the player exits (fatal) or skips a frame."""

    type: Literal["error"] = Field(description="Message type discriminator.")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="Machine-readable code, e.g. render_failed, config_invalid.")
    message: str = Field(max_length=4096, description="Human-readable detail.")
    fatal: bool = Field(description="True when the player stops after this message.")
    frame_id: int | None = Field(None, ge=0, le=INT64_MAX, description="The frame concerned, or null.")


ControlMessage = Annotated[Union[Hello, Heartbeat, EndOfStream, ErrorMessage], Field(discriminator="type")]
CONTROL_ADAPTER: TypeAdapter = TypeAdapter(ControlMessage)
MESSAGE_TYPES: dict[str, type[_Envelope]] = {
    "hello": Hello,
    "frame": FrameHeader,
    "heartbeat": Heartbeat,
    "end": EndOfStream,
    "error": ErrorMessage,
}
FRAME_PARTS = 2  # [header, image]; a frame with a mask (1.1) has one more: [header, image, mask]
CONTROL_PARTS = 1  # [header]


# ------------------------------------------------------------------------------------------------
# encoding


def encode_message(message: _Envelope) -> bytes:
    """The JSON header bytes of any message model."""
    return message.__pydantic_serializer__.to_json(message)


def decode_control(header: bytes) -> Hello | Heartbeat | EndOfStream | ErrorMessage:
    """Parse and validate a one-part control message (raises pydantic.ValidationError)."""
    return CONTROL_ADAPTER.validate_json(header)


def _float_template(rows: int, cols: int) -> str:
    row = "[" + ",".join(["%.9g"] * cols) + "]"
    return "[" + ",".join([row] * rows) + "]"


# float32 values round-trip exactly through 9 significant digits; "%.9g" keeps headers compact.
_J2 = _float_template(NUM_JOINTS, 2)
_J3 = _float_template(NUM_JOINTS, 3)
_M3 = _float_template(3, 3)
_V3 = "[%.9g,%.9g,%.9g]"
_VIS = "[" + ",".join(["%d"] * NUM_JOINTS) + "]"


def _numbers(name: str, a: np.ndarray, shape: tuple[int, ...]) -> tuple:
    """The values rounded to float32 (what the collector stores), ready for "%.9g"."""
    a = np.asarray(a, dtype=np.float32)
    if a.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: holds NaN or infinite values (or values beyond float32)")
    return tuple(a.ravel().tolist())


def encode_frame_header(
    *,
    run_id: str,
    player_id: str,
    seq: int,
    frame_id: int,
    seed: int,
    K: np.ndarray,
    image_size: tuple[int, int],
    R: np.ndarray,
    t: np.ndarray,
    joints_2d: np.ndarray,
    joints_3d: np.ndarray,
    joints_3d_world: np.ndarray,
    visibility: np.ndarray,
    joints_2d_right: np.ndarray,
    baseline_mm: float,
    source: dict,
    image: ImageInfo,
    meta: dict | None = None,
    mask: MaskInfo | None = None,
) -> bytes:
    """A frame header from numpy arrays, compact: every number is rounded to float32 (what the
    collector stores) and written with 9 significant digits, which round-trip float32 exactly.

    `mask` describes the optional third message part (protocol 1.1); None leaves the field out.
    Tests check that it validates against the schema and equals the pydantic model's output.
    Raises ValueError for a wrong shape, NaN/inf or a visibility outside {0, 1, 2}.
    """
    vis = np.asarray(visibility)
    if vis.shape != (NUM_JOINTS,) or not np.isin(vis, (0, 1, 2)).all():
        raise ValueError(f"visibility: expected {NUM_JOINTS} values in {{0, 1, 2}}, got {vis!r}")
    if not math.isfinite(baseline_mm) or baseline_mm <= 0:
        raise ValueError(f"baseline_mm: must be finite and positive, got {baseline_mm}")
    w, h = (int(v) for v in image_size)
    source_model = ClipSource(**source) if source.get("kind") == "clip" else PriorSource(kind="prior")
    parts = [
        '{"type":"frame","protocol":"%s","run_id":%s,"player_id":%s,"seq":%d,"frame_id":%d,"seed":%d,"skeleton":"%s",'
        % (PROTOCOL_VERSION, json.dumps(run_id), json.dumps(player_id), seq, frame_id, seed, SKELETON_NAME),
        '"camera":{"K":%s,"image_size":[%d,%d],"R":%s,"t":%s},'
        % (_M3 % _numbers("K", K, (3, 3)), w, h, _M3 % _numbers("R", R, (3, 3)), _V3 % _numbers("t", t, (3,))),
        '"joints_2d":%s,' % (_J2 % _numbers("joints_2d", joints_2d, (NUM_JOINTS, 2))),
        '"joints_3d":%s,' % (_J3 % _numbers("joints_3d", joints_3d, (NUM_JOINTS, 3))),
        '"joints_3d_world":%s,' % (_J3 % _numbers("joints_3d_world", joints_3d_world, (NUM_JOINTS, 3))),
        '"visibility":%s,' % (_VIS % tuple(int(v) for v in vis)),
        '"joints_2d_right":%s,' % (_J2 % _numbers("joints_2d_right", joints_2d_right, (NUM_JOINTS, 2))),
        '"baseline_mm":%.9g,' % float(np.float32(baseline_mm)),
        '"source":%s,"image":%s,%s"meta":%s}'
        % (
            source_model.model_dump_json(),
            image.model_dump_json(),
            "" if mask is None else '"mask":%s,' % mask.model_dump_json(),
            json.dumps(meta or {}, allow_nan=False, separators=(",", ":")),
        ),
    ]
    return "".join(parts).encode()


# ------------------------------------------------------------------------------------------------
# JSON Schema export


def schema_documents() -> dict[str, dict]:
    """{file name: JSON Schema} for every message, plus `control.schema.json` (the control union)."""
    docs: dict[str, dict] = {}
    for name, model in MESSAGE_TYPES.items():
        docs[f"{name}.schema.json"] = _document(name, model.model_json_schema(mode="serialization"), model.__doc__ or "")
    docs["control.schema.json"] = _document(
        "control",
        CONTROL_ADAPTER.json_schema(mode="serialization"),
        "Any one-part control message (hello, heartbeat, end, error), told apart by `type`.",
    )
    return docs


def _document(name: str, schema: dict, description: str) -> dict:
    schema = dict(schema)
    head = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID_BASE}{name}.schema.json",
        "title": schema.pop("title", name),
        "description": " ".join(description.split()),
        "x-protocol-version": PROTOCOL_VERSION,
        "x-message-parts": [FRAME_PARTS, FRAME_PARTS + 1] if name == "frame" else CONTROL_PARTS,
    }
    schema.pop("description", None)
    return {**head, **schema}


def _dump(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def write_schemas(directory: str | Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema document into `directory` (the repository copy by default)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, doc in schema_documents().items():
        path = directory / filename
        path.write_text(_dump(doc), encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: str | Path = SCHEMA_DIR) -> list[str]:
    """File names in `directory` that are missing or differ from what the models export now."""
    directory = Path(directory)
    stale = []
    for filename, doc in schema_documents().items():
        path = directory / filename
        if not path.is_file() or path.read_text(encoding="utf-8") != _dump(doc):
            stale.append(filename)
    return stale


def describe_validation_error(error: Exception) -> str:
    """A one-line reason from a pydantic ValidationError (first few problems, with their paths)."""
    errors = getattr(error, "errors", None)
    if errors is None:
        return str(error)
    items = []
    for e in errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "<root>"
        items.append(f"{loc}: {e.get('msg')}")
    more = error.error_count() - len(items)
    return "; ".join(items) + (f" (+{more} more)" if more > 0 else "")


_PROTOCOL_FIELD = re.compile(rb'"protocol"\s*:\s*"([0-9]+)\.')


def wrong_major(header: bytes) -> int | None:
    """The major version a header claims when it is not ours, else None (checked on failures only)."""
    m = _PROTOCOL_FIELD.search(header[:4096])
    if m is None:
        return None
    major = int(m.group(1))
    return major if major != PROTOCOL_MAJOR else None
