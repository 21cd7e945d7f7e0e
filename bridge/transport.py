"""ZeroMQ transport: players PUSH, the collector binds a PULL socket.

Back-pressure, not loss: a PUSH socket blocks once its send high-water mark and the collector's
receive high-water mark (plus the kernel's TCP buffers) are full, so a slow collector slows the
players down and no message is dropped. Sends block in slices of `SEND_SLICE_MS` so a player can
give up after `send_timeout_s` when the collector is gone instead of hanging forever.

Optional CurveZMQ: the collector holds a secret key; players must know its public key and, when
`authorized_keys` names a folder of player public keys, hold one of the matching secret keys.
Key files are the `zmq.auth` certificate format (`NAME.key` public, `NAME.key_secret` secret).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from pathlib import Path

import zmq
import zmq.auth
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .protocol import (
    Capabilities,
    EndOfStream,
    ErrorMessage,
    Heartbeat,
    Hello,
    PlayerKind,
    encode_message,
)

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:*"  # loopback, a free port
SEND_SLICE_MS = 250
_WILDCARD_HOSTS = ("0.0.0.0", "*", "[::]", "::")


class CurveConfig(BaseModel):
    """CurveZMQ on the collector's side."""

    model_config = ConfigDict(extra="forbid")

    server_secret_key: Path = Field(description="The collector's secret key file (NAME.key_secret from `posebridge keys`).")
    authorized_keys: Path | None = Field(
        None, description="Folder of player public keys (*.key) allowed to connect; None lets any player that knows the server key in."
    )


class TransportConfig(BaseModel):
    """Collector-side socket settings (the `transport:` section of a generate config)."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[str] = Field(default_factory=lambda: [DEFAULT_ENDPOINT], min_length=1)
    receive_hwm: int = Field(1000, ge=1, description="Messages queued in the collector before players block.")
    send_hwm: int = Field(100, ge=1, description="Messages queued in each player before its send blocks.")
    player_linger_ms: int = Field(5000, ge=0, description="How long a closing player keeps trying to deliver queued messages.")
    send_timeout_s: float = Field(120.0, gt=0, description="A player gives up when one send stays blocked this long.")
    max_message_bytes: int = Field(64 << 20, ge=1024, description="ZMQ_MAXMSGSIZE: a larger part drops the sender's connection.")
    max_header_bytes: int = Field(64 << 10, ge=1024, description="A larger header part is rejected before it is parsed.")
    curve: CurveConfig | None = None

    @field_validator("endpoints")
    @classmethod
    def _endpoints(cls, v: list[str]) -> list[str]:
        for e in v:
            if not re.match(r"^(tcp|ipc|inproc)://.+", e):
                raise ValueError(f"endpoint {e!r} must look like tcp://HOST:PORT, tcp://HOST:*, ipc://PATH or inproc://NAME")
        return v


class SendTimeout(RuntimeError):
    """A player's send stayed blocked past its timeout: the collector is gone or stuck."""


# ------------------------------------------------------------------------------------------------
# keys


def generate_keys(directory: str | Path, name: str) -> tuple[Path, Path]:
    """Create a CurveZMQ key pair `NAME.key` (public) and `NAME.key_secret` (secret, mode 0600)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for suffix in (".key", ".key_secret"):
        if (directory / f"{name}{suffix}").exists():
            raise FileExistsError(f"{directory / (name + suffix)} exists; choose another name or delete it first")
    public, secret = zmq.auth.create_certificates(str(directory), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def _load_certificate(path: Path) -> tuple[bytes, bytes | None]:
    try:
        return zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a CurveZMQ key file ({e})") from e


def load_public_key(path: str | Path) -> bytes:
    """The public key of a key file (either half of a pair)."""
    return _load_certificate(Path(path))[0]


def load_key_pair(path: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) from a NAME.key_secret file."""
    path = Path(path)
    public, secret = _load_certificate(path)
    if not secret:
        raise ValueError(f"{path}: holds no secret key (use the NAME.key_secret file)")
    return public, secret


# ------------------------------------------------------------------------------------------------
# collector side


