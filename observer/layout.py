"""The ctypes side of observer/progs/iosignal.h: the BPF maps' keys and values, for the reader.

counts       PERCPU_HASH  AccessKey -> AccessCounts  monotonic: the kernel only adds, the
                                                     reader subtracts its previous reading
recent       PERCPU_ARRAY 0 -> Recent     the last written key on this CPU and its counts not
                                          yet in `counts` (a guest hammering one doorbell
                                          costs an array slot, not a hash lookup)
exit_values  LRU_HASH ValueKey -> u64     writes that exited to userspace, per value written
value_slot   PERCPU_ARRAY 0 -> ValueSlot  this CPU's latest pair and its count not yet handed over
drops        PERCPU_ARRAY 0 -> Drops      what the programs could not record
events       RINGBUF of IoctlEvent        every KVM_IOEVENTFD / KVM_IRQFD call and its answer
.bss         ARRAY 0 -> IoctlGlobals      kvm_ioctls' globals: calls in flight, events lost

tests/observer/test_progs.py checks every size and offset here against the objects' BTF.
"""

from __future__ import annotations

import ctypes

SPACE_PIO, SPACE_MMIO = 0, 1
SPACES = {SPACE_PIO: "pio", SPACE_MMIO: "mmio"}

IOCTL_IOEVENTFD, IOCTL_IRQFD = 1, 2


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
        ("reads", ctypes.c_uint64),  # PIO in and MMIO reads, counted when they complete
        ("read_exits", ctypes.c_uint64),  # reads that exited to the VMM
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


class ValueKey(ctypes.Structure):
    """A value the guest wrote to one doorbell in a write that exited to userspace."""

    _fields_ = [("key", AccessKey), ("value", ctypes.c_uint64)]


class ValueSlot(ctypes.Structure):
    """One CPU's latest (series, value) of an exiting write and its count not yet in
    `exit_values` (the generation protocol of `Recent`)."""

    _fields_ = [
        ("gen_a", ctypes.c_uint64),
        ("vk", ValueKey),
        ("count", ctypes.c_uint64),
        ("gen_b", ctypes.c_uint64),
    ]


class Drops(ctypes.Structure):
    """Counts the programs could not record."""

    _fields_ = [
        ("map_full", ctypes.c_uint64),
        # I/O exits whose kvm_run could not be read (not a vCPU fd's KVM_RUN): no address
        ("unmatched", ctypes.c_uint64),
    ]


class IoctlGlobals(ctypes.Structure):
    """kvm_ioctls.bpf.c's global variables: its `.bss` map's one value."""

    _fields_ = [
        ("inflight", ctypes.c_int64),  # calls between their enter and exit
        ("lost", ctypes.c_uint64),  # registration events lost to a full ring buffer
        ("event_layout", ctypes.c_uint64),  # a pointer never set (puts the event in the BTF)
    ]


class IoctlEvent(ctypes.Structure):
    """One KVM_IOEVENTFD or KVM_IRQFD call and the kernel's answer (`ret`: 0 or -errno)."""

    _fields_ = [
        ("tgid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("kind", ctypes.c_uint32),
        ("vm_fd", ctypes.c_int32),
        ("ret", ctypes.c_int64),
        ("ktime_ns", ctypes.c_uint64),
        ("arg", ctypes.c_uint8 * 64),  # struct kvm_ioeventfd, or kvm_irqfd in the first 32
    ]


def offset(struct: type[ctypes.Structure], field: str) -> int:
    """Byte offset of `field` in `struct` (for the program builder)."""
    return getattr(struct, field).offset
