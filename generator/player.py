"""The built-in player: a process that renders frames of a run and streams them over the protocol.

It speaks only the wire protocol (hello, frames, heartbeats, end-of-stream, error), exactly as
the Unity player does, so the collector cannot tell them apart except by `player_kind`. Each
frame is a function of (config, seed, frame_id): `sample_scene` draws it, `MannequinRenderer`
draws it, `scene_ground_truth` gives its keypoints, and Pillow encodes the image.

    python -m generator.player --endpoint tcp://127.0.0.1:5557 --run-id R --player-id builtin-0 \\
        --seed 0 --frame-ids 0-999 [--config run.yaml] [--image-size 256]

or `--settings FILE.json` with a `PlayerSettings` (what `posebridge generate` passes).
Exit codes: 0 done, 2 bad settings or a frame that cannot be made, 3 collector unreachable,
130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import logging
import platform
import signal
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config_file import read_config_mapping
from .masks import MASK_ENCODING, encode_mask_png
from .body.model import PHENOTYPE_LABELS
from .render.post import apply_post_effects
from .scene import SceneConfig, sample_scene, scene_ground_truth

log = logging.getLogger(__name__)

EXIT_OK, EXIT_BAD_INPUT, EXIT_NO_COLLECTOR, EXIT_SIGNAL = 0, 2, 3, 130


class PlayerConfig(BaseModel):
    """What a built-in player renders (the `player:` section of a generate config)."""

    model_config = ConfigDict(extra="forbid")

    scene: SceneConfig = Field(default_factory=SceneConfig)
    pose_source: str = "bundled"  # a mocap file or folder, "bundled" or "prior" (generator.poses)
    pose_fps: float = Field(30.0, gt=0)  # clips are subsampled to this rate
    pose_exclude_subjects: list[str] = Field(default_factory=list)  # e.g. the people held out for evaluation
    encoding: Literal["jpeg", "png", "raw"] = "jpeg"
    jpeg_quality: int = Field(90, ge=1, le=100)
    # Send each frame's person mask as a third message part (protocol 1.1). A collector older
    # than 1.1 refuses three-part frames: turn it off for one (docs/protocol.md, Versioning).
    mask: bool = True


class PlayerSettings(BaseModel):
    """One player process's job: where to send, which run, which frames."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str
    run_id: str
    player_id: str
    seed: int = Field(ge=0)
    frame_ids: str = ""  # "0-999,2000-2999" (bridge.workplan.format_id_ranges)
    # Lease the frames in units from `posebridge generate`'s work queue (bridge/workqueue.py)
    # instead of (after) `frame_ids`, so fast players take more and none idles at the end.
    work_endpoint: str | None = None
    config: PlayerConfig = Field(default_factory=PlayerConfig)
    heartbeat_s: float = Field(1.0, gt=0)
    send_hwm: int = Field(100, ge=1)
    linger_ms: int = Field(5000, ge=0)
    send_timeout_s: float = Field(120.0, gt=0)
    curve_server_key: Path | None = None  # the collector's public key file
    curve_client_key: Path | None = None  # this player's secret key file


def encode_image(pixels: np.ndarray, encoding: str, jpeg_quality: int = 90) -> bytes:
    """JPEG or PNG bytes through Pillow (PNG at compress level 1: fast), or the raw uint8 bytes."""
    if encoding == "raw":
        return np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    buf = io.BytesIO()
    if encoding == "jpeg":
        Image.fromarray(pixels).save(buf, format="JPEG", quality=jpeg_quality)
    elif encoding == "png":
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"unknown image encoding {encoding!r}")
    return buf.getvalue()


def scene_renderer(config: SceneConfig):
    """The renderer of a scene config's figure: the human body (its identity pool built once per
    process) or the mannequin."""
    from .render import HumanRenderer, MannequinRenderer

    w, h = config.image_size
    photo_dir = config.background.photo_dir
    if config.body_model == "human":
        from .body.pool import BodyPool

        return HumanRenderer(w, h, BodyPool.for_config(config.human), photo_dir=photo_dir)
    return MannequinRenderer(w, h, photo_dir=photo_dir)


