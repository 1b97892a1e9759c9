"""The packed column of the sample store: one tick's busy series of one VM feed in one value.

A value holds, for every series with a non-zero count in the tick, its small per-VM index
(`series.idx`) and its `fields` counts (1 for signals and exits, 3 for observed: writes,
userspace, reads). Idle series are left out, so they cost nothing. Exact counts: integers of
the narrowest width (1, 2, 4 or 8 bytes) that holds the tick's largest count, split into byte
planes (the low bytes of every count, then the next bytes...), each plane deflated only when
that saves a quarter: the high planes of counts are mostly zeros and shrink to little, the low
plane of varied counts does not shrink and is kept as it is, so reading it costs no inflate.
A CRC-32 over the whole value refuses a corrupt or truncated one (`CorruptPacked`) instead of
turning it into a wrong rate.

Layout (little-endian): version u8, flags u8, fields u8, n u32, blocks, crc32 u32. flags: bits
1-2 width of the index gaps (0 = dense: the indexes are 0..n-1 and not stored; 1, 2, 3 = u8,
u16, u32); bits 3-4 count width w (0..3 = 1, 2, 4, 8 bytes). Blocks: the index gaps (each index
minus the one before, the first minus 0; absent when dense), then w planes of the n * fields
counts (series-major); each block is a varint (stored length << 1 | deflated) and its bytes.
Stdlib only (`array`, `zlib`), so worker, observer and app share it without a new dependency.
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate

VERSION = 1
_HEAD = struct.Struct("<BBBI")
_CRC = struct.Struct("<I")
_TYPECODES = ("B", "H", "I", "Q")  # 1, 2, 4, 8 bytes (array's sizes on every CPython platform)
_SIZES = (1, 2, 4, 8)
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
    busy = [(i, c) for i, c in series if any(c)]
    busy.sort()  # linear when the caller's series come in order, as they usually do
    n = len(busy)
    idx = [i for i, _ in busy]
    per_series = [c for _, c in busy]
    if n and set(map(len, per_series)) != {fields}:
        raise ValueError(f"every series needs exactly {fields} counts")
    counts = [x for c in per_series for x in c]
    if (counts and min(counts) < 0) or (idx and idx[0] < 0):
        raise ValueError("indexes and counts are never negative")
    if n and len(set(idx)) != n:
        raise ValueError("a series index appears twice in one tick")
    if idx and idx[-1] >= 1 << 32:
        raise ValueError("a series index must fit in 32 bits")
    # Sorted, distinct and >= 0: the indexes are 0..n-1 exactly when the last is n-1.
    dense = not idx or idx[-1] == n - 1
    # Gaps, not indexes: a busy tick's gaps are mostly 1, so they fit a byte each.
    gaps = [] if dense else [b - a for a, b in zip([0, *idx], idx, strict=False)]
    idx_code = 0 if dense else _width(max(gaps)) + 1
    count_code = _width(max(counts, default=0))
    width = _SIZES[count_code]
    plain = _raw(_TYPECODES[count_code], counts)
    blocks = [] if dense else [_raw(_TYPECODES[idx_code - 1], gaps)]
    blocks += [plain[j::width] for j in range(width)]
    value = bytearray(_HEAD.pack(VERSION, (idx_code << 1) | (count_code << 3), fields, n))
    for block in blocks:
        stored, deflated = block, 0
        if len(block) > 16:
            squeezed = zlib.compress(block, 6)
            if len(squeezed) <= len(block) * 3 // 4:  # inflating costs time: only for a gain
                stored, deflated = squeezed, 1
        value += _varint(len(stored) << 1 | deflated) + stored
    return bytes(value + _CRC.pack(zlib.crc32(value)))


def _varint(v: int) -> bytes:
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


class Packed:
    """One unpacked value: the busy series' indexes and counts; `get(i)` reads one series
    straight from the byte planes, `counts` (all of them, series-major) is joined on first use."""

    __slots__ = ("_counts", "dense", "fields", "idx", "planes")

    def __init__(self, idx: array | range, planes: list[bytes], fields: int, dense: bool) -> None:
        self.idx, self.planes, self.fields, self.dense = idx, planes, fields, dense
        self._counts: array | None = None

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def counts(self) -> array:
        """Every count, series-major (`fields` per series)."""
        if self._counts is None:
            width = len(self.planes)
            if width == 1:
                plain = self.planes[0]
            else:
                joined = bytearray(len(self.planes[0]) * width)
                for j, plane in enumerate(self.planes):
                    joined[j::width] = plane
                plain = bytes(joined)
            self._counts = _array(_TYPECODES[_SIZES.index(width)], plain)
        return self._counts

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
        if self._counts is None:  # one series: read its bytes from each plane
            return tuple(
                sum(plane[at] << (8 * j) for j, plane in enumerate(self.planes))
                for at in range(pos * k, pos * k + k)
            )
        return tuple(self._counts[pos * k : pos * k + k])

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


def unpack(value: bytes, fields: int, where: str | Callable[[], str] = "a packed value") -> Packed:
    """Check and unpack `value`; `where` (e.g. "VM 3, tick 2026-...", or a function making
    it, only called on an error) names it in errors."""

    def bad(why: str) -> CorruptPacked:
        place = where if isinstance(where, str) else where()
        return CorruptPacked(f"samples of {place} are unreadable: {why}; refusing to read them")

    if not isinstance(value, bytes):
        value = bytes(value)
    end = len(value) - _CRC.size
    if end < _HEAD.size:
        raise bad(f"truncated ({len(value)} bytes, a packed value has at least 11)")
    if zlib.crc32(memoryview(value)[:end]) != _CRC.unpack_from(value, end)[0]:
        raise bad("checksum mismatch (truncated or corrupt)")
    version, flags, stored_fields, n = _HEAD.unpack_from(value)
    if version != VERSION:
        raise bad(f"unknown packing version {version}")
    if stored_fields != fields:
        raise bad(f"{stored_fields} counts per series where {fields} were expected")
    idx_code, count_code = (flags >> 1) & 3, (flags >> 3) & 3
    width = _SIZES[count_code]
    sizes = ([] if idx_code == 0 else [_SIZES[idx_code - 1] * n]) + [n * fields] * width
    pos, blocks = _HEAD.size, []
    for size in sizes:
        head, pos = _read_varint(value, pos, end)
        if head is None or pos + (head >> 1) > end:
            raise bad("a block runs past the end")
        block = value[pos : pos + (head >> 1)]
        pos += head >> 1
        if head & 1:
            try:
                block = zlib.decompress(block)
            except zlib.error as exc:
                raise bad(f"a deflated block does not inflate ({exc})") from None
        if len(block) != size:
            raise bad(f"a block of {len(block)} bytes where {size} were expected")
        blocks.append(block)
    if pos != end:
        raise bad(f"{end - pos} bytes after the last block")
    planes = blocks[-width:]
    if idx_code == 0:
        return Packed(range(n), planes, fields, True)
    gaps = _array(_TYPECODES[idx_code - 1], blocks[0])
    return Packed(array("Q", accumulate(gaps)), planes, fields, False)


def _read_varint(value: bytes, pos: int, end: int) -> tuple[int | None, int]:
    result = shift = 0
    while pos < end and shift < 35:
        byte = value[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
    return None, pos
