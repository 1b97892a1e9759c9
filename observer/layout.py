"""The observer's BPF map layouts, declared once for the program builder and the reader.

counts   PERCPU_HASH  AccessKey -> AccessCounts   monotonic: the kernel only adds, the reader
                                                  subtracts its previous reading (no reset race)
pending  LRU_HASH     thread id (u32) -> PendingWrite   the thread's last write, armed until it is
                                                  either handled in the kernel or exits
drops    PERCPU_ARRAY 0 -> Drops                  increments lost to a full map
"""

from __future__ import annotations

import ctypes

SPACE_PIO, SPACE_MMIO = 0, 1
SPACES = {SPACE_PIO: "pio", SPACE_MMIO: "mmio"}

MAX_KEYS = 65536  # (VM, space, addr, len) series the host may have at once
MAX_THREADS = 65536  # vCPU threads tracked at once (least recently used go first)


class AccessKey(ctypes.Structure):
    """One doorbell of one VM: the VMM's process id (tgid), space, guest address, width."""

    _fields_ = [
        ("tgid", ctypes.c_uint32),
        ("space", ctypes.c_uint8),
        ("len", ctypes.c_uint8),
        ("pad", ctypes.c_uint16),
        ("addr", ctypes.c_uint64),
    ]


class AccessCounts(ctypes.Structure):
    """What the guest did to one doorbell since the programs were attached."""

    _fields_ = [
        ("writes", ctypes.c_uint64),  # every guest write, whoever handled it
        ("userspace", ctypes.c_uint64),  # writes that exited to the VMM (the rest: in-kernel)
        ("reads", ctypes.c_uint64),  # PIO in and MMIO reads, counted apart
    ]


class PendingWrite(ctypes.Structure):
    """A thread's last guest write, waiting to learn whether it exits to userspace."""

    _fields_ = [
        ("key", AccessKey),
        ("count", ctypes.c_uint32),  # a string OUT (rep outs) is `count` writes in one exit
        ("armed", ctypes.c_uint32),
    ]


class Drops(ctypes.Structure):
    """Counts the programs could not record."""

    _fields_ = [("map_full", ctypes.c_uint64)]


def offset(struct: type[ctypes.Structure], field: str) -> int:
    """Byte offset of `field` in `struct` (for the program builder)."""
    return getattr(struct, field).offset
