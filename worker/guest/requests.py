"""The request table the round-trip guest reads each pass (layout documented in roundtrip.S)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from contract.guest import TABLE_END, TABLE_GPA

# requests, wait, kind, addr, value, rtt_gpa, tsc_start, tsc_end, kicks, interrupts, passes, vector
HEADER = struct.Struct("<12Q")
RTT_GPA = TABLE_END  # one u64 per request of a pass, after the table's page
MAX_PASS_REQUESTS = 1 << 16  # 512 KiB of round trips; longer runs take several passes
WAITS = {"hlt": 1, "spin": 2}
KINDS = {"pio": 3, "mmio": 6}  # doorbell.S's pio32 and mmio32
VECTOR = 0x40  # the device's interrupt vector: the first above the exceptions and legacy IRQs


class Request(NamedTuple):
    """What the guest does per request: `kick` (a 4-byte write of `value` to `addr` on `space`),
    then wait for the interrupt by `wait` ("hlt" or "spin")."""

    space: str
    addr: int
    value: int
    wait: str


class PassCounts(NamedTuple):
    """What the guest recorded: its last pass's TSC span and its counters since boot."""

    tsc_start: int
    tsc_end: int
    kicks: int
    interrupts: int
    passes: int


def write_setup(mem: memoryview, vector: int = VECTOR) -> None:
    """The fields the guest reads once at start; call before the first KVM_RUN."""
    if not 32 <= vector <= 0xFE:
        raise ValueError(f"vector must be 32..254: 0-31 are exceptions, 255 spurious ({vector})")
    struct.pack_into("<Q", mem, TABLE_GPA + 88, vector)


def write_requests(mem: memoryview, request: Request, count: int) -> None:
    """Make the next pass `count` requests; only call while the vCPU is out of KVM_RUN."""
    if not 0 <= count <= MAX_PASS_REQUESTS:
        raise ValueError(f"a pass holds 0 to {MAX_PASS_REQUESTS} requests (got {count})")
    if request.wait not in WAITS:
        raise ValueError(f"wait must be one of {', '.join(WAITS)} (got {request.wait!r})")
    kind = KINDS.get(request.space, 0)  # 0 = bad kind: the guest faults (tests)
    fields = (count, WAITS[request.wait], kind, request.addr, request.value, RTT_GPA)
    struct.pack_into("<6Q", mem, TABLE_GPA, *fields)


def read_counts(mem: memoryview) -> PassCounts:
    """The guest's TSC span of its last pass, and its kick, interrupt and pass counters."""
    return PassCounts(*HEADER.unpack_from(mem, TABLE_GPA)[6:11])


def read_rtts(mem: memoryview, count: int) -> list[int]:
    """The last pass's round trips, one TSC tick count per request."""
    return list(mem[RTT_GPA : RTT_GPA + 8 * count].cast("Q"))
