"""The vCPU thread: paced passes from the workload, one-off passes on request.

The exit handling of a pass lives in worker.exits; any exit the worker cannot continue from
marks the machine failed with a reason, never a silent hang.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable

from worker.exits import ExitCounter, GuestFault, PassRunner, PassStopped, VcpuStatus
from worker.guest.table import PassTimes, Ring, read_times, write_table
from worker.kvm import Vcpu
from worker.workload import Pacer

# Kicks the vCPU thread out of KVM_RUN. Blocked in that thread except inside KVM_RUN (via
# KVM_SET_SIGNAL_MASK), so it is never delivered to a handler: it only makes KVM_RUN return
# EINTR, and stays pending until consumed, so a kick sent between two KVM_RUNs is not lost.
# Its default action is "ignore", so even a stray one elsewhere is harmless.
KICK_SIGNAL = signal.SIGURG
_BLOCKED: set[int] = {signal.SIGINT, signal.SIGTERM}  # process signals: the main thread's

log = logging.getLogger(__name__)


PR_SET_NAME = 15  # prctl(2): the thread's comm, at most 15 characters


def name_os_thread(name: str) -> None:
    """Give the calling thread its name in the OS too (/proc/PID/task/TID/comm, top -H, perf),
    where Python's thread names do not reach: people and tools find the vCPU thread by it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


class _Job:
    """A one-off pass asked for by another thread (tests, diagnostics)."""

    def __init__(self, rings: list[Ring]) -> None:
        self.rings = rings
        self.done = threading.Event()
        self.result: PassTimes | None = None
        self.error: str | None = None


class VcpuThread:
    """The thread that owns the vCPU: paced passes from the Pacer, one-off passes on request.

    Its state is `status` (shared with its PassRunner and read by the Machine): a fault there
    is final, and once `stopped` no pass starts.
    """

    def __init__(
        self,
        vcpu: Vcpu,
        exits: ExitCounter,
        mem: memoryview,
        pacer: Pacer,
        status: VcpuStatus,
        clock: Callable[[], float] = time.monotonic,
        between_passes: Callable[[], None] = lambda: None,
    ) -> None:
        self.runner = PassRunner(vcpu, exits, status, kick_signal=KICK_SIGNAL)
        self.mem, self.pacer, self.status, self.clock = mem, pacer, status, clock
        # Runs on this thread, the guest out of KVM_RUN: before each pass, and on each wake
        # while idle (a workload change), so what it undoes never waits for a next pass.
        self.between_passes = between_passes
        self.passes = 0
        self._cond = threading.Condition()  # guards status changes against the job queue
        self._jobs: deque[_Job] = deque()
        self._thread = threading.Thread(target=self._main, name="iosignal-vcpu", daemon=True)

    def start(self) -> None:
        """Start the thread; it idles until there is a workload or a job."""
        self._thread.start()

    def wake(self) -> None:
        """The workload changed: re-check when the next pass is due (at once if idle)."""
        with self._cond:
            self._cond.notify()

    def ring(self, rings: list[Ring], timeout: float = 60.0) -> PassTimes:
        """Run one pass of exactly `rings` as soon as the vCPU is free; wait for it."""
        job = _Job(rings)
        with self._cond:
            if self.status.fault or self.status.stopped:
                raise GuestFault(self.status.fault or "the VM is stopping")
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
            self.status.stopped = True
            self._cond.notify()
        if self._thread.is_alive() and self._thread.ident is not None:
            with contextlib.suppress(ProcessLookupError):  # it may have just ended
                signal.pthread_kill(self._thread.ident, KICK_SIGNAL)  # out of a long pass now
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def halt(self, reason: str) -> None:
        """The guest can never go on (`reason`): fail the VM at once, in a pass or between."""
        with self._cond:
            self.status.halt = reason
            self._cond.notify()
        if self._thread.is_alive() and self._thread.ident is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pthread_kill(self._thread.ident, KICK_SIGNAL)  # out of KVM_RUN now

    def _next(self) -> tuple[_Job | None, list[Ring] | None]:
        with self._cond:
            while not self.status.stopped and self.status.halt is None:
                self.between_passes()
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
        name_os_thread("iosignal-vcpu")
        signal.pthread_sigmask(signal.SIG_BLOCK, {*_BLOCKED, KICK_SIGNAL})
        job: _Job | None = None
        try:
            self.runner.vcpu.set_signal_mask(_BLOCKED)  # KICK_SIGNAL gets through in KVM_RUN
            while True:
                job, rings = self._next()
                if self.status.halt is not None:
                    raise GuestFault(self.status.halt)
                if rings is None:
                    return
                write_table(self.mem, rings)
                self.runner.run_pass()
                self.passes += 1
                if job is not None:
                    job.result = read_times(self.mem)
                    job.done.set()
        except PassStopped:
            self._fail_jobs("the VM stopped before the pass finished", job)
        except GuestFault as e:
            self._fail(str(e), job)
        except Exception as e:  # a bug here must still surface as a failed VM, not a hang
            log.exception("vCPU thread crashed")
            self._fail(f"worker error on the vCPU thread: {e!r}", job)

    def _fail(self, reason: str, job: _Job | None) -> None:
        log.error("VM failed: %s", reason)
        with self._cond:
            self.status.fault = reason
        self._fail_jobs(reason, job)

    def _fail_jobs(self, reason: str, job: _Job | None) -> None:
        with self._cond:
            pending = [*self._jobs, *([job] if job and not job.done.is_set() else [])]
            self._jobs.clear()
        for each in pending:
            each.error = reason
            each.done.set()
