"""Sealed blocks: a period's readings as compressed columns, bit-exact.

Each column (the times as int64 [ms], every quantity as float64) is kept as its 64-bit patterns after one of
four lossless transforms, chosen per column and block by which compresses a sample best, then split into its
eight byte planes and compressed with zstd:

- ``plain``: the bits as they are (values that jump about);
- ``xor``: each value XOR the one before (Gorilla's idea: a repeated value is all zero bits);
- ``delta``: each value's bits minus the previous value's, as integers (counters that grow by similar steps);
- ``delta2``: the delta of the delta (gauges that ramp linearly, and regular timestamps, become mostly zero).

Integer arithmetic on the bit patterns wraps around and is undone exactly, so every value comes back with its
bits, NaN, infinities and -0.0 included. Splitting bytes into planes (Parquet's ``BYTE_STREAM_SPLIT``) puts the
slowly changing high bytes together, which zstd compresses far better than interleaved 8-byte words. A block is
decoded one column at a time, so a chart of two quantities decompresses two columns.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

__all__ = ["Block", "decode", "encode"]

_MAGIC = b"HGC1"
_HEAD = struct.Struct("<4sIH")  # magic, rows, columns
_ENTRY = struct.Struct("<BBI")  # name length, transform, payload length
_TRANSFORMS = ("plain", "xor", "delta", "delta2")
_SAMPLE = 4096  # values compressed per candidate transform to pick one
_LEVEL = 3
TIME = "ts"


@functools.cache
def _codec() -> pa.Codec:
    return pa.Codec("zstd", compression_level=_LEVEL)


def _zigzag(d: np.ndarray) -> np.ndarray:
    return (d << 1) ^ (d >> 63)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    u = z.view(np.uint64)
    return (u >> np.uint64(1)).view(np.int64) ^ -(u & np.uint64(1)).view(np.int64)


def _forward(bits: np.ndarray, transform: int) -> np.ndarray:
    if transform == 0:
        return bits
    if transform == 1:
        out = bits.copy()
        out[1:] ^= bits[:-1]
        return out
    d = np.diff(bits, prepend=np.int64(0))
    if transform == 3:
        d = np.diff(d, prepend=np.int64(0))
    return _zigzag(d)


def _inverse(coded: np.ndarray, transform: int) -> np.ndarray:
    if transform == 0:
        return coded
    if transform == 1:
        return np.bitwise_xor.accumulate(coded)
    d = _unzigzag(coded)
    if transform == 3:
        d = np.cumsum(d)
    return np.cumsum(d)


def _planes(words: np.ndarray) -> bytes:
    return words.view(np.uint8).reshape(-1, 8).T.tobytes()


def _words(planes: bytes, rows: int) -> np.ndarray:
    return np.frombuffer(planes, dtype=np.uint8).reshape(8, rows).T.copy().view(np.int64).ravel()


def _pack(bits: np.ndarray) -> tuple[int, bytes]:
    """A column's bit patterns as (transform, compressed planes), the transform the one leaving the fewest
    non-zero bytes in a sample (a cheap stand-in for compressing with each)."""
    sample = bits[:_SAMPLE]
    transform = min(range(len(_TRANSFORMS)),
                    key=lambda t: np.count_nonzero(_forward(sample, t).view(np.uint8)))
    return transform, _codec().compress(_planes(_forward(bits, transform)), asbytes=True)


def encode(time_ms: np.ndarray, columns: Mapping[str, np.ndarray]) -> bytes:
    """A block of rows: times [ms] and float64 columns of the same length (an all-NaN column is left out)."""
    t = np.ascontiguousarray(time_ms, dtype=np.int64)
    kept = {n: np.ascontiguousarray(c, dtype=np.float64) for n, c in columns.items() if not np.isnan(c).all()}
    parts: list[bytes] = []
    head = [_HEAD.pack(_MAGIC, len(t), len(kept) + 1)]
    for name, bits in ((TIME, t), *((n, c.view(np.int64)) for n, c in kept.items())):
        if len(bits) != len(t):
            raise ValueError(f"column {name} has {len(bits)} values for {len(t)} times")
        transform, payload = _pack(bits)
        raw = name.encode()
        head.append(_ENTRY.pack(len(raw), transform, len(payload)) + raw)
        parts.append(payload)
    return b"".join(head + parts)


@dataclass(frozen=True)
class Block:
    """A decoded block's index: its rows and where each column's payload lies (decoded on demand, once)."""

    rows: int
    entries: Mapping[str, tuple[int, int, int]]  # name -> (transform, offset, length)
    data: bytes
    _decoded: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @property
    def names(self) -> tuple[str, ...]:
        """The quantities the block holds (the times not included)."""
        return tuple(n for n in self.entries if n != TIME)

    def column(self, name: str) -> np.ndarray:
        """One column: ``ts`` as int64 [ms], a quantity as float64 (all NaN when the block lacks it)."""
        entry = self.entries.get(name)
        if entry is None:
            return np.full(self.rows, np.nan)
        done = self._decoded.get(name)
        if done is not None:
            return done
        transform, offset, length = entry
        planes = _codec().decompress(self.data[offset : offset + length], decompressed_size=8 * self.rows,
                                     asbytes=True)
        bits = _inverse(_words(planes, self.rows), transform)
        out = bits if name == TIME else bits.view(np.float64)
        out.flags.writeable = False  # shared by every reader of this decoded block
        self._decoded[name] = out
        return out

    def columns(self, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The quantities asked for (default all) that the block holds."""
        wanted = self.names if names is None else [n for n in names if n in self.entries and n != TIME]
        return {n: self.column(n) for n in wanted}


def decode(data: bytes) -> Block:
    """Read a block's index (the columns themselves are decompressed by :meth:`Block.column`)."""
    magic, rows, count = _HEAD.unpack_from(data, 0)
    if magic != _MAGIC:
        raise ValueError("not a homegrid column block")
    pos = _HEAD.size
    heads = []
    for _ in range(count):
        size, transform, length = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
        heads.append((data[pos : pos + size].decode(), transform, length))
        pos += size
    entries = {}
    for name, transform, length in heads:
        entries[name] = (transform, pos, length)
        pos += length
    if pos != len(data):
        raise ValueError(f"column block is {len(data)} bytes, its index says {pos}")
    return Block(rows, entries, data)
