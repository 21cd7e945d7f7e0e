"""The Unity side of the ML-Agents communicator, in Python, for the built-in player.

The launcher drives every player through `mlagents_envs.UnityEnvironment` (bridge/launcher.py). A
Unity build speaks the Unity side of that communicator itself; the built-in player speaks it with
this module, over the same real gRPC exchange, so both players share one launch path.

The message flow of mlagents-envs 0.28 / communicator API 1.5.0 (Python is the gRPC server, the
player calls `UnityToExternalProto.Exchange` and always sends the result of the previous command):

1. status 200 + `rl_initialization_output` (communication version, capabilities) ->
   `rl_initialization_input` (seed, ...);
2. status 200, no output -> `rl_input{command=RESET, side_channel}`: the run config arrives here;
3. then `rl_output{side_channel}` -> `rl_input{command=STEP, side_channel}`, repeatedly, until the
   launcher's `close()` answers with status 400 (or the server goes away: gRPC UNAVAILABLE).

The peer declares no behaviors: it needs no agents, only the exchanges that carry side channels.
"""

from __future__ import annotations

import logging
import threading
import uuid

import grpc
from mlagents_envs.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from mlagents_envs.communicator_objects.command_pb2 import QUIT
from mlagents_envs.communicator_objects.header_pb2 import HeaderProto
from mlagents_envs.communicator_objects.unity_message_pb2 import UnityMessageProto
from mlagents_envs.communicator_objects.unity_output_pb2 import UnityOutputProto
from mlagents_envs.communicator_objects.unity_rl_initialization_output_pb2 import UnityRLInitializationOutputProto
from mlagents_envs.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from mlagents_envs.communicator_objects.unity_to_external_pb2_grpc import UnityToExternalProtoStub
from mlagents_envs.side_channel.engine_configuration_channel import EngineConfigurationChannel
from mlagents_envs.side_channel.incoming_message import IncomingMessage
from pydantic import ValidationError

from bridge.mlagents_channels import (
    CONFIG_CHANNEL_ID,
    PlayerRunConfig,
    PlayerStatus,
    join_side_channel_records,
    split_side_channel_records,
    status_json,
)

log = logging.getLogger(__name__)

COMMUNICATION_VERSION = "1.5.0"
ENGINE_CHANNEL_ID = EngineConfigurationChannel().channel_id  # mlagents' own id for it
GRPC_MAX_MESSAGE = 4 << 20
_ENGINE_FIELDS = {0: "resolution", 1: "quality_level", 2: "time_scale", 3: "target_frame_rate", 4: "capture_frame_rate"}


class ControlError(RuntimeError):
    """The control plane failed: no launcher, a closed connection, or an unusable config."""


