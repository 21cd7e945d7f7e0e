"""MATLAB v5 MAT-files (numeric arrays only): the reader behind the LSP/LSPET importer, and a
writer for test fixtures. scipy is not a dependency, and a small reader of our own can promise
what the importers need: every problem is a `MatFileError` naming the file, the variable and the
byte offset, nothing is allocated from a size the file claims before the bytes are there, and a
compressed variable (MATLAB's default since v7) is checked by zlib's Adler-32, so a flipped bit
in it is an error rather than a silently different number.

Supported: little- and big-endian files; `miMATRIX` elements, zlib-compressed (`miCOMPRESSED`)
or not; real numeric classes (double, single, int8..uint64), any number of dimensions, data
stored in any numeric type (MATLAB stores integral doubles as smaller integers). Not supported,
and reported as such: complex, sparse, logical-only, char, cell and struct arrays, v7.3 (HDF5).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np

HEADER_BYTES = 128
MI_COMPRESSED = 15
MI_MATRIX = 14
MI_INT8, MI_INT32, MI_UINT32 = 1, 5, 6
# MAT data types -> numpy dtypes (without byte order).
MI_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
# mxCLASS ids of the numeric classes -> the numpy dtype of the array.
MX_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
MX_NAMES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse"}
FLAG_COMPLEX = 0x0800
# A decompressed variable may be at most this many times its compressed size and this many bytes
# (a zip bomb or a corrupted length cannot exhaust memory).
MAX_VARIABLE_BYTES = 1 << 30


class MatFileError(ValueError):
    """A MAT-file cannot be read; the message names the file, the variable and where."""


class _Cursor:
    def __init__(self, data: bytes | memoryview, order: str, where: str, base: int = 0):
        self.data = memoryview(data)
        self.pos = 0
        self.order = order
        self.where = where
        self.base = base  # offset of data[0] in the file, for messages

    def fail(self, problem: str) -> MatFileError:
        return MatFileError(f"{self.where}: {problem} (byte {self.base + self.pos})")

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def tag(self) -> tuple[int, int, memoryview, int]:
        """(type, nbytes, payload, payload offset in the file) of the next element; advances past it."""
        if self.remaining() < 8:
            raise self.fail(f"the file ends inside an element tag ({self.remaining()} of 8 bytes)")
        start = self.pos
        first, second = struct.unpack_from(self.order + "II", self.data, self.pos)
        if first >> 16:  # small data element: type and size in one word, data in the next 4 bytes
            mtype, nbytes = first & 0xFFFF, first >> 16
            if nbytes > 4:
                raise self.fail(f"a small data element claims {nbytes} bytes (at most 4)")
            payload = self.data[self.pos + 4 : self.pos + 4 + nbytes]
            self.pos += 8
            return mtype, nbytes, payload, self.base + start + 4
        mtype, nbytes = first, second
        if nbytes > self.remaining() - 8:
            raise self.fail(f"an element of type {mtype} claims {nbytes} bytes but only {self.remaining() - 8} follow (truncated?)")
        payload = self.data[self.pos + 8 : self.pos + 8 + nbytes]
        self.pos += 8 + nbytes
        if mtype != MI_COMPRESSED:  # uncompressed elements are padded to 8 bytes
            self.pos = min(len(self.data), self.pos + (-nbytes % 8))
        return mtype, nbytes, payload, self.base + start + 8


def _numeric(payload: memoryview, mtype: int, order: str, cur: _Cursor, what: str) -> np.ndarray:
    if mtype not in MI_TYPES:
        raise cur.fail(f"{what} has data type {mtype}, not a numeric MAT type")
    dtype = np.dtype(order + MI_TYPES[mtype])
    if len(payload) % dtype.itemsize:
        raise cur.fail(f"{what}: {len(payload)} bytes is not a whole number of {dtype.name} values")
    return np.frombuffer(payload, dtype=dtype)


def _matrix(payload: memoryview, order: str, where: str, offset: int) -> tuple[str, np.ndarray]:
    """(name, array) of one miMATRIX element's payload."""
    cur = _Cursor(payload, order, where, offset)
    mtype, _, flags_raw, _ = cur.tag()
    flags = _numeric(flags_raw, mtype, order, cur, "array flags")
    if mtype != MI_UINT32 or len(flags) != 2:
        raise cur.fail("the array flags must be 2 uint32 values")
    mx_class, bits = int(flags[0]) & 0xFF, int(flags[0]) >> 8 << 8
    mtype, _, dims_raw, _ = cur.tag()
    dims = _numeric(dims_raw, mtype, order, cur, "dimensions")
    if mtype != MI_INT32 or len(dims) < 2 or np.any(dims < 0):
        raise cur.fail(f"the dimensions must be at least 2 non-negative int32 values, got {dims.tolist()}")
    mtype, _, name_raw, _ = cur.tag()
    if mtype not in (MI_INT8, 2):
        raise cur.fail(f"the array name has data type {mtype}, not int8 text")
    try:
        name = bytes(name_raw).decode("ascii")
    except UnicodeDecodeError:
        raise cur.fail("the array name is not ASCII text") from None
    if not name.isidentifier():
        raise cur.fail(f"the array name {name!r} is not a MATLAB identifier")
    where_var = f"{where}: variable {name!r}"
    cur.where = where_var
    if mx_class not in MX_CLASSES:
        kind = MX_NAMES.get(mx_class, f"class {mx_class}")
        raise cur.fail(f"is a {kind} array; only numeric arrays are supported")
    if bits & FLAG_COMPLEX:
        raise cur.fail("is complex; only real arrays are supported")
    count = int(np.prod(dims.astype(np.int64)))
    mtype, _, real_raw, _ = cur.tag()
    values = _numeric(real_raw, mtype, order, cur, "the real part")
    if len(values) != count:
        raise cur.fail(f"holds {len(values)} values for dimensions {dims.tolist()} ({count} values)")
    if cur.remaining() >= 8:
        raise cur.fail("has data after its real part (an imaginary part or a corrupted element)")
    array = values.astype(MX_CLASSES[mx_class]).reshape(tuple(int(d) for d in dims), order="F")
    return name, array


