"""Read an encoded image's format and dimensions from its headers, without decoding the pixels.

The collector runs this on every frame, so it walks only the few marker segments (JPEG) or
chunk headers (PNG) and checks the end marker, which catches truncated and non-image parts at
a few microseconds per frame. Full decoding is left to `posebridge inspect --verify`.
"""

from __future__ import annotations

import zlib

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> decoded channels (palette decodes to RGB)


class ImageProbeError(ValueError):
    """The bytes are not a complete image of the stated encoding; the text says why."""


def probe_jpeg(data) -> tuple[int, int, int]:
    """(width, height, channels) from a JPEG's SOF segment; checks SOI, the segment chain and EOI."""
    mv = memoryview(data)
    n = len(mv)
    if n < 4 or mv[0] != 0xFF or mv[1] != 0xD8:
        raise ImageProbeError("not a JPEG: no SOI marker")
    if mv[n - 2] != 0xFF or mv[n - 1] != 0xD9:
        raise ImageProbeError("JPEG is truncated: it does not end with the EOI marker")
    i = 2
    size = None
    while True:
        if i + 4 > n:
            raise ImageProbeError("JPEG is truncated before its scan")
        if mv[i] != 0xFF:
            raise ImageProbeError(f"JPEG is corrupt: marker expected at byte {i}")
        while mv[i] == 0xFF and i + 1 < n:  # fill bytes
            i += 1
        marker = mv[i]
        i += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xD9:
            raise ImageProbeError("JPEG has no scan (EOI before SOS)")
        if i + 2 > n:
            raise ImageProbeError("JPEG is truncated inside a segment header")
        length = (mv[i] << 8) | mv[i + 1]
        if length < 2 or i + length > n:
            raise ImageProbeError(f"JPEG segment 0x{marker:02X} at byte {i - 2} has a bad length {length}")
        if marker in _JPEG_SOF:
            if length < 8:
                raise ImageProbeError("JPEG SOF segment is too short")
            height = (mv[i + 3] << 8) | mv[i + 4]
            width = (mv[i + 5] << 8) | mv[i + 6]
            components = mv[i + 7]
            if length != 8 + 3 * components:
                raise ImageProbeError(f"JPEG SOF length {length} does not fit {components} components")
            if width == 0 or height == 0:
                raise ImageProbeError(f"JPEG has a zero dimension ({width}x{height})")
            size = (width, height, components)
        elif marker == 0xDA:
            if size is None:
                raise ImageProbeError("JPEG has a scan before its frame header (no SOF)")
            return size
        i += length


def probe_png(data) -> tuple[int, int, int]:
    """(width, height, channels) from a PNG's IHDR; checks the signature, IHDR CRC, chunk chain and IEND."""
    mv = memoryview(data)
    n = len(mv)
    if n < 8 + 25 or mv[:8] != _PNG_SIGNATURE:
        raise ImageProbeError("not a PNG: bad signature")
    if mv[12:16] != b"IHDR" or int.from_bytes(mv[8:12], "big") != 13:
        raise ImageProbeError("PNG does not start with a 13-byte IHDR chunk")
    if zlib.crc32(mv[12:29]) != int.from_bytes(mv[29:33], "big"):
        raise ImageProbeError("PNG IHDR checksum mismatch")
    width = int.from_bytes(mv[16:20], "big")
    height = int.from_bytes(mv[20:24], "big")
    bit_depth, colour_type = mv[24], mv[25]
    if colour_type not in _PNG_CHANNELS:
        raise ImageProbeError(f"PNG has an invalid colour type {colour_type}")
    if bit_depth != 8:
        raise ImageProbeError(f"PNG has bit depth {bit_depth}; the protocol carries 8-bit images")
    pos = 33
    saw_data = False
    while True:
        if pos + 12 > n:
            raise ImageProbeError("PNG is truncated: no IEND chunk")
        length = int.from_bytes(mv[pos : pos + 4], "big")
        kind = bytes(mv[pos + 4 : pos + 8])
        end = pos + 12 + length
        if end > n:
            raise ImageProbeError(f"PNG chunk {kind!r} at byte {pos} runs past the end")
        if kind == b"IDAT":
            saw_data = True
        elif kind == b"IEND":
            if end != n:
                raise ImageProbeError(f"PNG has {n - end} bytes after IEND")
            if not saw_data:
                raise ImageProbeError("PNG has no IDAT chunk")
            return width, height, _PNG_CHANNELS[colour_type]
        pos = end


def probe_image(encoding: str, data, shape: tuple[int, int, int]) -> None:
    """Check that `data` is a complete `encoding` image of `shape` = (height, width, channels)."""
    height, width, channels = shape
    if encoding == "raw":
        if len(data) != height * width * channels:
            raise ImageProbeError(f"raw image has {len(data)} bytes, {height}x{width}x{channels} needs {height * width * channels}")
        return
    if encoding == "jpeg":
        w, h, c = probe_jpeg(data)
    elif encoding == "png":
        w, h, c = probe_png(data)
    else:
        raise ImageProbeError(f"unknown encoding {encoding!r}")
    if (w, h, c) != (width, height, channels):
        raise ImageProbeError(f"{encoding} is {w}x{h} with {c} channels; the header states {width}x{height} with {channels}")
