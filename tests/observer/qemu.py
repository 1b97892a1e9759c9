"""A real VMM for the observer's tests: Debian's QEMU with KVM booting guests/diskread.bin.

SeaBIOS loads the boot sector from a legacy virtio-blk disk; the guest then makes `requests`
INT 13h reads, each one virtio-blk request that SeaBIOS's own driver kicks with one 16-bit
write to the queue-notify port (BAR0 + 0x10), says "done" on the debug console and halts.
The ground truth: QEMU's trace log (qemutrace.QemuTrace); with `perf=True`, `perf stat`'s
counts of the kernel's KVM tracepoints over QEMU's whole life (kernel_counts); with
`perf_record=True`, those hits in order (kernel_events, perfrecord). The command line is
qemucmd's.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from guests.build import IMAGE, with_requests
from perfrecord import Event, read_events, record_args
from qemucmd import DISK_BYTES, NOTIFY_PORT, command, perf_events
from qemutrace import KERNEL_EVENTS, QemuTrace, read_perf_counts

__all__ = ["NOTIFY_PORT", "Qemu"]

STARTED, DONE = b"iosignal-guest: start", b"iosignal-guest: done"
FAILED = b"iosignal-guest: read failed"


class Qemu:
    """One QEMU process (a context manager): start, wait for the guest, stop, read the truth."""

    def __init__(
        self,
        workdir: Path,
        requests: int = 16,
        *,
        ioeventfd: bool = True,
        name: str = "iosignal-qemu",
        memory_mb: int = 16,
        perf: bool = False,
        perf_record: bool = False,
        firmware_log: bool = False,
        pio_ports: Sequence[int] = (NOTIFY_PORT,),
        iothread: str | None = None,
    ) -> None:
        self.workdir, self.perf, self.perf_record = Path(workdir), perf, perf_record
        self.workdir.mkdir(parents=True, exist_ok=True)
        sector = with_requests(IMAGE.read_bytes(), requests)
        (self.workdir / "disk.img").write_bytes(sector.ljust(DISK_BYTES, b"\0"))
        argv = command(self.workdir, name, ioeventfd, memory_mb, firmware_log, iothread)
        ports = (f"kvm:kvm_pio@{port:#x}" for port in pio_ports)
        self.perf_labels = [*KERNEL_EVENTS, *ports, "kvm:kvm_userspace_exit@io"]
        if perf_record:  # every tracepoint hit in order (kernel_events)
            argv = [*record_args(self.workdir / "perf.data"), *argv]
        if perf:  # perf starts counting at exec and follows every thread QEMU creates
            stat = ["perf", "stat", "-x,", "-o", str(self.perf_path), *perf_events(pio_ports)]
            argv = [*stat, "--", *argv]
        with open(self.workdir / "qemu.err", "wb") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        self._vcpus: list[int] | None = None
        try:
            self.pid = self._qemu_pid()
            self._qmp_greeting = self._qmp_read()
            self.qmp("qmp_capabilities")
        except BaseException:  # no QEMU (or perf) left behind by a start that failed
            self.proc.kill()
            self.proc.wait()
            self.stop()  # closes the pipes
            raise

    @property
    def perf_path(self) -> Path:
        return self.workdir / "perf.csv"

    def _qemu_pid(self, timeout: float = 10.0) -> int:
        """QEMU's pid: the process itself, or the descendant of perf that has exec'd QEMU."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            pids = [self.proc.pid]
            while pids:
                pid = pids.pop()
                try:  # a perf between fork and exec, or gone: look again
                    if Path(f"/proc/{pid}/comm").read_text().startswith("qemu-system"):
                        return pid
                    pids += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
                except FileNotFoundError:
                    continue
            time.sleep(0.01)
        raise RuntimeError(f"QEMU did not start: {self.stderr()}")

    def _qmp_read(self) -> dict:
        assert self.proc.stdout is not None
        while line := self.proc.stdout.readline():
            message = json.loads(line)
            if "event" not in message:  # events (SHUTDOWN, RESET...) come unasked: skip them
                return message
        raise RuntimeError(f"QEMU exited ({self.proc.wait()}): {self.stderr()}")

    def qmp(self, execute: str, **arguments: object) -> object:
        """Run one QMP command and return its "return" value (raise on its "error")."""
        assert self.proc.stdin is not None
        request = {"execute": execute, **({"arguments": arguments} if arguments else {})}
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()
        answer = self._qmp_read()
        if "error" in answer:
            raise RuntimeError(f"QMP {execute}: {answer['error']}")
        return answer.get("return")

    def stderr(self) -> str:
        """What QEMU (and perf) wrote to stderr so far."""
        return (self.workdir / "qemu.err").read_text(errors="replace")

    def debugcon(self) -> bytes:
        """Everything written to the debug console so far: SeaBIOS's log, then the guest's."""
        path = self.workdir / "debugcon.log"
        return path.read_bytes() if path.exists() else b""

    def wait_started(self, timeout: float = 30.0) -> None:
        """Return once the guest runs (it said start: SeaBIOS has booted it)."""
        self._wait_for(STARTED, timeout)

    def wait_done(self, timeout: float = 30.0) -> None:
        """Return once the guest made all its reads and said done."""
        self._wait_for(DONE, timeout)

    def _wait_for(self, marker: bytes, timeout: float) -> None:
        """Poll the debug console for `marker`; raise if the guest failed, QEMU exited or time
        ran out."""
        deadline = time.monotonic() + timeout
        while marker not in (out := self.debugcon()):
            if FAILED in out:
                raise RuntimeError("the guest's INT 13h read failed (see debugcon.log)")
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited ({self.proc.returncode}): {self.stderr()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker!r} after {timeout} s: {out[-300:]!r}")
            time.sleep(0.02)

    def vcpu_tids(self) -> list[int]:
        """The vCPU threads' ids ("CPU 0/KVM", named because of debug-threads=on); read while
        QEMU runs and kept, so they are known after stop too."""
        if self._vcpus is None:
            tasks = Path(f"/proc/{self.pid}/task")
            self._vcpus = [
                int(t.name) for t in tasks.iterdir() if (t / "comm").read_text().startswith("CPU ")
            ]
        return self._vcpus

    def thread_names(self) -> dict[int, str]:
        """Every thread of QEMU by id, with the name QEMU gave it (debug-threads=on)."""
        tasks = Path(f"/proc/{self.pid}/task")
        return {int(t.name): (t / "comm").read_text().strip() for t in tasks.iterdir()}

    def trace(self) -> QemuTrace:
        """QEMU's trace log as written so far (complete once stopped)."""
        return QemuTrace.read(self.workdir / "trace.log")

    def kernel_counts(self) -> dict[str, int]:
        """perf's counts over QEMU's whole life (after stop, with perf=True): each of
        KERNEL_EVENTS, "kvm:kvm_pio@PORT", the guest's writes to each of `pio_ports`, and
        "kvm:kvm_userspace_exit@io", the exits that are port or MMIO accesses."""
        if not self.perf or self.proc.poll() is None:
            raise RuntimeError("kernel counts need perf=True and a stopped QEMU")
        return dict(zip(self.perf_labels, read_perf_counts(self.perf_path), strict=True))

    def kernel_events(self) -> list[Event]:
        """Every kvm_pio, kvm_mmio and kvm_userspace_exit hit of QEMU's threads, in order
        (after stop, with perf_record=True); see perfrecord for what the order says."""
        if not self.perf_record or self.proc.poll() is None:
            raise RuntimeError("kernel events need perf_record=True and a stopped QEMU")
        return read_events(self.workdir / "perf.data")

    def stop(self, timeout: float = 20.0) -> int:
        """Quit QEMU cleanly (QMP quit: its exit-time deassigns are logged) and return the exit
        code (perf's, which is QEMU's, when wrapped); SIGKILL if it does not go in time."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):  # kept for after; QEMU may be gone already
                self.vcpu_tids()
            try:
                self.qmp("quit")
            except (OSError, RuntimeError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode

    def __enter__(self) -> Qemu:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
