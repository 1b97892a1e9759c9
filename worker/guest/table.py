"""The doorbell table the guest walks each pass (layout documented in doorbell.S)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from worker.guest import CONTROL_PORT, MAPPED_LIMIT, TABLE_END, TABLE_GPA

HEADER = struct.Struct("<QQQQ")  # n_entries, tsc_start, tsc_end, passes
ENTRIES_OFFSET = 64
ENTRY = struct.Struct("<QQQQ")  # kind, addr, value, count
MAX_ENTRIES = (TABLE_END - TABLE_GPA - ENTRIES_OFFSET) // ENTRY.size

KINDS = {
    ("pio", 1): 1,
    ("pio", 2): 2,
    ("pio", 4): 3,
    ("mmio", 1): 4,
    ("mmio", 2): 5,
    ("mmio", 4): 6,
    ("mmio", 8): 7,
}


class Ring(NamedTuple):
    """One table entry: write `value` (`len` bytes) to `addr` on `space`, `writes` times."""

    space: str
    addr: int
    len: int
    value: int
    writes: int  # the table entry's count field


class PassTimes(NamedTuple):
    """What the guest recorded about its last pass."""

    tsc_start: int
    tsc_end: int
    passes: int


def check_ringable(space: str, addr: int, length: int, value: int, mem_size: int) -> None:
    """Raise ValueError naming the rule unless the guest can perform this write."""
    if (space, length) not in KINDS:
        if space not in ("pio", "mmio"):
            raise ValueError(f"space must be 'pio' or 'mmio', not {space!r}")
        widths = "1, 2, 4" if space == "pio" else "1, 2, 4, 8"
        raise ValueError(f"a {space} doorbell's len must be one of {widths} (got {length})")
    if not 0 <= value < 1 << (8 * length):
        raise ValueError(f"value {value:#x} does not fit in len {length} bytes")
    if space == "pio":
        if not 0 <= addr <= 0xFFFF:
            raise ValueError(f"PIO port must be 0..0xffff (got {addr:#x})")
        if addr == CONTROL_PORT:
            raise ValueError(f"PIO port {CONTROL_PORT:#x} is the guest's pass-done port")
        return
    if addr < mem_size or addr + length > MAPPED_LIMIT:
        raise ValueError(
            f"MMIO address must be outside guest RAM [0, {mem_size:#x}) and below 4 GiB "
            f"(got {addr:#x})"
        )


def write_table(mem: memoryview, rings: list[Ring]) -> None:
    """Write `rings` as the next pass; only call while the vCPU is out of KVM_RUN."""
    if len(rings) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} table entries (got {len(rings)})")
    for i, ring in enumerate(rings):
        kind = KINDS.get((ring.space, ring.len), 0)  # 0 = bad kind: the guest faults (tests)
        offset = TABLE_GPA + ENTRIES_OFFSET + i * ENTRY.size
        ENTRY.pack_into(mem, offset, kind, ring.addr, ring.value, ring.writes)
    struct.pack_into("<Q", mem, TABLE_GPA, len(rings))


def read_times(mem: memoryview) -> PassTimes:
    """The guest's TSC at the start and end of its last pass, and its pass counter."""
    _, start, end, passes = HEADER.unpack_from(mem, TABLE_GPA)
    return PassTimes(start, end, passes)
