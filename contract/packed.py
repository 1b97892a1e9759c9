"""The packed column of the sample store: one tick's busy series of one VM feed in one value.

A value holds, for every series with a non-zero count in the tick, its small per-VM index
(`series.idx`) and its `fields` counts (1 for signals and exits, 3 for observed: writes,
userspace, reads). Idle series are left out, so they cost nothing. Exact counts: integers of
the narrowest width (1, 2, 4 or 8 bytes) that holds the tick's largest count, deflated when
that is smaller, and a CRC-32 over the whole value, so a corrupt or truncated value is refused
on read (`CorruptPacked`) instead of becoming a wrong rate.

Layout (little-endian): version u8, flags u8, fields u8, n u32, body, crc32 u32. flags: bit 0
body deflated; bits 1-2 width of the index gaps (0 = dense: the indexes are 0..n-1 and not
stored; 1, 2, 3 = u8, u16, u32); bits 3-4 count width (0..3 = u8, u16, u32, u64). Body: n index
gaps (each index minus the one before, the first minus 0; absent when dense), then n * fields
counts, series-major. Stdlib only (`array`, `zlib`), so worker, observer and app share it
without a new dependency.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate

VERSION = 1
_HEAD = struct.Struct("<BBBI")
_CRC = struct.Struct("<I")
_DEFLATED = 1
_TYPECODES = ("B", "H", "I", "Q")  # 1, 2, 4, 8 bytes (array's sizes on every CPython platform)
_LIMITS = (1 << 8, 1 << 16, 1 << 32, 1 << 64)
_SWAP = sys.byteorder != "little"  # arrays are native-endian; values are little-endian


class CorruptPacked(ValueError):
    """A packed value that fails its checks: truncated, corrupt, or of an unknown version."""


def _width(largest: int) -> int:
    for code, limit in enumerate(_LIMITS):
        if largest < limit:
            return code
    raise ValueError(f"a count of {largest} does not fit in 64 bits")


def _raw(typecode: str, values: Iterable[int]) -> bytes:
    arr = array(typecode, values)
    if _SWAP:
        arr.byteswap()
    return arr.tobytes()


def pack(series: Iterable[tuple[int, Sequence[int]]], fields: int = 1) -> bytes:
    """Pack (index, counts) pairs (counts: `fields` ints >= 0); all-zero series are left out."""
    busy = sorted((i, c) for i, c in series if any(c))
    n = len(busy)
    idx = [i for i, _ in busy]
    counts = [x for _, c in busy for x in c]
    if any(len(c) != fields for _, c in busy):
        raise ValueError(f"every series needs exactly {fields} counts")
    if (counts and min(counts) < 0) or (idx and idx[0] < 0):
        raise ValueError("indexes and counts are never negative")
    if n and len(set(idx)) != n:
        raise ValueError("a series index appears twice in one tick")
    if idx and idx[-1] >= 1 << 32:
        raise ValueError("a series index must fit in 32 bits")
    dense = idx == list(range(n))
    # Gaps, not indexes: a busy tick's gaps are mostly 1, so they fit a byte each.
    gaps = [b - a for a, b in zip([0, *idx], idx, strict=False)]
    idx_code = 0 if dense else _width(max(gaps)) + 1
    count_code = _width(max(counts, default=0))
    body = b"" if dense else _raw(_TYPECODES[idx_code - 1], gaps)
    body += _raw(_TYPECODES[count_code], counts)
    flags = (idx_code << 1) | (count_code << 3)
    deflated = zlib.compress(body, 6) if len(body) > 16 else body
    if len(deflated) < len(body):
        body, flags = deflated, flags | _DEFLATED
    value = _HEAD.pack(VERSION, flags, fields, n) + body
    return value + _CRC.pack(zlib.crc32(value))


class Packed:
    """One unpacked value: the busy series' indexes and counts; `get(i)` reads one series."""

    __slots__ = ("counts", "dense", "fields", "idx")

    def __init__(self, idx: array | range, counts: array, fields: int, dense: bool) -> None:
        self.idx, self.counts, self.fields, self.dense = idx, counts, fields, dense

    def __len__(self) -> int:
        return len(self.idx)

    def get(self, i: int) -> tuple[int, ...] | None:
        """The counts of series `i`, or None when it was idle in this tick."""
        if self.dense:
            pos = i if 0 <= i < len(self.idx) else -1
        else:
            pos = bisect_left(self.idx, i)
            if pos == len(self.idx) or self.idx[pos] != i:
                pos = -1
        if pos < 0:
            return None
        k = self.fields
        return tuple(self.counts[pos * k : pos * k + k])

    def firsts(self) -> Iterable[tuple[int, int]]:
        """(index, first count) of every busy series: the cheap walk when one count matters."""
        k = self.fields
        return zip(self.idx, self.counts if k == 1 else self.counts[::k], strict=True)

    def items(self) -> Iterable[tuple[int, tuple[int, ...]]]:
        """(index, counts) of every busy series, in index order."""
        k, counts = self.fields, self.counts
        return ((i, tuple(counts[p * k : p * k + k])) for p, i in enumerate(self.idx))


def _array(typecode: str, data: bytes) -> array:
    arr = array(typecode)
    arr.frombytes(data)
    if _SWAP:
        arr.byteswap()
    return arr


def unpack(value: bytes, fields: int, where: str = "a packed value") -> Packed:
    """Check and unpack `value`; `where` (e.g. "VM 3, tick 2026-...") names it in errors."""

    def bad(why: str) -> CorruptPacked:
        return CorruptPacked(f"samples of {where} are unreadable: {why}; refusing to read them")

    value = bytes(value)
    if len(value) < _HEAD.size + _CRC.size:
        raise bad(f"truncated ({len(value)} bytes, a packed value has at least 11)")
    (crc,) = _CRC.unpack_from(value, len(value) - _CRC.size)
    if zlib.crc32(value[: -_CRC.size]) != crc:
        raise bad("checksum mismatch (truncated or corrupt)")
    version, flags, stored_fields, n = _HEAD.unpack_from(value)
    if version != VERSION:
        raise bad(f"unknown packing version {version}")
    if stored_fields != fields:
        raise bad(f"{stored_fields} counts per series where {fields} were expected")
    body = value[_HEAD.size : -_CRC.size]
    if flags & _DEFLATED:
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise bad(f"deflated body does not inflate ({exc})") from None
    idx_code, count_code = (flags >> 1) & 3, (flags >> 3) & 3
    idx_size = 0 if idx_code == 0 else array(_TYPECODES[idx_code - 1]).itemsize * n
    count_size = array(_TYPECODES[count_code]).itemsize * n * fields
    if len(body) != idx_size + count_size:
        raise bad(f"body of {len(body)} bytes where {idx_size + count_size} were expected")
    counts = _array(_TYPECODES[count_code], body[idx_size:])
    if idx_code == 0:
        return Packed(range(n), counts, fields, True)
    gaps = _array(_TYPECODES[idx_code - 1], body[:idx_size])
    return Packed(array("Q", accumulate(gaps)), counts, fields, False)
