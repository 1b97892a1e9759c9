"""The vCPU thread: paced passes from the workload, one-off passes on request.

The exit handling of a pass lives in worker.guest.passes (re-exported here); any exit the worker
cannot continue from marks the machine failed with a reason, never a silent hang.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable

from worker.guest.passes import ExitCounter, ExitKey, GuestFault, PassRunner, describe_exit
from worker.guest.table import PassTimes, Ring, read_times, write_table
from worker.workload import Pacer

__all__ = ["ExitCounter", "ExitKey", "GuestFault", "PassRunner", "VcpuThread", "describe_exit"]

log = logging.getLogger(__name__)


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
        """The workload changed: re-check when the next pass is due (at once if idle)."""
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
            if self._stopping and job is None:
                return  # a signal cut the last pass short while closing: not a failure
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
