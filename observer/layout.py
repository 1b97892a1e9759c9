"""The observer's BPF map layouts, declared once for the program builder and the reader.

counts   PERCPU_HASH  AccessKey -> AccessCounts   monotonic: the kernel only adds, the reader
                                                  subtracts its previous reading (no reset race)
pending  PERCPU_ARRAY 0 -> PendingWrite        the last write on this CPU and its thread, armed
                                                  until it is handled in the kernel or exits
         (LRU_HASH thread id -> PendingWrite on a kernel without BTF)
recent   PERCPU_ARRAY 0 -> Recent                the last written key on this CPU and its counts
                                                  not yet in `counts` (a guest hammering one
                                                  doorbell costs an array slot, not a hash lookup)
drops    PERCPU_ARRAY 0 -> Drops                  increments lost to a full map
"""

from __future__ import annotations

import ctypes

SPACE_PIO, SPACE_MMIO = 0, 1
SPACES = {SPACE_PIO: "pio", SPACE_MMIO: "mmio"}

MAX_KEYS = 65536  # (VM, space, addr, len) series the host may have at once
MAX_THREADS = 65536  # vCPU threads tracked at once without BTF (least recently used go first)


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
    """The last guest write on one CPU, waiting to learn whether it exits to userspace.

    One per CPU, not per thread: an array slot costs a few ns where a hash lookup cost ~40.
    A userspace exit is that write's only if it comes from the same thread and the thread was
    not migrated meanwhile (the scheduler's per-task migration count is unchanged): then no
    other access of the thread can have happened elsewhere. Otherwise it is counted unmatched.
    """

    _fields_ = [
        ("key", AccessKey),
        ("count", ctypes.c_uint32),  # a string OUT (rep outs) is `count` writes in one exit
        ("armed", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),  # the writing thread
        ("pad", ctypes.c_uint32),
        ("migrations", ctypes.c_uint64),  # its task_struct.se.nr_migrations at the write
    ]


class Recent(ctypes.Structure):
    """One CPU's most recently written key, with the counts it has not handed to `counts` yet.

    The programs change the key as gen_b += 1, key and counts, gen_a = gen_b; the kernel copies
    the slot to the reader front to back, so a copy with gen_a == gen_b saw no change midway.
    """

    _fields_ = [
        ("gen_a", ctypes.c_uint64),
        ("key", AccessKey),
        ("writes", ctypes.c_uint64),
        ("userspace", ctypes.c_uint64),
        ("gen_b", ctypes.c_uint64),
    ]


class Drops(ctypes.Structure):
    """Counts the programs could not record."""

    _fields_ = [
        ("map_full", ctypes.c_uint64),
        # I/O exits whose CPU holds no write of their thread from before it last migrated
        # (the thread migrated, or the exit is a read's): attributed to no address
        ("unmatched", ctypes.c_uint64),
    ]


def offset(struct: type[ctypes.Structure], field: str) -> int:
    """Byte offset of `field` in `struct` (for the program builder)."""
    return getattr(struct, field).offset
