"""The doorbell table the guest walks each pass (layout documented in doorbell.S)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from contract.guest import TABLE_ENTRIES, TABLE_ENTRIES_OFFSET, TABLE_ENTRY_SIZE, TABLE_GPA

HEADER = struct.Struct("<QQQQ")  # n_entries, tsc_start, tsc_end, passes
INTERRUPTS = struct.Struct("<Q")  # at +32: the device's interrupts the guest took, ever
VECTOR = struct.Struct("<Q")  # at +40: the device's vector, read once at start; 0 = none
ANSWERED = 8  # added to a kind: each write waits for the device's interrupt
ENTRIES_OFFSET = TABLE_ENTRIES_OFFSET
ENTRY = struct.Struct("<QQQQ")  # kind, addr, value, count
assert ENTRY.size == TABLE_ENTRY_SIZE
MAX_ENTRIES = TABLE_ENTRIES

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
    answered: bool = False  # each write waits for the device's interrupt (kind + ANSWERED)


class PassTimes(NamedTuple):
    """What the guest recorded about its last pass."""

    tsc_start: int
    tsc_end: int
    passes: int


def write_table(mem: memoryview, rings: list[Ring]) -> None:
    """Write `rings` as the next pass; only call while the vCPU is out of KVM_RUN."""
    if len(rings) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} table entries (got {len(rings)})")
    for i, ring in enumerate(rings):
        kind = KINDS.get((ring.space, ring.len), 0)  # 0 = bad kind: the guest faults (tests)
        kind += ANSWERED if ring.answered and kind else 0
        offset = TABLE_GPA + ENTRIES_OFFSET + i * ENTRY.size
        ENTRY.pack_into(mem, offset, kind, ring.addr, ring.value, ring.writes)
    struct.pack_into("<Q", mem, TABLE_GPA, len(rings))


def read_times(mem: memoryview) -> PassTimes:
    """The guest's TSC at the start and end of its last pass, and its pass counter."""
    _, start, end, passes = HEADER.unpack_from(mem, TABLE_GPA)
    return PassTimes(start, end, passes)


def write_vector(mem: memoryview, vector: int) -> None:
    """The vector the device interrupts with (0: none); before the first KVM_RUN only."""
    if vector and not 32 <= vector <= 0xFE:
        raise ValueError(f"vector must be 32..254: 0-31 are exceptions, 255 spurious ({vector})")
    VECTOR.pack_into(mem, TABLE_GPA + 40, vector)


def read_interrupts(mem: memoryview) -> int:
    """How many of the device's interrupts the guest has taken since it started."""
    return INTERRUPTS.unpack_from(mem, TABLE_GPA + 32)[0]
