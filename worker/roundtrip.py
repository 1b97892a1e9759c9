"""`RoundTrip`: a scratch VM running the request guest (roundtrip.S) and the device answering it.

The device answers each doorbell kick with an MSI (GSI DEVICE_GSI, routed by KVM_SET_GSI_ROUTING
to APIC 0 with the guest's vector), one of three ways:
    "exit"        the write exits to userspace; the vCPU thread answers with KVM_IRQ_LINE
                  before re-entering (the synchronous path: QEMU without ioeventfd)
    "irqfd"       KVM_IOEVENTFD signals an eventfd; a Consumer thread blocked on it answers
                  through KVM_IRQFD (the vhost pattern)
    "irqfd-poll"  the same with a Consumer spinning on the eventfd
The vCPU runs on its own thread; the caller's thread watches it. A consumer that stops, or a pass
that overruns its timeout, kicks the vCPU out of KVM_RUN (SIGURG, as worker.vcpu_loop does) and
surfaces as DeviceStopped instead of a guest halted forever.

An MSI rather than an IOAPIC pin: KVM injects an irqfd's MSI in the writer's own context, an
IOAPIC pin's from a kernel work item (kvm_arch_set_irq_inatomic refuses it), which adds a
scheduling hop; virtio-pci devices behind vhost signal with MSI-X the same way.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import NamedTuple

from contract.guest import CONTROL_PORT
from worker import guest
from worker.device import Consumer, IrqfdDevice
from worker.exits import GuestFault, describe_exit
from worker.guest.boot import GuestVm
from worker.guest.requests import (
    VECTOR,
    Request,
    read_counts,
    read_rtts,
    write_requests,
    write_setup,
)
from worker.kvm import Kvm, Mmio, Pio, Vcpu
from worker.kvm import constants as c
from worker.kvm.vm import msi_route

ANSWERS = ("exit", "irqfd", "irqfd-poll")
DEVICE_GSI = 24  # past the IOAPIC's 24 pins: the routing table holds only this MSI
MSI_ADDRESS = 0xFEE0_0000  # physical destination mode, APIC ID 0 (bits 19:12)
# Only delivered inside KVM_RUN (KVM_SET_SIGNAL_MASK); blocked on the vCPU thread elsewhere, so a
# kick sent between two KVM_RUNs stays pending and ends the next one.
KICK_SIGNAL = signal.SIGURG
_BLOCKED = {signal.SIGINT, signal.SIGTERM}  # process signals: the main thread's
WATCH_INTERVAL = 0.05  # how often the caller looks at a running pass


class RoundTripError(RuntimeError):
    """A round trip did not happen as the guest asked: counts differ or the device stopped."""


class DeviceStopped(RoundTripError):
    """The guest waits for an interrupt that will not come; the message says why."""


class PassResult(NamedTuple):
    """One checked pass: host seconds, guest TSC ticks for the pass, and each request's ticks."""

    seconds: float
    ticks: int
    rtts: list[int]