class UnityPeer:
    """One gRPC connection to a launcher's UnityEnvironment, speaking the Unity side."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", name: str = "posebridge-builtin", package_version: str = "0.1.0"):
        self.address = f"{host}:{port}"
        self.name = name
        self.package_version = package_version
        self._channel = grpc.insecure_channel(
            self.address,
            options=[("grpc.max_send_message_length", GRPC_MAX_MESSAGE), ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE)],
        )
        self._stub = UnityToExternalProtoStub(self._channel)
        self.closed = False

    def _call(self, message: UnityMessageProto, timeout: float | None, wait_for_ready: bool = False) -> UnityMessageProto | None:
        """One exchange; None when the launcher closed the environment."""
        try:
            reply = self._stub.Exchange(message, timeout=timeout, wait_for_ready=wait_for_ready)
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                self.closed = True  # the launcher stopped its server: a normal close
                return None
            raise ControlError(f"{self.address}: gRPC {e.code().name}: {e.details()}") from None
        if reply.header.status != 200:
            self.closed = True  # close() answers with 400
            return None
        return reply

    def handshake(self, timeout_s: float = 60.0) -> list[tuple[uuid.UUID, bytes]]:
        """Messages 1 and 2; returns the side-channel records of the first (RESET) command."""
        init = UnityMessageProto(
            header=HeaderProto(status=200),
            unity_output=UnityOutputProto(
                rl_initialization_output=UnityRLInitializationOutputProto(
                    name=self.name,
                    communication_version=COMMUNICATION_VERSION,
                    package_version=self.package_version,
                    capabilities=UnityRLCapabilitiesProto(baseRLCapabilities=True),
                )
            ),
        )
        if self._call(init, timeout_s, wait_for_ready=True) is None:
            raise ControlError(f"{self.address}: the launcher closed during the handshake")
        # Message 2 carries nothing; the reply is the first command. The launcher sends it when it
        # is ready, so there is no deadline here (its own watchdog covers a stuck launcher).
        reply = self._call(UnityMessageProto(header=HeaderProto(status=200)), None)
        if reply is None:
            raise ControlError(f"{self.address}: the launcher closed before sending the first command")
        return split_side_channel_records(reply.unity_input.rl_input.side_channel)

    def exchange(self, records: list[tuple[uuid.UUID, bytes]], timeout_s: float | None = None) -> list[tuple[uuid.UUID, bytes]] | None:
        """Sends side-channel records with an (empty) step result; returns the next command's
        records, or None once the launcher has closed the environment."""
        output = UnityOutputProto(rl_output=UnityRLOutputProto(side_channel=join_side_channel_records(records)))
        reply = self._call(UnityMessageProto(header=HeaderProto(status=200), unity_output=output), timeout_s)
        if reply is None:
            return None
        if reply.unity_input.rl_input.command == QUIT:
            self.closed = True
            return None
        return split_side_channel_records(reply.unity_input.rl_input.side_channel)

    def close(self) -> None:
        self._channel.close()


def decode_engine_settings(payload: bytes) -> dict:
    """One EngineConfigurationChannel message as {field: value}."""
    msg = IncomingMessage(payload)
    kind = msg.read_int32()
    field = _ENGINE_FIELDS.get(kind)
    if field is None:
        raise ValueError(f"unknown engine configuration type {kind}")
    if field == "resolution":
        return {"width": msg.read_int32(), "height": msg.read_int32()}
    if field == "time_scale":
        return {field: msg.read_float32()}
    return {field: msg.read_int32()}


class ControlSession:
    """The built-in player's control plane: a thread that runs the peer, receives the assignment and
    keeps reporting the player's status until the launcher closes the environment.

    The launcher only learns a status in an exchange, and the player only learns it may exit from
    one, so the thread exchanges every `interval_s` seconds for the whole run.
    """

    def __init__(self, port: int, *, interval_s: float = 0.1, connect_timeout_s: float = 60.0):
        self.peer = UnityPeer(port)
        self.interval_s = interval_s
        self.connect_timeout_s = connect_timeout_s
        self.engine: dict = {}
        self._assignment: PlayerRunConfig | None = None
        self._error: str | None = None
        self._status = PlayerStatus(player_id="unassigned", state="starting")
        self._lock = threading.Lock()
        self._have_assignment = threading.Event()
        self._closed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlagents-peer", daemon=True)

    def start(self) -> "ControlSession":
        self._thread.start()
        return self

    def _take(self, records: list[tuple[uuid.UUID, bytes]]) -> None:
        for channel, payload in records:
            if channel == CONFIG_CHANNEL_ID and self._assignment is None and self._error is None:
                try:
                    self._assignment = PlayerRunConfig.model_validate_json(payload)
                except ValidationError as e:
                    self._error = f"side channel config: {e}"
                self._have_assignment.set()
            elif channel == ENGINE_CHANNEL_ID:
                try:
                    self.engine.update(decode_engine_settings(payload))
                except ValueError as e:
                    log.warning("engine configuration: %s", e)

    def _run(self) -> None:
        try:
            self._take(self.peer.handshake(self.connect_timeout_s))
            if not self._have_assignment.is_set():
                self._error = "the launcher's first command carried no config on the posebridge config channel"
                self._have_assignment.set()
            while not self._stop.is_set():
                with self._lock:
                    status = self._status
                records = self.peer.exchange([(CONFIG_CHANNEL_ID, status_json(status))])
                if records is None:
                    break
                self._take(records)
                self._stop.wait(self.interval_s)
        except ControlError as e:
            if self._error is None:
                self._error = str(e)
            log.error("control plane: %s", e)
        except Exception as e:  # noqa: BLE001 - reported to the player's main thread
            self._error = f"{type(e).__name__}: {e}"
            log.exception("control plane failed")
        finally:
            self._have_assignment.set()
            self._closed.set()
            self.peer.close()

    def wait_assignment(self, timeout_s: float | None = None) -> PlayerRunConfig:
        """The run config from the launcher; ControlError when it is invalid or never came."""
        if not self._have_assignment.wait(timeout_s):
            raise ControlError(f"no run config from the launcher within {timeout_s} s")
        if self._assignment is None:
            raise ControlError(self._error or "the launcher closed before sending a config")
        return self._assignment

    def report(self, state: str, frames_sent: int = 0, frames_planned: int = 0, fps: float = 0.0, code: str = "", message: str = "") -> None:
        """Sets the status the next exchange carries."""
        player_id = self._assignment.player_id if self._assignment is not None else "unassigned"
        status = PlayerStatus(
            player_id=player_id, state=state, frames_sent=frames_sent, frames_planned=frames_planned,
            fps=max(0.0, float(fps)), code=code, message=message[:4096],
        )
        with self._lock:
            self._status = status

    @property
    def closed_by_launcher(self) -> bool:
        return self._closed.is_set() and self.peer.closed

    def wait_closed(self, timeout_s: float) -> bool:
        """Waits for the launcher to close the environment (after it has read a final status)."""
        return self._closed.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.peer.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m bridge.mlagents_peer --mlagents-port P`: the built-in player under ML-Agents control.

    The run config arrives on the side channel and carries the player's PlayerSettings; the player
    then runs exactly as when started directly (generator.player.run_player), reports done or failed,
    and exits when the launcher closes the environment. Exit codes are the player's."""
    import argparse
    import signal

    from generator.player import EXIT_BAD_INPUT, PlayerSettings, run_player

    ap = argparse.ArgumentParser(prog="python -m bridge.mlagents_peer", description="posebridge built-in player, driven through ML-Agents.")
    ap.add_argument("--mlagents-port", type=int, required=True, help="the launcher's communicator port")
    ap.add_argument("--connect-timeout", type=float, default=60.0)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    session = ControlSession(args.mlagents_port, connect_timeout_s=args.connect_timeout).start()
    try:
        try:
            run_config = session.wait_assignment(args.connect_timeout + 30.0)
            settings = PlayerSettings.model_validate(run_config.player)
            if (settings.run_id, settings.player_id, settings.frame_ids) != (run_config.run_id, run_config.player_id, run_config.frames):
                raise ControlError("the run config's player settings disagree with its run id, player id or frames")
        except (ControlError, ValidationError) as e:
            log.error("no usable run config: %s", e)
            session.report("failed", code="config_invalid", message=str(e))
            session.wait_closed(10.0)
            return EXIT_BAD_INPUT
        planned = len(run_config.frame_ids())
        session.report("running", frames_planned=planned)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        # The launcher closing the environment means stop, too.
        threading.Thread(target=lambda: session.wait_closed(None) and stop.set(), name="close-watch", daemon=True).start()
        code = run_player(settings, stop)
        if code == 0:
            session.report("done", frames_sent=planned, frames_planned=planned)
        else:
            session.report("failed", frames_planned=planned, code=f"exit_{code}", message=f"the built-in player exited with code {code}")
        session.wait_closed(30.0)  # the launcher reads the final status, then closes
        return code
    finally:
        session.close()


if __name__ == "__main__":
    import sys

    sys.exit(main())
