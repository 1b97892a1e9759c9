"""The vCPU side: run one guest pass, handling userspace exits the way a VMM (qemu) would.

Writes with no matching ioeventfd leave KVM_RUN as KVM_EXIT_IO / KVM_EXIT_MMIO; they are counted
per (space, addr, len) and reads return zeros. Any other exit means the guest cannot go on: it
raises GuestFault with a sentence saying what happened.
"""

from __future__ import annotations

import logging
import signal
import struct
import threading
import time
from collections import deque
from collections.abc import Callable

from worker.guest import CONTROL_PORT
from worker.guest.table import PassTimes, Ring, read_times, write_table
from worker.kvm import Vcpu
from worker.kvm import constants as c
from worker.workload import Pacer

log = logging.getLogger(__name__)

_REASON = struct.Struct("<I")  # kvm_run.exit_reason at offset 8
_IO = struct.Struct("<BBHIQ")  # kvm_run.io at offset 32
_MMIO = struct.Struct("<Q8sIB")  # kvm_run.mmio at offset 32
_EXIT_OFFSET = 32
_MMIO_DATA = slice(40, 48)
_INTERNAL_SUBERRORS = {
    1: "emulation failure",
    2: "exception while delivering an exception",
    3: "delivery event",
    4: "unexpected exit reason",
}

ExitKey = tuple[str, int, int]  # (space, addr, len)


class GuestFault(RuntimeError):
    """The guest stopped in a way the worker cannot continue from (VM is failed)."""


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
    """Runs the guest until it signals "pass done" on the control port."""

    def __init__(self, vcpu: Vcpu, exits: ExitCounter, control_port: int = CONTROL_PORT) -> None:
        self.vcpu = vcpu
        self.exits = exits
        self.control_port = control_port
        self.stop = threading.Event()  # checked when a signal interrupts KVM_RUN

    def run_pass(self) -> None:
        """KVM_RUN until pass done; raises GuestFault on any exit a VMM cannot continue from."""
        buf, run, add = self.vcpu.run_buf, self.vcpu.run, self.exits.add
        control, zeros = self.control_port, bytes(8)
        while True:  # hot loop: one iteration per userspace exit, keep it lean
            try:
                run()
            except InterruptedError:
                if self.stop.is_set():
                    raise GuestFault("stopped while the guest was running") from None
                continue
            reason = _REASON.unpack_from(buf, 8)[0]
            if reason == c.KVM_EXIT_IO:
                direction, size, port, count, offset = _IO.unpack_from(buf, _EXIT_OFFSET)
                if direction == c.KVM_EXIT_IO_OUT:
                    if port == control:
                        return
                    add(("pio", port, size), count)
                else:
                    buf[offset : offset + size * count] = bytes(size * count)
            elif reason == c.KVM_EXIT_MMIO:
                addr, _, length, is_write = _MMIO.unpack_from(buf, _EXIT_OFFSET)
                if is_write:
                    add(("mmio", addr, length), 1)
                else:
                    buf[_MMIO_DATA] = zeros
            elif reason != c.KVM_EXIT_INTR:
                raise GuestFault(describe_exit(self.vcpu))


class _Job:
    """A one-off pass asked for by another thread (tests, diagnostics)."""

    def __init__(self, rings: list[Ring]) -> None:
        self.rings = rings
        self.done = threading.Event()
        self.result: PassTimes | None = None
        self.error: str | None = None


class VcpuThread:
    """The thread that owns the vCPU: paced passes from the Pacer, one-off passes on request."""

    def __init__(
        self,
        runner: PassRunner,
        mem: memoryview,
        pacer: Pacer,
        on_fault: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner, self.mem, self.pacer = runner, mem, pacer
        self.on_fault, self.clock = on_fault, clock
        self.passes = 0
        self.fault: str | None = None
        self._cond = threading.Condition()
        self._jobs: deque[_Job] = deque()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name="iosignal-vcpu", daemon=True)

    def start(self) -> None:
        """Start the thread; it idles until there is a workload or a job."""
        self._thread.start()

    def wake(self) -> None:
        """The workload changed: re-plan now rather than at the old deadline."""
        with self._cond:
            self._cond.notify()

    def ring(self, rings: list[Ring], timeout: float = 60.0) -> PassTimes:
        """Run one pass of exactly `rings` as soon as the vCPU is free; wait for it."""
        job = _Job(rings)
        with self._cond:
            if self.fault or self._stopping:
                raise GuestFault(self.fault or "the VM is stopping")
            self._jobs.append(job)
            self._cond.notify()
        if not job.done.wait(timeout):
            raise TimeoutError(f"the guest did not finish the pass within {timeout} s")
        if job.error:
            raise GuestFault(job.error)
        assert job.result is not None
        return job.result

    def stop(self, timeout: float = 30.0) -> bool:
        """Ask the thread to stop after the current pass; True once it has ended."""
        with self._cond:
            self._stopping = True
            self.runner.stop.set()
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _next(self) -> tuple[_Job | None, list[Ring] | None]:
        with self._cond:
            while not self._stopping:
                if self._jobs:
                    job = self._jobs.popleft()
                    return job, job.rings
                now = self.clock()
                wait = self.pacer.wait_time(now)
                if wait == 0:
                    rings = self.pacer.plan(now)
                    if rings:
                        return None, rings
                    continue  # low rates: nothing whole to ring yet, the deadline moved on
                self._cond.wait(wait)
            return None, None

    def _main(self) -> None:
        # Process signals belong to the main thread; here they would only interrupt KVM_RUN.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        job: _Job | None = None
        try:
            while True:
                job, rings = self._next()
                if rings is None:
                    return
                write_table(self.mem, rings)
                self.runner.run_pass()
                self.passes += 1
                if job is not None:
                    job.result = read_times(self.mem)
                    job.done.set()
        except GuestFault as e:
            self._fail(str(e), job)
        except Exception as e:  # a bug here must still surface as a failed VM, not a hang
            log.exception("vCPU thread crashed")
            self._fail(f"worker error on the vCPU thread: {e!r}", job)

    def _fail(self, reason: str, job: _Job | None) -> None:
        log.error("VM failed: %s", reason)
        with self._cond:
            self.fault = reason
            pending = [*self._jobs, *([job] if job and not job.done.is_set() else [])]
            self._jobs.clear()
        for each in pending:
            each.error = reason
            each.done.set()
        self.on_fault(reason)
