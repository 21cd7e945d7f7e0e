"""Valid protocol frames without a renderer: a random pose under a random camera, with exact
ground truth from generator.camera and a real encoded image (a gradient with noise).

This is a load generator for the collector (bench/bridge.py, the transport and fuzz tests),
not a player: its images do not show the pose. `python -m bridge.synthetic` runs it as a
separate process speaking the protocol over a real socket.
"""

from __future__ import annotations

import argparse
import sys
import zlib

import numpy as np

from generator.player import encode_image
from generator.camera import in_image, intrinsics_from_fov, look_at, project_points, right_view_points, world_to_camera
from generator.skeleton import NUM_JOINTS

from .protocol import Capabilities, ImageInfo, MaskInfo, encode_frame_header
from .transport import PlayerChannel, SendTimeout
from .workplan import parse_id_ranges

# A standing person's joints in mm around the pelvis (x right, y forward, z up), h36m17 order.
_STANDING = np.array(
    [
        [0, 0, 950], [-130, 0, 950], [-130, 0, 500], [-130, 0, 80], [130, 0, 950], [130, 0, 500], [130, 0, 80],
        [0, 0, 1200], [0, 0, 1450], [0, 30, 1550], [0, 0, 1700], [180, 0, 1430], [200, 0, 1150], [210, 0, 900],
        [-180, 0, 1430], [-200, 0, 1150], [-210, 0, 900],
    ],
    dtype=np.float64,
)


def synthetic_image(rng: np.random.Generator, width: int, height: int, noise: float = 12.0) -> np.ndarray:
    """A colour gradient with pixel noise (noise sets the JPEG size: ~20 KB at 256x256 with 12)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3).astype(np.float32)
    slope = rng.uniform(-0.3, 0.3, (2, 3)).astype(np.float32)
    img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1] + rng.normal(0, noise, (height, width, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_ground_truth(rng: np.random.Generator, width: int, height: int, baseline_mm: float = 500.0) -> dict:
    """Camera and keypoints of a jittered standing pose seen from 3-6 m, as numpy arrays."""
    joints_world = _STANDING + rng.normal(0, 40, (NUM_JOINTS, 3))
    joints_world[:, :2] += rng.uniform(-1000, 1000, 2)
    azimuth = rng.uniform(-np.pi, np.pi)
    distance = rng.uniform(3000, 6000)
    target = joints_world[0] + rng.normal(0, 100, 3)
    position = target + distance * np.array([np.cos(azimuth), np.sin(azimuth), rng.uniform(0.0, 0.3)])
    R, t = look_at(position, target, roll_rad=rng.uniform(-0.05, 0.05))
    K = intrinsics_from_fov(rng.uniform(45, 70), width, height)
    joints_3d = world_to_camera(joints_world, R, t)
    joints_2d = project_points(joints_3d, K)
    visibility = np.where(in_image(joints_2d, (width, height), joints_3d[:, 2]), 2, 0).astype(np.uint8)
    return {
        "K": K,
        "R": R,
        "t": t,
        "image_size": (width, height),
        "joints_2d": joints_2d,
        "joints_3d": joints_3d,
        "joints_3d_world": joints_world,
        "visibility": visibility,
        "joints_2d_right": project_points(right_view_points(joints_3d, baseline_mm), K),
        "baseline_mm": baseline_mm,
    }


def synthetic_mask(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A person-mask stand-in: (H, W) uint8, 1 inside an upright ellipse about a third of the
    image tall (a few % of the pixels, like a rendered person in a wide shot), 0 elsewhere."""
    y, x = np.mgrid[:height, :width] + 0.5
    cx, cy = rng.uniform(0.35, 0.65) * width, rng.uniform(0.35, 0.65) * height
    ry, rx = rng.uniform(0.12, 0.25) * height, rng.uniform(0.04, 0.08) * width
    return (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0).astype(np.uint8)


def synthetic_frame(
    rng: np.random.Generator,
    *,
    run_id: str,
    player_id: str,
    seq: int,
    frame_id: int,
    seed: int,
    image: bytes,
    image_size: tuple[int, int],
    encoding: str = "jpeg",
    mask: bytes | None = None,
) -> list[bytes]:
    """One valid `[header, image]` message around an already encoded image, or `[header, image,
    mask]` with an already encoded mask PNG."""
    w, h = image_size
    gt = synthetic_ground_truth(rng, w, h)
    info = ImageInfo(encoding=encoding, shape=(h, w, 3), size_bytes=len(image), crc32=zlib.crc32(image))
    mask_info = None if mask is None else MaskInfo(encoding="png", shape=(h, w), size_bytes=len(mask), crc32=zlib.crc32(mask))
    source = {"kind": "clip", "clip": "synthetic", "frame": int(frame_id), "subject": "synthetic", "action": "stand"}
    header = encode_frame_header(run_id=run_id, player_id=player_id, seq=seq, frame_id=frame_id, seed=seed, source=source, image=info,
                                 mask=mask_info, **gt)
    return [header, image] if mask is None else [header, image, mask]


def main(argv: list[str] | None = None) -> int:
    """Send synthetic frames for the given frame ids over a real PUSH socket, then end-of-stream."""
    ap = argparse.ArgumentParser(prog="python -m bridge.synthetic", description=main.__doc__)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--player-id", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frame-ids", required=True, help="ranges like 0-99,200-299")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--send-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    size = (args.image_size, args.image_size)
    image = encode_image(synthetic_image(rng, *size), "jpeg")
    ids = parse_id_ranges(args.frame_ids)
    channel = PlayerChannel(args.endpoint, args.run_id, args.player_id, send_timeout_s=args.send_timeout)
    linger = None
    try:
        caps = Capabilities(encodings=["jpeg"], visibility="none", right_view=True, max_image_size=size)
        channel.send_hello("builtin", caps, len(ids), {"posebridge": "synthetic"})
        for frame_id in ids:
            channel.send(synthetic_frame(rng, run_id=args.run_id, player_id=args.player_id, seq=channel.take_seq(),
                                         frame_id=int(frame_id), seed=args.seed, image=image, image_size=size))
        channel.send_end(len(ids))
    except SendTimeout as e:
        print(f"SendTimeout: {e}", file=sys.stderr)
        linger = 0
        return 3
    finally:
        channel.close(linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