def _inflate(payload: memoryview, where: str, offset: int) -> bytes:
    d = zlib.decompressobj()
    limit = min(MAX_VARIABLE_BYTES, max(1 << 20, 1024 * len(payload)))
    try:
        out = d.decompress(payload, limit)
        if d.unconsumed_tail:
            raise MatFileError(f"{where}: a compressed variable inflates to more than {limit} bytes (byte {offset})")
        out += d.flush()
    except zlib.error as e:
        raise MatFileError(f"{where}: a compressed variable is corrupted ({e}) (byte {offset})") from None
    if not d.eof:
        raise MatFileError(f"{where}: a compressed variable is cut short (byte {offset})")
    if d.unused_data:
        raise MatFileError(f"{where}: {len(d.unused_data)} stray bytes after a compressed variable (byte {offset})")
    return out


def parse_mat(data: bytes, source: str = "<bytes>") -> dict[str, np.ndarray]:
    """Every numeric variable of a MAT v5 file's bytes, by name."""
    if len(data) < HEADER_BYTES:
        raise MatFileError(f"{source}: {len(data)} bytes, shorter than a MAT-file header ({HEADER_BYTES})")
    if data[:10] == b"MATLAB 7.3":
        raise MatFileError(f"{source}: a MATLAB v7.3 (HDF5) file; save it with -v7 or -v6")
    if not data[:6] == b"MATLAB":
        raise MatFileError(f"{source}: not a MATLAB 5.0 MAT-file (the header does not start with 'MATLAB')")
    endian = data[126:128]
    if endian == b"IM":
        order = "<"
    elif endian == b"MI":
        order = ">"
    else:
        raise MatFileError(f"{source}: bad endian indicator {endian!r} at byte 126 (expected 'IM' or 'MI')")
    version = struct.unpack_from(order + "H", data, 124)[0]
    if version != 0x0100:
        raise MatFileError(f"{source}: MAT-file version {version:#06x} at byte 124 (expected 0x0100)")
    cur = _Cursor(memoryview(data)[HEADER_BYTES:], order, source, HEADER_BYTES)
    out: dict[str, np.ndarray] = {}
    while cur.remaining() > 0:
        mtype, _, payload, offset = cur.tag()
        if mtype == MI_COMPRESSED:
            inner = _Cursor(_inflate(payload, source, offset), order, f"{source} (compressed variable at byte {offset})", 0)
            mtype, _, payload, offset = inner.tag()
            if inner.remaining() > 0:
                raise inner.fail("a compressed variable holds more than one element")
            where = inner.where
        else:
            where = source
        if mtype != MI_MATRIX:
            raise MatFileError(f"{where}: element of type {mtype} at byte {offset}; expected a matrix (14)")
        name, array = _matrix(payload, order, where, offset)
        if name in out:
            raise MatFileError(f"{source}: variable {name!r} appears twice")
        out[name] = array
    return out


def load_mat(path: str | Path) -> dict[str, np.ndarray]:
    """Every numeric variable of a MAT v5 file, by name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise MatFileError(f"{path}: cannot read ({e.strerror or e})") from None
    return parse_mat(data, str(path))


def _element(mtype: int, payload: bytes) -> bytes:
    return struct.pack("<II", mtype, len(payload)) + payload + b"\0" * (-len(payload) % 8)


def mat_bytes(variables: dict[str, np.ndarray], compress: bool = True) -> bytes:
    """A little-endian MAT v5 file holding numeric arrays (written as MATLAB does: column-major)."""
    kinds = {v: k for k, v in MX_CLASSES.items()}
    types = {v: k for k, v in MI_TYPES.items()}
    buf = io.BytesIO()
    text = b"MATLAB 5.0 MAT-file, Platform: posebridge, Created by train.image.matfile"
    buf.write(text.ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM")
    for name, value in variables.items():
        a = np.asarray(value)
        code = a.dtype.str[1:]
        if code not in kinds:
            raise ValueError(f"variable {name!r}: dtype {a.dtype} is not a MAT numeric class")
        dims = list(a.shape) if a.ndim >= 2 else [1, a.size]
        body = (
            _element(MI_UINT32, struct.pack("<II", kinds[code], 0))
            + _element(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
            + _element(MI_INT8, name.encode("ascii"))
            + _element(types[code], np.asarray(a, dtype="<" + code).ravel(order="F").tobytes())
        )
        matrix = _element(MI_MATRIX, body)
        if compress:
            z = zlib.compress(matrix)
            buf.write(struct.pack("<II", MI_COMPRESSED, len(z)) + z)
        else:
            buf.write(matrix)
    return buf.getvalue()