class FrameProducer:
    """Renders any frame of a run and encodes it as a protocol `[header, image, mask]` message
    (`[header, image]` when the config's `mask` is off)."""

    def __init__(self, config: PlayerConfig, seed: int):
        from .poses import load_pose_source

        self.config = config
        self.seed = int(seed)
        self.bank = load_pose_source(config.pose_source, seed=self.seed, fps=config.pose_fps, exclude_subjects=config.pose_exclude_subjects)
        self.renderer = scene_renderer(config.scene)

    def message(self, frame_id: int, run_id: str, player_id: str, seq: int) -> list[bytes]:
        from bridge.protocol import ImageInfo, MaskInfo, encode_frame_header

        scene = sample_scene(self.config.scene, self.bank, self.seed, frame_id)
        gt = scene_ground_truth(scene)
        frame = self.renderer.render(scene)
        rgb = apply_post_effects(frame.rgb, scene.post)
        quality = self.config.jpeg_quality if scene.post.jpeg_quality is None else scene.post.jpeg_quality
        image = encode_image(rgb, self.config.encoding, quality)
        w, h = scene.image_size
        info = ImageInfo(encoding=self.config.encoding, shape=(h, w, 3), size_bytes=len(image), crc32=zlib.crc32(image))
        parts = [image]
        mask_info = None
        if self.config.mask:
            mask = encode_mask_png(frame.mask)
            mask_info = MaskInfo(encoding=MASK_ENCODING, shape=(h, w), size_bytes=len(mask), crc32=zlib.crc32(mask))
            parts.append(mask)
        meta = {
            "camera_profile": scene.camera_profile,
            "mirrored": bool(scene.source.get("mirrored", False)),
            "background": scene.background.kind,
            "occluders": len(scene.occluders),
            "body": self.config.scene.body_model,
            "blur_px": round(scene.post.blur_sigma_px, 3),
            "motion_px": round(scene.post.motion_length_px, 3),
            "noise": round(scene.post.noise_sigma, 3),
            "jpeg_quality": quality if self.config.encoding == "jpeg" else 0,
        }
        if scene.human is not None:  # meta holds scalars: the identity and its phenotype, one key each
            meta["identity"] = scene.human.identity
            meta.update({f"phenotype_{k}": round(float(v), 4) for k, v in zip(PHENOTYPE_LABELS, scene.human.phenotype)})
        header = encode_frame_header(
            run_id=run_id,
            player_id=player_id,
            seq=seq,
            frame_id=int(frame_id),
            seed=self.seed,
            K=scene.K,
            image_size=scene.image_size,
            R=scene.R,
            t=scene.t,
            joints_2d=gt.joints_2d,
            joints_3d=gt.joints_3d,
            joints_3d_world=gt.joints_3d_world,
            visibility=frame.visibility,
            joints_2d_right=gt.joints_2d_right,
            baseline_mm=scene.baseline_mm,
            source={k: scene.source[k] for k in ("kind", "clip", "frame", "subject", "action")},
            image=info,
            mask=mask_info,
            meta=meta,
        )
        return [header, *parts]

    def capabilities(self):
        from bridge.protocol import Capabilities

        return Capabilities(encodings=["jpeg", "png", "raw"], visibility="depth_buffer", right_view=True, max_image_size=(8192, 8192))

    def close(self) -> None:
        self.renderer.close()


def versions() -> dict[str, str]:
    import moderngl

    from posebridge import __version__

    return {"posebridge": __version__, "python": platform.python_version(), "moderngl": moderngl.__version__, "numpy": np.__version__}


def stream_frames(
    producer: FrameProducer, channel, frame_ids, heartbeat_s: float = 1.0, stop: threading.Event | None = None, frames_planned: int | None = None
) -> int:
    """Send hello, every frame of `frame_ids` (heartbeats between), and end-of-stream; returns frames sent.

    `frame_ids` is an array, or an iterable of arrays (units leased one at a time: the next is
    asked for when the last frame of the one before is sent; `frames_planned` then only counts
    what is known). `channel` is a bridge.transport.PlayerChannel. A frame that cannot be made
    is reported with a fatal error message and re-raised.
    """
    units = [frame_ids] if isinstance(frame_ids, np.ndarray) else frame_ids
    planned = len(frame_ids) if frames_planned is None and isinstance(frame_ids, np.ndarray) else int(frames_planned or 0)
    channel.send_hello("builtin", producer.capabilities(), planned, versions())
    sent = 0
    started = last_beat = time.monotonic()
    for unit in units:
        if stop is not None and stop.is_set():
            break
        planned = max(planned, sent + len(unit))
        for frame_id in unit.tolist():
            if stop is not None and stop.is_set():
                break
            try:
                message = producer.message(frame_id, channel.run_id, channel.player_id, channel.take_seq())
            except Exception as e:
                channel.send_error("frame_failed", f"frame {frame_id}: {type(e).__name__}: {e}", fatal=True, frame_id=frame_id)
                raise
            channel.send(message)
            sent += 1
            now = time.monotonic()
            if now - last_beat >= heartbeat_s:
                channel.send_heartbeat(sent, planned, sent / max(now - started, 1e-9))
                last_beat = now
    if stop is not None and stop.is_set():
        channel.send_timeout_s = min(channel.send_timeout_s, 2.0)  # stopping: do not wait long for a gone collector
    channel.send_end(sent)
    return sent


