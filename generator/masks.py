"""The person mask's file format (docs/conventions.md, "Person mask"): an 8-bit greyscale PNG, one
byte per pixel, 1 where the person is the visible surface and 0 elsewhere (background, occluders,
and the parts of the person that something hides).

One codec for the player (encode), the collector (validate before storing) and the readers
(decode), so what is checked is what is read.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

MASK_ENCODING = "png"
PNG_COMPRESS_LEVEL = 1  # fast: a binary mask compresses well even at level 1
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MaskError(ValueError):
    """Bytes that are not a valid person mask; the text says why."""


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_mask_png(mask: np.ndarray) -> bytes:
    """An (H, W) uint8 mask of 0/1 as PNG bytes: greyscale, 8-bit, filter 0 on every row, one
    IDAT at zlib level 1. Written directly (a standard PNG that any decoder reads) because it is
    4-5x faster than Pillow's encoder, whose per-row filter search buys nothing on a 0/1 image."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise ValueError(f"a mask is an (H, W) uint8 array, got {mask.dtype} {mask.shape}")
    h, w = mask.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)  # each row starts with its filter type, 0 (none)
    rows[:, 1:] = mask
    return b"".join(
        (
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)),  # 8-bit, greyscale, no interlace
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL)),
            _png_chunk(b"IEND", b""),
        )
    )


def decode_mask_png(data, shape: tuple[int, int] | None = None, check_values: bool = True) -> np.ndarray:
    """The (H, W) uint8 mask of PNG bytes; MaskError unless it is an 8-bit greyscale PNG (of
    `shape` = (height, width) when given) whose values are only 0 and 1."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.mode != "L":
                raise MaskError(f"mask PNG has mode {im.mode}; a mask is 8-bit greyscale (mode L)")
            mask = np.array(im)  # writable (torch.from_numpy wants that)
    except MaskError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken data
        raise MaskError(f"mask does not decode as a PNG ({type(e).__name__}: {e})") from None
    if shape is not None and mask.shape != tuple(shape):
        raise MaskError(f"mask is {mask.shape[0]}x{mask.shape[1]} (rows x columns); the image is {shape[0]}x{shape[1]}")
    if check_values and mask.size and mask.max() > 1:
        bad = np.unique(mask[mask > 1])
        raise MaskError(f"mask holds values other than 0 and 1: {bad[:5].tolist()}" + (" ..." if len(bad) > 5 else ""))
    return mask


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels just outside the mask (4-neighbours of a person pixel that are not
    person pixels), so an outline drawn there leaves every person pixel as it was rendered."""
    m = np.asarray(mask, dtype=bool)
    grown = m.copy()
    grown[1:] |= m[:-1]
    grown[:-1] |= m[1:]
    grown[:, 1:] |= m[:, :-1]
    grown[:, :-1] |= m[:, 1:]
    return grown & ~m
