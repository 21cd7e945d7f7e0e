"""ML-Agents side channels of the control plane: the run config out, the player's status back.

The launcher configures every player, Unity or built-in, through the ML-Agents communicator:
`GeneratorConfigChannel` carries one `PlayerRunConfig` (JSON, UTF-8) to the player inside the
first `reset()`, and the player answers with `PlayerStatus` messages inside later `step()`s.
ML-Agents' own `EngineConfigurationChannel` sets resolution, quality, time scale and frame rate.
Frames never travel here: side channels moved 128x128 images at 3-4 fps (ML-Agents #5085,
bench/control.py); they go over ZeroMQ (bridge/transport.py).

The channel id is shared with the C# `GeneratorConfigChannel` (unity_project/Packages/
com.posebridge.player/Runtime/GeneratorConfigChannel.cs); tests check both spell the same GUID.
Side-channel bytes are records of (GUID as `uuid.bytes_le`, int32 length, payload), and
`OutgoingMessage.write_string` is ASCII-only, so JSON goes as raw bytes.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any, Literal

from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel
from mlagents_envs.side_channel.side_channel import IncomingMessage, OutgoingMessage, SideChannel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bridge.protocol import ID_PATTERN, Encoding
from bridge.workplan import parse_id_ranges

log = logging.getLogger(__name__)

CONFIG_CHANNEL_ID = uuid.UUID("8f0c4b6e-3d2a-4e71-9b15-5a7d2c9e1f40")
CONTROL_VERSION = 1
# gRPC caps one communicator message at 4 MiB, and an oversized one fails late as a timeout. The
# assignment travels in the first reset with the engine settings, so it keeps a margin below that.
MAX_ASSIGNMENT_BYTES = 3 << 20

PlayerState = Literal["starting", "running", "done", "failed"]


class PoseRow(BaseModel):
    """One pose sent to the player: 17 world joints (mm, z up) and where it came from."""

    model_config = ConfigDict(extra="forbid")

    joints_mm: list[tuple[float, float, float]] = Field(min_length=17, max_length=17)
    clip: str | None = None  # None: the pose prior
    frame: int = Field(0, ge=0)
    subject: str = ""
    action: str = ""


class PoseAssignment(BaseModel):
    """Where poses come from. The built-in player loads `source` itself (generator.poses); a Unity
    player poses its rig by `rows` (drawn from `source` by the launcher) when given, else samples its
    own AnimationClips."""

    model_config = ConfigDict(extra="forbid")

    source: str = "bundled"
    fps: float = Field(30.0, gt=0)
    rows: list[PoseRow] = Field(default_factory=list)


class PlayerRunConfig(BaseModel):
    """Everything one player process needs for its share of a run (control version 1)."""

    model_config = ConfigDict(extra="forbid")

    control: Literal[1] = CONTROL_VERSION
    type: Literal["config"] = "config"
    run_id: str = Field(pattern=ID_PATTERN)
    player_id: str = Field(pattern=ID_PATTERN)
    worker_id: int = Field(ge=0)
    seed: int = Field(ge=0)
    endpoint: str = Field(pattern=r"^(tcp|ipc|inproc)://.+")
    frames: str = Field(description='Frame ids to produce, "0-99,120,200-299" (bridge.workplan.format_id_ranges).')
    encoding: Encoding = "jpeg"
    jpeg_quality: int = Field(90, ge=1, le=100)
    heartbeat_s: float = Field(1.0, ge=0.05, le=3600)
    scene: dict[str, Any] = Field(default_factory=dict, description="generator.scene.SceneConfig as JSON.")
    poses: PoseAssignment = Field(default_factory=PoseAssignment)
    player: dict[str, Any] = Field(default_factory=dict, description="Player-specific options, passed through.")

    @field_validator("frames")
    @classmethod
    def _ranges(cls, v: str) -> str:
        parse_id_ranges(v)  # raises ValueError naming the bad item
        return v

    def frame_ids(self):
        return parse_id_ranges(self.frames)

    def to_bytes(self) -> bytes:
        data = self.model_dump_json().encode("utf-8")
        if len(data) > MAX_ASSIGNMENT_BYTES:
            raise ValueError(
                f"player {self.player_id}: its config is {len(data) / 2**20:.1f} MiB, over the {MAX_ASSIGNMENT_BYTES >> 20} MiB "
                "side-channel budget (gRPC's limit is 4 MiB); send fewer poses (poses.rows)"
            )
        return data


class PlayerStatus(BaseModel):
    """What a player reports back on the config channel."""

    model_config = ConfigDict(extra="forbid")

    control: Literal[1] = CONTROL_VERSION
    type: Literal["status"] = "status"
    player_id: str
    state: PlayerState
    frames_sent: int = Field(0, ge=0)
    frames_planned: int = Field(0, ge=0)
    fps: float = Field(0.0, ge=0)
    code: str = ""
    message: str = ""


class GeneratorConfigChannel(SideChannel):
    """The launcher's end of the config channel: `send_assignment()` queues the config for the next
    exchange; statuses arriving in exchanges update `status` (thread-safe)."""

    def __init__(self) -> None:
        super().__init__(CONFIG_CHANNEL_ID)
        self._lock = threading.Lock()
        self._status: PlayerStatus | None = None
        self.bad_messages: list[str] = []

    def send_assignment(self, assignment: PlayerRunConfig) -> None:
        msg = OutgoingMessage()
        msg.set_raw_bytes(bytearray(assignment.to_bytes()))
        self.queue_message_to_send(msg)

    def on_message_received(self, msg: IncomingMessage) -> None:
        raw = bytes(msg.get_raw_bytes())
        try:
            status = PlayerStatus.model_validate_json(raw)
        except ValidationError as e:
            log.warning("config channel: a player sent an invalid status (%s): %r", e.error_count(), raw[:200])
            with self._lock:
                self.bad_messages.append(raw[:200].decode("utf-8", "replace"))
            return
        with self._lock:
            self._status = status

    @property
    def status(self) -> PlayerStatus | None:
        with self._lock:
            return self._status


class EngineSettings(BaseModel):
    """ML-Agents' EngineConfigurationChannel fields (None = leave the player's own setting).

    Players render into their own render targets, so width/height only size the window; time
    scale 1 and an uncapped frame rate suit data generation (mlagents' training default is 20)."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(None, ge=1)
    height: int | None = Field(None, ge=1)
    quality_level: int | None = Field(None, ge=0)
    time_scale: float | None = Field(1.0, gt=0)
    target_frame_rate: int | None = -1
    capture_frame_rate: int | None = None

    def channel(self) -> EngineConfigurationChannel:
        """A channel with these settings queued for the first exchange."""
        ch = EngineConfigurationChannel()
        ch.set_configuration_parameters(**self.model_dump())
        return ch


def split_side_channel_records(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """The (channel id, payload) records of a side-channel blob (the player's side of the format).

    Raises ValueError on a truncated or malformed blob."""
    records = []
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        if offset + 20 > len(view):
            raise ValueError(f"side-channel data truncated in a record header at byte {offset}")
        channel = uuid.UUID(bytes_le=bytes(view[offset : offset + 16]))
        length = int.from_bytes(view[offset + 16 : offset + 20], "little", signed=True)
        offset += 20
        if length < 0 or offset + length > len(view):
            raise ValueError(f"side-channel record for {channel} claims {length} bytes, {len(view) - offset} left")
        records.append((channel, bytes(view[offset : offset + length])))
        offset += length
    return records


def join_side_channel_records(records: list[tuple[uuid.UUID, bytes]]) -> bytes:
    """The inverse of `split_side_channel_records`."""
    out = bytearray()
    for channel, payload in records:
        out += channel.bytes_le
        out += len(payload).to_bytes(4, "little", signed=True)
        out += payload
    return bytes(out)


def status_json(status: PlayerStatus) -> bytes:
    """A status as the bytes a player puts on the channel."""
    return json.dumps(status.model_dump(), separators=(",", ":")).encode("utf-8")
