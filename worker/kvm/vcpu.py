"""`Vcpu`: a KVM vCPU file descriptor with its mmap'ed kvm_run page."""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from collections.abc import Collection

from worker.kvm import constants as c
from worker.kvm import structs as s


class Vcpu:
    """A vCPU fd from `Vm.create_vcpu`; `run_buf` is the shared kvm_run mapping.

    `io` and `mmio` are the kvm_run exit union as its two typed members, views built once over
    the mapping: after `run()` returns KVM_EXIT_IO or KVM_EXIT_MMIO they hold that exit, decoded
    field by field with no copy, so the userspace exit path allocates nothing to read an exit.
    `exit_words` are the union's first three u64s as one view: a loop that only asks "the same
    exit as the last one?" compares two or three ints instead of decoding fields.
    """

    def __init__(self, fd: int, mmap_size: int) -> None:
        self.fd = fd
        self.run_buf = mmap.mmap(fd, mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.kvm_run = s.kvm_run.from_buffer(self.run_buf)
        self.io: s.kvm_run_io = self.kvm_run.io
        self.mmio: s.kvm_run_mmio = self.kvm_run.mmio
        self.exit_words = (s.u64 * 3).from_buffer(self.run_buf, s.kvm_run.exit.offset)

    def run(self) -> int:
        """KVM_RUN until the next userspace exit; returns why: kvm_run.exit_reason (KVM_EXIT_*).

        Raises InterruptedError (EINTR) when a signal arrived; the caller decides to re-enter.
        """
        # An int argument makes fcntl.ioctl drop the GIL while the guest runs.
        fcntl.ioctl(self.fd, c.KVM_RUN, 0)
        return self.kvm_run.exit_reason

    def get_regs(self) -> s.kvm_regs:
        """KVM_GET_REGS."""
        regs = s.kvm_regs()
        fcntl.ioctl(self.fd, c.KVM_GET_REGS, regs, True)
        return regs

    def set_regs(self, regs: s.kvm_regs) -> None:
        """KVM_SET_REGS."""
        fcntl.ioctl(self.fd, c.KVM_SET_REGS, regs)

    def get_sregs(self) -> s.kvm_sregs:
        """KVM_GET_SREGS."""
        sregs = s.kvm_sregs()
        fcntl.ioctl(self.fd, c.KVM_GET_SREGS, sregs, True)
        return sregs

    def set_sregs(self, sregs: s.kvm_sregs) -> None:
        """KVM_SET_SREGS."""
        fcntl.ioctl(self.fd, c.KVM_SET_SREGS, sregs)

    def set_signal_mask(self, blocked: Collection[int]) -> None:
        """KVM_SET_SIGNAL_MASK: the signals blocked while this vCPU is inside KVM_RUN."""
        mask = sum(1 << (sig - 1) for sig in blocked)  # the kernel's 64-bit sigset_t
        fcntl.ioctl(self.fd, c.KVM_SET_SIGNAL_MASK, struct.pack("<IQ", 8, mask))

    def get_tsc_khz(self) -> int:
        """KVM_GET_TSC_KHZ: the guest TSC frequency, to turn guest TSC deltas into time."""
        return fcntl.ioctl(self.fd, c.KVM_GET_TSC_KHZ, 0)

    def close(self) -> None:
        """Unmap kvm_run and close the vCPU fd (idempotent)."""
        if self.fd < 0:
            return
        del (
            self.kvm_run,
            self.io,
            self.mmio,
            self.exit_words,
        )  # ctypes views pin the mmap; drop them first
        # A caller may still hold a view: the mapping then goes when the last view does.
        with contextlib.suppress(BufferError):
            self.run_buf.close()
        os.close(self.fd)
        self.fd = -1
