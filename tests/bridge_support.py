"""Shared helpers of the bridge tests: valid frames without a renderer, a store with a collector."""

from __future__ import annotations

import zlib

import numpy as np

from bridge.collector import Collector, Expectations
from bridge.protocol import ImageInfo, MaskInfo, encode_frame_header
from bridge.synthetic import synthetic_ground_truth, synthetic_image, synthetic_mask
from bridge.transport import TransportConfig
from generator.masks import encode_mask_png
from generator.player import encode_image
from generator.store import DatasetStore

RUN_ID = "test-run"
SEED = 11
SIZE = (48, 40)  # [width, height]
CLIP_SOURCE = {"kind": "clip", "clip": "walk_01", "frame": 3, "subject": "s1", "action": "walk"}


def image_bytes(rng: np.random.Generator, encoding: str = "jpeg", size=SIZE) -> bytes:
    return encode_image(synthetic_image(rng, *size), encoding)


def frame_fields(rng: np.random.Generator, size=SIZE) -> dict:
    """Keyword arguments of encode_frame_header (minus the envelope and image) for a valid frame."""
    return {**synthetic_ground_truth(rng, *size), "source": dict(CLIP_SOURCE)}


def mask_bytes(rng: np.random.Generator, size=SIZE) -> bytes:
    """A person-mask PNG: an ellipse of ones over zeros."""
    return encode_mask_png(synthetic_mask(rng, *size))


def frame_message(fields: dict, image: bytes, *, frame_id: int, seq: int, run_id: str = RUN_ID, player_id: str = "p0",
                  seed: int = SEED, encoding: str = "jpeg", image_info: dict | None = None, mask: bytes | None = None,
                  mask_info: dict | None = None) -> list[bytes]:
    """[header, image] or, with `mask` (PNG bytes), [header, image, mask]; *_info override header fields."""
    w, h = fields["image_size"]
    info = {"encoding": encoding, "shape": (h, w, 3), "size_bytes": len(image), "crc32": zlib.crc32(image), **(image_info or {})}
    minfo = None
    if mask is not None:
        minfo = MaskInfo.model_construct(**{"encoding": "png", "shape": (h, w), "size_bytes": len(mask), "crc32": zlib.crc32(mask), **(mask_info or {})})
    header = encode_frame_header(run_id=run_id, player_id=player_id, seq=seq, frame_id=frame_id, seed=seed,
                                 image=ImageInfo.model_construct(**info), mask=minfo, **fields)
    return [header, image] if mask is None else [header, image, mask]


def open_collector(folder, frames: int, shard_size: int = 16, transport: TransportConfig | None = None, **expect) -> Collector:
    store = DatasetStore.open(folder, {"test": True, "seed": SEED}, frames=frames, shard_size=shard_size, run_id=RUN_ID)
    expectations = Expectations(run_id=RUN_ID, seed=SEED, frames=frames, **expect)
    return Collector(store, expectations, transport)
