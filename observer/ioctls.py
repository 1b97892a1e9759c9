"""Every VMM's KVM_IOEVENTFD and KVM_IRQFD calls, as the kernel answered them.

observer/progs/kvm_ioctls.bpf.c hands each call's struct and answer to a ring buffer; this
module decodes them (struct kvm_ioeventfd and struct kvm_irqfd of include/uapi/linux/kvm.h)
into `Call`s with wall-clock times. Which VM a call belongs to is the sampler's business.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from observer.layout import IOCTL_IOEVENTFD, IoctlEvent

if TYPE_CHECKING:
    from observer.probe import KvmProbe

# struct kvm_ioeventfd: datamatch u64, addr u64, len u32, fd s32, flags u32 (+ 36 pad bytes)
_IOEVENTFD = struct.Struct("<QQIiI")
IOEVENTFD_DATAMATCH, IOEVENTFD_PIO, IOEVENTFD_DEASSIGN = 1 << 0, 1 << 1, 1 << 2
# struct kvm_irqfd: fd u32, gsi u32, flags u32, resamplefd u32 (+ 16 pad bytes)
_IRQFD = struct.Struct("<IIII")
IRQFD_DEASSIGN = 1 << 0


class Call(NamedTuple):
    """One decoded call; `errno` None when the kernel said yes."""

    tgid: int
    at: datetime
    kind: str  # "ioeventfd" or "irqfd"
    deassign: bool
    space: str | None
    addr: int | None
    len: int | None
    datamatch: int | None  # None: any value (no KVM_IOEVENTFD_FLAG_DATAMATCH)
    eventfd: int
    gsi: int | None
    flags: int
    errno: str | None


def _errno_name(ret: int) -> str | None:
    return None if ret == 0 else errno.errorcode.get(-ret, str(-ret))


def decode(record: bytes, clock_offset_s: float) -> Call:
    """A ring buffer record as a Call; `clock_offset_s` turns CLOCK_MONOTONIC into UTC."""
    e = IoctlEvent.from_buffer_copy(record[: ctypes.sizeof(IoctlEvent)])
    at = datetime.fromtimestamp(e.ktime_ns / 1e9 + clock_offset_s, UTC)
    arg, err = bytes(e.arg), _errno_name(e.ret)
    if e.kind == IOCTL_IOEVENTFD:
        datamatch, addr, length, fd, flags = _IOEVENTFD.unpack_from(arg)
        return Call(
            e.tgid,
            at,
            "ioeventfd",
            bool(flags & IOEVENTFD_DEASSIGN),
            "pio" if flags & IOEVENTFD_PIO else "mmio",
            addr,
            length,
            datamatch if flags & IOEVENTFD_DATAMATCH else None,
            fd,
            None,
            flags,
            err,
        )
    fd, gsi, flags, _resample = _IRQFD.unpack_from(arg)
    return Call(
        e.tgid, at, "irqfd", bool(flags & IRQFD_DEASSIGN), None, None, None, None, fd, gsi,
        flags, err,
    )  # fmt: skip


def clock_offset() -> float:
    """Seconds to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) for the Unix time."""
    return time.time() - time.monotonic()


class CallLog:
    """Reads the probe's ring buffer of calls; `drain()` is every call since the last one."""

    def __init__(self, probe: KvmProbe) -> None:
        self.calls: list[Call] = []
        self.offset = clock_offset()
        self.buffer = probe.ioctl_events(self._on_record)

    def _on_record(self, record: bytes) -> None:
        self.calls.append(decode(record, self.offset))

    def drain(self) -> list[Call]:
        """The calls returned since the last drain, in the order they returned."""
        self.buffer.consume()
        calls, self.calls = self.calls, []
        return calls