def run_player(settings: PlayerSettings, stop: threading.Event | None = None) -> int:
    """Run one player to completion; returns the process exit code."""
    from bridge.transport import PlayerChannel, SendTimeout
    from bridge.workplan import parse_id_ranges
    from bridge.workqueue import WorkServerGone, lease_units

    frame_ids = parse_id_ranges(settings.frame_ids)
    units = [frame_ids]
    leased = None
    if settings.work_endpoint:
        leased = lease_units(settings.work_endpoint, settings.run_id, settings.player_id, settings.send_timeout_s, stop)
        units = itertools.chain(units, leased)
    channel = PlayerChannel(
        settings.endpoint,
        settings.run_id,
        settings.player_id,
        send_hwm=settings.send_hwm,
        linger_ms=settings.linger_ms,
        send_timeout_s=settings.send_timeout_s,
        curve_server_key=settings.curve_server_key,
        curve_client_key=settings.curve_client_key,
    )
    producer = None
    linger = None
    try:
        try:
            producer = FrameProducer(settings.config, settings.seed)
        except Exception as e:  # noqa: BLE001 - reported to the collector, then the exit code says it
            log.error("%s: cannot start: %s", settings.player_id, e)
            channel.send_error("config_invalid", f"{type(e).__name__}: {e}", fatal=True)
            return EXIT_BAD_INPUT
        sent = stream_frames(producer, channel, units, settings.heartbeat_s, stop, frames_planned=len(frame_ids))
        log.info("%s: sent %d frames", settings.player_id, sent)
        if stop is not None and stop.is_set():
            linger = 1000
            return EXIT_SIGNAL
        return EXIT_OK
    except (SendTimeout, WorkServerGone) as e:
        log.error("%s", e)
        linger = 0
        return EXIT_NO_COLLECTOR
    except Exception as e:  # noqa: BLE001
        log.error("%s: %s: %s", settings.player_id, type(e).__name__, e)
        return EXIT_BAD_INPUT
    finally:
        if leased is not None:
            leased.close()
        if producer is not None:
            producer.close()
        channel.close(linger)


def _settings_from_args(args: argparse.Namespace) -> PlayerSettings:
    data: dict = {}
    if args.settings:
        data = json.loads(Path(args.settings).read_text())
    if args.config:
        config_data = read_config_mapping(args.config)
        data["config"] = config_data.get("player", config_data)
    for key in ("endpoint", "run_id", "player_id", "seed", "frame_ids"):
        value = getattr(args, key)
        if value is not None:
            data[key] = value
    if args.image_size is not None:
        data.setdefault("config", {}).setdefault("scene", {})["image_size"] = (args.image_size, args.image_size)
    if args.no_mask:
        data.setdefault("config", {})["mask"] = False
    for key in ("curve_server_key", "curve_client_key"):
        if getattr(args, key):
            data[key] = getattr(args, key)
    return PlayerSettings.model_validate(data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m generator.player", description="posebridge built-in player: render frames and stream them to a collector.")
    ap.add_argument("--settings", help="a PlayerSettings JSON file (flags below override it)")
    ap.add_argument("--config", help="a YAML/JSON generate config; its `player:` section is used")
    ap.add_argument("--endpoint")
    ap.add_argument("--run-id", dest="run_id")
    ap.add_argument("--player-id", dest="player_id")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--frame-ids", dest="frame_ids", help="e.g. 0-999,2000-2999")
    ap.add_argument("--image-size", type=int, dest="image_size")
    ap.add_argument("--no-mask", action="store_true", help="send no person mask (for a collector older than protocol 1.1)")
    ap.add_argument("--curve-server-key", dest="curve_server_key", help="the collector's public key file")
    ap.add_argument("--curve-client-key", dest="curve_client_key", help="this player's secret key file")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = _settings_from_args(args)
    except (OSError, ValueError, ValidationError) as e:  # ConfigError is a ValueError
        print(f"player: bad settings: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return run_player(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
