"""`Machine`: one VM running the doorbell guest on a vCPU thread; the worker's single handle."""

from __future__ import annotations

import logging
import platform
import socket
import threading
import time
from collections.abc import Callable

from contract.models import VmState
from worker import guest
from worker.answers import Answers
from worker.exits import ExitCounter, VcpuStatus
from worker.guest.boot import GuestVm
from worker.guest.requests import VECTOR
from worker.guest.table import PassTimes, Ring, write_vector
from worker.kvm import Kvm
from worker.kvm.vm import msi_route
from worker.registry import Registry
from worker.roundtrip import DEVICE_GSI, MSI_ADDRESS
from worker.sampler import Collected, Sampler
from worker.vcpu_loop import VcpuThread
from worker.workload import Doorbell, Pacer

log = logging.getLogger(__name__)


class Machine:
    """One VM running the doorbell guest on a vCPU thread.

    register/unregister/set_workload/collect may be called from any thread while it runs.
    """

    def __init__(
        self,
        kvm_path: str = "/dev/kvm",
        *,
        mem_size: int = guest.DEFAULT_MEM_SIZE,
        clock: Callable[[], float] = time.monotonic,
        period: float = 0.01,
    ) -> None:
        self.kvm_path, self.mem_size, self.clock = kvm_path, mem_size, clock
        self._status = VcpuStatus(stopped=True)
        self.pacer = Pacer(clock, period=period)
        self.registry: Registry | None = None
        self.answers: Answers | None = None
        self.exits: ExitCounter | None = None
        self._kvm: Kvm | None = None
        self._guest: GuestVm | None = None
        self._thread: VcpuThread | None = None
        self._sampler: Sampler | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Create the VM, load the guest, start the vCPU thread (idle: empty workload)."""
        with self._lock:
            if self._kvm is not None:
                raise RuntimeError("machine already started")
            self._kvm = Kvm.open(self.kvm_path)
            try:
                # The in-kernel irqchip (before the vCPU) and one MSI route to the guest's
                # vector: answered doorbells interrupt the guest through it.
                self._guest = GuestVm(self._kvm, self.mem_size, irqchip=True)
                self._guest.vm.set_gsi_routing([msi_route(DEVICE_GSI, MSI_ADDRESS, VECTOR)])
                write_vector(self._guest.mem, VECTOR)
                self.registry = Registry(self._guest.vm, self.mem_size)
                self.answers = Answers(self._guest.vm, DEVICE_GSI, self._halt)
                self.exits = ExitCounter()
                assert self._guest.vcpu is not None
                status = VcpuStatus()
                self._thread = VcpuThread(
                    self._guest.vcpu,
                    self.exits,
                    self._guest.mem,
                    self.pacer,
                    status,
                    self.clock,
                    between_passes=self.answers.retire,
                )
                self._sampler = Sampler(
                    self.registry, self.exits, self.clock, answers=self.answers.counts
                )
                self._thread.start()
            except BaseException:
                self._teardown()
                raise
            self._status = status

    @property
    def state(self) -> VmState:
        """RUNNING once started, FAILED when the guest faulted (final), else STOPPED."""
        if self._status.fault is not None:
            return VmState.FAILED
        return VmState.STOPPED if self._status.stopped else VmState.RUNNING

    @property
    def error(self) -> str | None:
        """Why the VM failed, once it has."""
        return self._status.fault

    def _halt(self, reason: str) -> None:
        log.error("VM failed: %s", reason)
        if self._thread is not None:
            self._thread.halt(reason)

    def _teardown(self) -> None:
        stopped = self._thread.stop() if self._thread else True
        if self.answers is not None:
            self.answers.close()
        if self.registry is not None:
            self.registry.close()
        if self._guest is not None:
            if stopped:
                self._guest.close()
            else:  # closing guest memory under a running vCPU would be unsafe: leak instead
                log.warning("vCPU thread still in a pass; leaving its VM open")
        if self._kvm is not None:
            self._kvm.close()
        self._kvm, self._guest, self._thread = None, None, None

    def close(self) -> None:
        """Stop the vCPU thread, deassign all, close fds (idempotent; FAILED stays)."""
        with self._lock:
            if self._kvm is None:
                return
            self._teardown()
            self._status.stopped = True

    def info(self) -> dict:
        """Host, kernel, API version and capabilities (plus tsc_khz, mem_size, control_port)."""
        kvm = self._need_kvm()
        uname = platform.uname()
        return {
            "host": socket.gethostname(),
            "kernel": f"{uname.system} {uname.release} {uname.machine}",
            "api_version": kvm.get_api_version(),
            "capabilities": kvm.capabilities(),
            "tsc_khz": self._guest.vcpu.get_tsc_khz() if self._guest and self._guest.vcpu else 0,
            "mem_size": self.mem_size,
            "control_port": guest.CONTROL_PORT,
        }

    def _need_kvm(self) -> Kvm:
        if self._kvm is None or self.registry is None:
            raise RuntimeError("machine is not started")
        return self._kvm

    def register(self, key: int, space: str, addr: int, length: int, datamatch: int | None) -> None:
        """Assign an ioeventfd for DB registration `key`; RegistrationError keeps the errno."""
        self._need_kvm()
        assert self.registry is not None
        self.registry.register(key, space, addr, length, datamatch)

    def unregister(self, key: int) -> None:
        """Deassign `key`; its final count goes into the next collect. ENOENT if unknown."""
        self._need_kvm()
        assert self.registry is not None
        self.registry.unregister(key)

    def registered(self) -> set[int]:
        """Keys assigned in the kernel now."""
        return self.registry.keys() if self.registry is not None else set()

    def set_workload(self, doorbells: list[Doorbell]) -> None:
        """Replace what the guest rings; takes effect at the next pass. ValueError names a rule."""
        bells = [Doorbell(**b) if isinstance(b, dict) else Doorbell(*b) for b in doorbells]
        self.pacer.check(bells, self.mem_size)
        if self.answers is not None:  # devices first: the guest waits for their answers
            self.answers.set({(b.space, b.addr, b.len) for b in bells if b.answered})
        elif any(b.answered for b in bells):
            raise ValueError("answered doorbells need a started machine")
        self.pacer.set(bells, self.mem_size)
        if self._thread is not None:
            self._thread.wake()

    def ring(self, rings: list[Ring], timeout: float = 60.0) -> PassTimes:
        """Run one pass of exactly these writes (between paced passes) and wait for it."""
        if self._thread is None:
            raise RuntimeError("machine is not started")
        return self._thread.ring(rings, timeout)

    def collect(self) -> Collected:
        """Signals per registration and exits per address since the previous collect."""
        return self._sampler.collect() if self._sampler is not None else Collected([], [])
