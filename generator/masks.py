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
    `shape` = (height, width) when given) whose values are only 0 and 1.

    PNGs laid out as `encode_mask_png` writes them (greyscale, 8-bit, not interlaced, filter 0 on
    every row) are decoded with one zlib inflate; any other PNG goes through Pillow.
    """
    rows = _decode_unfiltered(data)
    mask = _decode_with_pillow(data) if rows is None else rows[:, 1:].copy()  # contiguous and writable
    _check_mask(mask, shape, check_values)
    return mask


def count_mask_pixels(data, shape: tuple[int, int]) -> int:
    """Validate mask PNG bytes as `decode_mask_png` does and return its person pixel count. The
    collector runs this on every frame: on the fast path it reduces the inflated rows in place
    (their filter bytes are 0, so they change neither the maximum nor the count)."""
    rows = _decode_unfiltered(data)
    if rows is None:
        return int(np.count_nonzero(decode_mask_png(data, shape)))
    _check_mask(rows[:, 1:], shape, check_values=False)
    if rows.max() > 1:
        _check_mask(rows[:, 1:], shape, check_values=True)  # raises, naming the values
    return int(np.count_nonzero(rows))


def _check_mask(mask: np.ndarray, shape: tuple[int, int] | None, check_values: bool) -> None:
    if shape is not None and mask.shape != tuple(shape):
        raise MaskError(f"mask is {mask.shape[0]}x{mask.shape[1]} (rows x columns); the image is {shape[0]}x{shape[1]}")
    if check_values and mask.size and mask.max() > 1:
        bad = np.unique(mask[mask > 1])
        raise MaskError(f"mask holds values other than 0 and 1: {bad[:5].tolist()}" + (" ..." if len(bad) > 5 else ""))


def _decode_unfiltered(data) -> np.ndarray | None:
    """The inflated rows (H, W + 1) of a greyscale 8-bit PNG whose rows all use filter 0 (column 0
    holds the filter bytes, the mask is [:, 1:]), or None for any other PNG."""
    mv = memoryview(data).cast("B")
    if len(mv) < 33 or mv[:8] != _PNG_SIGNATURE or mv[12:16] != b"IHDR":
        return None
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", mv[16:29])
    if (depth, colour, interlace) != (8, 0, 0) or width == 0 or height == 0:
        return None
    idat, pos = [], 33
    while pos + 12 <= len(mv):
        length = int.from_bytes(mv[pos : pos + 4], "big")
        kind = bytes(mv[pos + 4 : pos + 8])
        if kind == b"IDAT":
            idat.append(mv[pos + 8 : pos + 8 + length])
        elif kind == b"IEND":
            break
        pos += 12 + length
    try:
        raw = zlib.decompress(idat[0] if len(idat) == 1 else b"".join(idat))
    except (zlib.error, IndexError) as e:
        raise MaskError(f"mask PNG's image data does not inflate ({e or 'no IDAT chunk'})") from None
    if len(raw) != height * (width + 1):
        raise MaskError(f"mask PNG's image data inflates to {len(raw)} bytes; {width}x{height} needs {height * (width + 1)}")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():
        return None  # filtered rows (another encoder): let Pillow undo the filters
    return rows


def _decode_with_pillow(data) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.mode != "L":
                raise MaskError(f"mask PNG has mode {im.mode}; a mask is 8-bit greyscale (mode L)")
            return np.array(im)  # writable (torch.from_numpy wants that)
    except MaskError:
        raise
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken data
        raise MaskError(f"mask does not decode as a PNG ({type(e).__name__}: {e})") from None


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