class PullServer:
    """The collector's bound PULL socket (and, with CURVE, its ZAP authenticator and a monitor)."""

    def __init__(self, config: TransportConfig, context: zmq.Context | None = None):
        self.config = config
        self.context = context or zmq.Context.instance()
        self._authenticator = None
        self._monitor: zmq.Socket | None = None
        self.auth_failures = 0
        self.socket = self.context.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, config.receive_hwm)
        self.socket.setsockopt(zmq.MAXMSGSIZE, config.max_message_bytes)
        self.socket.setsockopt(zmq.LINGER, 0)
        if config.curve is not None:
            self._setup_curve(config.curve)
        self.endpoints: list[str] = []
        try:
            for endpoint in config.endpoints:
                self.socket.bind(endpoint)
                self.endpoints.append(self.socket.getsockopt_string(zmq.LAST_ENDPOINT))
        except zmq.ZMQError as e:
            self.close()
            raise OSError(f"cannot bind collector endpoint {endpoint!r}: {e}") from e
        log.info("collector listening on %s%s", ", ".join(self.endpoints), " (CURVE)" if config.curve else "")

    def _setup_curve(self, curve: CurveConfig) -> None:
        from zmq.auth.thread import ThreadAuthenticator

        public, secret = load_key_pair(curve.server_secret_key)
        self._authenticator = ThreadAuthenticator(self.context, log=logging.getLogger(__name__ + ".auth"))
        self._authenticator.start()
        if curve.authorized_keys is None:
            self._authenticator.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        else:
            if not Path(curve.authorized_keys).is_dir():
                raise ValueError(f"authorized_keys {curve.authorized_keys}: not a folder of player public keys")
            self._authenticator.configure_curve(domain="*", location=str(curve.authorized_keys))
        self.socket.curve_secretkey = secret
        self.socket.curve_publickey = public
        self.socket.curve_server = True
        self._monitor = self.socket.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
        )

    def poll_auth_events(self) -> int:
        """Count handshake failures (rejected players) seen since the last call; logs each."""
        if self._monitor is None:
            return 0
        from zmq.utils.monitor import recv_monitor_message

        n = 0
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            n += 1
            log.warning("rejected a player connection: handshake failed (%s)", event.get("endpoint", b"").decode(errors="replace"))
        self.auth_failures += n
        return n

    def connect_endpoints(self) -> list[str]:
        """Endpoints a player on this machine connects to (wildcard hosts become 127.0.0.1)."""
        return [local_endpoint(e) for e in self.endpoints]

    def close(self) -> None:
        if self._monitor is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        self.socket.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None


def local_endpoint(endpoint: str) -> str:
    """`tcp://0.0.0.0:5557` -> `tcp://127.0.0.1:5557` (the address a local player dials)."""
    m = re.match(r"^tcp://(.*):(\d+)$", endpoint)
    if m and m.group(1) in _WILDCARD_HOSTS:
        return f"tcp://127.0.0.1:{m.group(2)}"
    return endpoint


# ------------------------------------------------------------------------------------------------
# player side


class PlayerChannel:
    """A player's PUSH connection: numbers every message (seq) and sends with back-pressure.

    Use `take_seq()` for the header of the next message, then `send()` it; the helpers build
    and send the control messages. `close()` waits up to `linger_ms` to deliver what is queued.
    """

    def __init__(
        self,
        endpoint: str,
        run_id: str,
        player_id: str,
        *,
        send_hwm: int = 100,
        linger_ms: int = 5000,
        send_timeout_s: float = 120.0,
        curve_server_key: str | Path | None = None,
        curve_client_key: str | Path | None = None,
        context: zmq.Context | None = None,
    ):
        self.run_id = run_id
        self.player_id = player_id
        self.endpoint = endpoint
        self.send_timeout_s = send_timeout_s
        self._linger_ms = linger_ms
        self._seq = 0
        self._own_context = context is None
        self.context = context or zmq.Context()
        self.socket = self.context.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, send_hwm)
        self.socket.setsockopt(zmq.SNDTIMEO, SEND_SLICE_MS)
        self.socket.setsockopt(zmq.LINGER, linger_ms)
        if curve_server_key is not None:
            if curve_client_key is None:
                raise ValueError("CURVE needs both the collector's public key and this player's secret key")
            public, secret = load_key_pair(curve_client_key)
            self.socket.curve_serverkey = load_public_key(curve_server_key)
            self.socket.curve_publickey = public
            self.socket.curve_secretkey = secret
        self.socket.connect(endpoint)

    def take_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    @property
    def messages_sent(self) -> int:
        return self._seq

    def send(self, parts: list) -> None:
        """Send one multipart message, blocking while the collector applies back-pressure."""
        deadline = time.monotonic() + self.send_timeout_s
        while True:
            try:
                self.socket.send_multipart(parts, copy=False)
                return
            except zmq.Again:
                if time.monotonic() > deadline:
                    raise SendTimeout(f"{self.player_id}: no progress sending to {self.endpoint} for {self.send_timeout_s:.0f} s") from None

    def _envelope(self) -> dict:
        return {"run_id": self.run_id, "player_id": self.player_id, "seq": self.take_seq()}

    def send_hello(self, kind: PlayerKind, capabilities: Capabilities, frames_planned: int, versions: dict[str, str]) -> None:
        hello = Hello.build(
            **self._envelope(),
            player_kind=kind,
            versions=versions,
            capabilities=capabilities,
            frames_planned=frames_planned,
            pid=os.getpid(),
            host=socket.gethostname()[:256],
        )
        self.send([encode_message(hello)])

    def send_heartbeat(self, frames_sent: int, frames_planned: int, fps: float) -> None:
        beat = Heartbeat.build(**self._envelope(), frames_sent=frames_sent, frames_planned=frames_planned, fps=max(0.0, float(fps)))
        self.send([encode_message(beat)])

    def send_end(self, frames_sent: int) -> None:
        self.send([encode_message(EndOfStream.build(**self._envelope(), frames_sent=frames_sent))])

    def send_error(self, code: str, message: str, fatal: bool, frame_id: int | None = None) -> None:
        error = ErrorMessage.build(**self._envelope(), code=code, message=message[:4096], fatal=fatal, frame_id=frame_id)
        self.send([encode_message(error)])

    def close(self, linger_ms: int | None = None) -> None:
        """Close, waiting up to the linger for queued messages to reach the collector."""
        self.socket.close(linger=self._linger_ms if linger_ms is None else linger_ms)
        if self._own_context:
            self.context.term()

    def __enter__(self) -> "PlayerChannel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
