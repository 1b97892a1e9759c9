"""The host's exit loop: KVM_RUN until the guest's "pass done", handling exits as a VMM would.

Writes with no matching ioeventfd leave KVM_RUN as KVM_EXIT_IO / KVM_EXIT_MMIO, as they reach
qemu; they are counted per (space, addr, len) and reads return zeros. Any other exit means the
guest cannot go on: it raises GuestFault with a sentence saying what happened.
"""

from __future__ import annotations

import fcntl
import signal
import threading

from contract.guest import CONTROL_PORT
from worker.kvm import Vcpu
from worker.kvm import constants as c
from worker.kvm import structs as s
from worker.kvm.constants import (
    KVM_EXIT_INTR,
    KVM_EXIT_IO,
    KVM_EXIT_IO_OUT,
    KVM_EXIT_MMIO,
    KVM_RUN,
)

_INTERNAL_SUBERRORS = {
    1: "emulation failure",
    2: "exception while delivering an exception",
    3: "delivery event",
    4: "unexpected exit reason",
}
_MMIO_ZEROS = (s.u8 * 8)()  # what a read of an address nothing backs returns

ExitKey = tuple[str, int, int]  # (space, addr, len)


class _PassDone(Exception):
    """The guest wrote to the control port: the pass is over."""


class GuestFault(RuntimeError):
    """The guest stopped in a way the worker cannot continue from (VM is failed)."""


class PassStopped(Exception):
    """The pass was cut short because the worker is stopping the vCPU."""


class VcpuStatus:
    """The vCPU's state, in one place: asked to stop, why the guest can never go on, and why
    the guest failed (final).

    Each field has one writer (`stopped` the machine, `halt` the answering devices' watchdog,
    `fault` the vCPU thread), so no lock.
    """

    def __init__(self, stopped: bool = False) -> None:
        self.stopped = stopped  # no pass starts; a running one is cut short at the next kick
        self.halt: str | None = None  # the guest waits for what will not come: fail at the kick
        self.fault: str | None = None


class ExitCounter:
    """Userspace write exits per (space, addr, len); the sampler swaps the dict out whole."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # exact counts: no increment may land in a swapped dict
        self._counts: dict[ExitKey, int] = {}

    def add(self, key: ExitKey, n: int = 1) -> None:
        """Count `n` exits for `key` (called on the vCPU thread)."""
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + n

    def swap(self) -> dict[ExitKey, int]:
        """Return the counts so far and start from zero."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts


def describe_exit(vcpu: Vcpu) -> str:
    """A sentence for a person about an exit the worker does not handle."""
    run = vcpu.kvm_run
    reason = run.exit_reason
    name = c.EXIT_NAMES.get(reason, f"exit reason {reason}")
    if reason == c.KVM_EXIT_SHUTDOWN:
        return f"guest shut down ({name}): a triple fault, e.g. from a bad doorbell table entry"
    if reason == c.KVM_EXIT_FAIL_ENTRY:
        hw = run.fail_entry.hardware_entry_failure_reason
        return f"VM entry failed ({name}, hardware reason {hw:#x})"
    if reason == c.KVM_EXIT_INTERNAL_ERROR:
        sub = run.internal.suberror
        what = _INTERNAL_SUBERRORS.get(sub, "unknown")
        return f"KVM could not handle the guest ({name}, suberror {sub}: {what})"
    if reason == c.KVM_EXIT_HLT:
        return f"guest halted ({name}) with nothing to wake it"
    if reason == c.KVM_EXIT_UNKNOWN:
        return f"unknown exit ({name}, hardware reason {run.hardware_exit_reason:#x})"
    return f"unexpected exit {name}"


class PassRunner:
    """Runs the guest until it signals "pass done" on the control port.

    `kick_signal`: the signal the calling thread blocks and sends itself to cut KVM_RUN short
    (see VcpuThread); it stays pending, so after the EINTR it is consumed here.
    """

    def __init__(
        self,
        vcpu: Vcpu,
        exits: ExitCounter,
        status: VcpuStatus | None = None,
        *,
        kick_signal: int | None = None,
        control_port: int = CONTROL_PORT,
    ) -> None:
        self.vcpu, self.exits = vcpu, exits
        self.status = status if status is not None else VcpuStatus()
        self.kick_signal, self.control_port = kick_signal, control_port

    def run_pass(self) -> None:
        """KVM_RUN until pass done; raises GuestFault on any exit a VMM cannot continue from.

        The guest rings one table entry at a time, so exits come in runs of the same write: an
        exit whose reason and exit words equal the previous counted one only adds to a local
        count (two or three int reads, no decode, no allocation, no lock), and the run is added
        to the ExitCounter when it ends: at another exit, at pass done, or on any way out.
        """
        vcpu = self.vcpu
        ioctl, fd, kvm_run, words = fcntl.ioctl, vcpu.fd, vcpu.kvm_run, vcpu.exit_words
        same_reason = same_head = same_tail = -1  # the run being counted; -1: none
        step = counted = 0
        key: ExitKey = ("", 0, 0)
        try:
            while True:  # hot loop: one iteration per userspace exit, keep it lean
                try:
                    ioctl(fd, KVM_RUN, 0)  # an int argument: the GIL is dropped inside
                except InterruptedError:  # a kick (see VcpuThread.stop) or a stray signal
                    self._interrupted()
                    continue
                if (
                    kvm_run.exit_reason == same_reason
                    and words[0] == same_head
                    and (same_tail < 0 or words[2] == same_tail)
                ):
                    counted += step
                    continue
                if counted:
                    self.exits.add(key, counted)
                    counted = 0
                same_reason = same_head = same_tail = -1
                reason = kvm_run.exit_reason
                if reason == KVM_EXIT_IO:
                    key, step = self._pio_exit()
                    if step:  # a write: the port, width and count sit in the head word
                        same_reason, same_head = reason, words[0]
                elif reason == KVM_EXIT_MMIO:
                    key, step = self._mmio_exit()
                    if step:  # a write: address in the head word, len and is_write in the tail
                        same_reason, same_head, same_tail = reason, words[0], words[2]
                elif reason != KVM_EXIT_INTR:
                    raise GuestFault(describe_exit(vcpu))
                counted = step
        except _PassDone:
            return
        finally:
            if counted:
                self.exits.add(key, counted)

    def _interrupted(self) -> None:
        if self.kick_signal is not None:
            signal.sigtimedwait({self.kick_signal}, 0)  # consume it, or KVM_RUN re-fails
        if self.status.halt is not None:
            raise GuestFault(self.status.halt) from None
        if self.status.stopped:
            raise PassStopped from None

    def _pio_exit(self) -> tuple[ExitKey, int]:
        """A port exit: (its key, writes to count), 0 for a read; _PassDone on the control port."""
        io = self.vcpu.io
        if io.direction != KVM_EXIT_IO_OUT:
            size, at = io.size * io.count, io.data_offset
            self.vcpu.run_buf[at : at + size] = bytes(size)
            return ("", 0, 0), 0
        if io.port == self.control_port:
            raise _PassDone
        return ("pio", io.port, io.size), io.count

    def _mmio_exit(self) -> tuple[ExitKey, int]:
        """An MMIO exit: (its key, 1) for a write, 0 writes for a read (which reads zeros)."""
        mmio = self.vcpu.mmio
        if not mmio.is_write:
            mmio.data = _MMIO_ZEROS
            return ("", 0, 0), 0
        return ("mmio", mmio.phys_addr, mmio.len), 1