class RoundTrip:
    """The request guest on a VM with an in-kernel irqchip, its doorbell answered by `answer`."""

    def __init__(self, kvm: Kvm, answer: str, request: Request, timeout: float = 60.0) -> None:
        if answer not in ANSWERS:
            raise ValueError(f"answer must be one of {', '.join(ANSWERS)} (got {answer!r})")
        self.answer, self.request, self.timeout = answer, request, timeout
        self.exits = 0  # doorbell writes answered on a userspace exit
        self.device: IrqfdDevice | None = None
        self._halt: str | None = None
        self._vcpu_ident = 0
        self._pass: Future | None = None  # the pass the vCPU thread runs now, if any
        self.vm = GuestVm(kvm, code=guest.image(guest.ROUNDTRIP_IMAGE), irqchip=True)
        self._pool = ThreadPoolExecutor(1, "iosignal-roundtrip-vcpu", self._vcpu_thread_setup)
        try:
            write_setup(self.vm.mem, VECTOR)
            self.vm.vm.set_gsi_routing([msi_route(DEVICE_GSI, MSI_ADDRESS, VECTOR)])  # fixed, edge
            if answer != "exit":
                doorbell = Pio(request.addr) if request.space == "pio" else Mmio(request.addr)
                poll = answer == "irqfd-poll"
                self.device = IrqfdDevice(self.vm.vm, doorbell, DEVICE_GSI, poll=poll)
        except BaseException:
            self.close()
            raise

    @property
    def consumer(self) -> Consumer | None:
        """The irqfd paths' consumer thread (None on the userspace path)."""
        return self.device.consumer if self.device is not None else None

    def _vcpu_thread_setup(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {*_BLOCKED, KICK_SIGNAL})
        assert self.vm.vcpu is not None
        self.vm.vcpu.set_signal_mask(_BLOCKED)  # KICK_SIGNAL gets through inside KVM_RUN
        self._vcpu_ident = threading.get_ident()

    def run_pass(self, count: int) -> PassResult:
        """Run `count` requests in one guest pass, check every count, return the timings."""
        if self._halt is not None:  # the guest still waits for the interrupt that stopped it
            raise DeviceStopped(self._halt)
        write_requests(self.vm.mem, self.request, count)
        before = read_counts(self.vm.mem)
        answered = self._answered()
        self._pass = self._pool.submit(self._run_until_pass_done)
        seconds = self._watch(self._pass)
        after = read_counts(self.vm.mem)
        got = {
            "guest kicks": after.kicks - before.kicks,
            "guest interrupts": after.interrupts - before.interrupts,
            "device kicks": self._answered()[0] - answered[0],
            "device answers": self._answered()[1] - answered[1],
        }
        wrong = {name: n for name, n in got.items() if n != count}
        if wrong:
            said = ", ".join(f"{n} {name}" for name, n in got.items())
            raise RoundTripError(f"{count} requests ({self.answer}) gave {said}")
        return PassResult(seconds, after.tsc_end - after.tsc_start, read_rtts(self.vm.mem, count))

    def _answered(self) -> tuple[int, int]:
        """(kicks seen, interrupts sent) by the device so far."""
        if self.consumer is None:
            return self.exits, self.exits
        return self.consumer.kicks, self.consumer.answers

    def _watch(self, future: Future) -> float:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return future.result(WATCH_INTERVAL)
            except FutureTimeout:
                pass
            if self._halt is None:
                self._halt = self._why_stuck(deadline)
                if self._halt is not None:
                    self._kick()

    def _kick(self) -> None:
        if self._vcpu_ident:
            signal.pthread_kill(self._vcpu_ident, KICK_SIGNAL)

    def _why_stuck(self, deadline: float) -> str | None:
        if self.consumer is not None and not self.consumer.alive:
            kicks, answers = self._answered()
            return (
                f"the device consumer stopped ({self.consumer.error or 'its thread ended'}) "
                f"after answering {answers} of {kicks} kicks: the guest waits for an interrupt "
                "that will not come"
            )
        if time.monotonic() > deadline:
            return f"the guest's requests did not finish within {self.timeout} s"
        return None

    def _run_until_pass_done(self) -> float:
        """The vCPU thread's KVM_RUN loop for one pass: host seconds until "pass done"."""
        assert self.vm.vcpu is not None
        vcpu, vm = self.vm.vcpu, self.vm.vm
        run, io, mmio = vcpu.run, vcpu.kvm_run.io, vcpu.kvm_run.mmio
        doorbell, answer_exits = self.request.addr, self.answer == "exit"
        start = time.monotonic()
        if self._halt is not None:  # stopped before this thread got here
            raise DeviceStopped(self._halt)
        while True:
            try:
                run()
            except InterruptedError:
                signal.sigtimedwait({KICK_SIGNAL}, 0)  # consume it, or KVM_RUN fails again
                if self._halt is not None:
                    raise DeviceStopped(self._halt) from None
                continue
            reason = vcpu.kvm_run.exit_reason
            if reason == c.KVM_EXIT_IO and io.port == CONTROL_PORT:
                return time.monotonic() - start
            if answer_exits and (
                (reason == c.KVM_EXIT_IO and io.port == doorbell)
                or (reason == c.KVM_EXIT_MMIO and mmio.phys_addr == doorbell)
            ):
                self.exits += 1
                vm.set_irq_line(DEVICE_GSI, True)  # an MSI is an edge of its own: no lowering
            elif reason != c.KVM_EXIT_INTR:
                raise GuestFault(self._unexpected(vcpu))

    def _unexpected(self, vcpu: Vcpu) -> str:
        run = vcpu.kvm_run
        if run.exit_reason == c.KVM_EXIT_IO:
            return f"the guest's port {run.io.port:#x} write reached userspace unanswered"
        if run.exit_reason == c.KVM_EXIT_MMIO:
            return f"the guest's MMIO {run.mmio.phys_addr:#x} write reached userspace unanswered"
        return describe_exit(vcpu)

    def close(self) -> None:
        """Stop the device, close the VM (idempotent)."""
        if self._pass is not None and not self._pass.done():  # e.g. Ctrl-C in run_pass
            self._halt = self._halt or "the round trip was closed"
            self._kick()
            wait([self._pass])
        if self.device is not None:
            self.device.close()
            self.device = None
        self._pool.shutdown()
        self.vm.close()
