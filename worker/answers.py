"""Answered doorbells on the live VM: one device per workload doorbell marked `answered`.

Each is worker.device's IrqfdDevice: KVM_IOEVENTFD on the doorbell's address and width (its
writes never exit), and a Consumer thread that reads that eventfd and answers each kick through
KVM_IRQFD, on the GSI the machine routes as an MSI to the guest's vector. The guest (doorbell.S's
answered kinds) waits for each answer before its next write, so N kicks give N interrupts.

A device is added when a workload names its doorbell (a refusal, e.g. EEXIST because a
registration already catches those writes, refuses the workload and changes nothing) and
retired only between passes, since a pass planned before the change may still ring it. A
consumer that stops while its doorbell is in the workload leaves the guest halted for good: the
watchdog names it (`on_stopped`), and the machine fails the VM instead of hanging.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable

from worker.device import IrqfdDevice
from worker.kvm import Mmio, Pio, Vm

AnswerKey = tuple[str, int, int]  # (space, addr, len) of an answered doorbell
WATCH_INTERVAL = 0.05  # how often the watchdog looks at the consumers

log = logging.getLogger(__name__)


def describe(key: AnswerKey) -> str:
    """`pio 0x6000 len 2`."""
    space, addr, length = key
    return f"{space} {addr:#x} len {length}"


class Answers:
    """The live VM's answering devices by doorbell, their counts, and the watchdog over them."""

    def __init__(self, vm: Vm, gsi: int, on_stopped: Callable[[str], None]) -> None:
        self.vm, self.gsi, self.on_stopped = vm, gsi, on_stopped
        self._lock = threading.Lock()
        self._devices: dict[AnswerKey, IrqfdDevice] = {}
        self._retiring: dict[AnswerKey, IrqfdDevice] = {}
        self._taken: dict[int, tuple[int, int]] = {}  # per device id: counts already collected
        self._final: dict[AnswerKey, list[int]] = {}  # retired devices' counts not yet collected
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    def set(self, keys: set[AnswerKey]) -> None:
        """Answer exactly `keys` from the next pass on: new devices now (all or none; ValueError
        names the refusal), devices no longer wanted retire at the next `retire` (the vCPU thread
        calls it between passes, and when woken idle)."""
        with self._lock:
            added: list[AnswerKey] = []
            try:
                for key in sorted(keys - self._devices.keys()):
                    kept = self._retiring.pop(key, None)
                    self._devices[key] = kept if kept is not None else self._device(key)
                    added.append(key)
            except BaseException:
                for key in added:
                    self._retiring[key] = self._devices.pop(key)
                raise
            for key in self._devices.keys() - keys:
                self._retiring[key] = self._devices.pop(key)
            if self._devices and self._watchdog is None:
                self._watchdog = threading.Thread(
                    target=self._watch, name="iosignal-answers-watchdog", daemon=True
                )
                self._watchdog.start()

    def _device(self, key: AnswerKey) -> IrqfdDevice:
        space, addr, length = key
        where = Pio(addr) if space == "pio" else Mmio(addr)
        try:
            return IrqfdDevice(self.vm, where, self.gsi, length=length)
        except OSError as e:
            if e.errno == errno.EEXIST:
                raise ValueError(
                    f"answered doorbell {describe(key)}: a registration already catches these "
                    "writes (the kernel refuses a second ioeventfd with EEXIST); remove it first"
                ) from None
            raise ValueError(
                f"answered doorbell {describe(key)}: the kernel refused it: {e}"
            ) from e

    def retire(self) -> None:
        """Close the devices no longer in the workload (the vCPU thread, between passes)."""
        # Under the lock: a `set` naming the doorbell again must not assign its ioeventfd while
        # the old one is still assigned (EEXIST); a consumer stops at once, so this is short.
        with self._lock:
            retiring, self._retiring = self._retiring, {}
            for key, device in retiring.items():
                device.close()
                total = self._final.setdefault(key, [0, 0])
                for i, n in enumerate(self._delta(device)):
                    total[i] += n
                self._taken.pop(id(device), None)

    def _delta(self, device: IrqfdDevice) -> tuple[int, int]:
        consumer = device.consumer
        if consumer is None:
            return 0, 0
        kicks, answers = consumer.kicks, consumer.answers
        before = self._taken.get(id(device), (0, 0))
        self._taken[id(device)] = (kicks, answers)
        return kicks - before[0], answers - before[1]

    def counts(self) -> dict[AnswerKey, tuple[int, int]]:
        """(kicks, interrupts) per answered doorbell since the previous call, retired ones too."""
        with self._lock:
            out = {key: (k, i) for key, (k, i) in self._final.items()}
            self._final = {}
            for key, device in [*self._devices.items(), *self._retiring.items()]:
                kicks, interrupts = self._delta(device)
                before = out.get(key, (0, 0))
                out[key] = (before[0] + kicks, before[1] + interrupts)
            return out

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL):
            with self._lock:
                dead = [
                    (k, d) for k, d in self._devices.items() if d.consumer and not d.consumer.alive
                ]
            if dead:
                key, device = dead[0]
                consumer = device.consumer
                assert consumer is not None
                self.on_stopped(
                    f"the device consumer of answered doorbell {describe(key)} stopped "
                    f"({consumer.error or 'its thread ended'}) after answering "
                    f"{consumer.answers} of {consumer.kicks} kicks: the guest waits for an "
                    "interrupt that will not come"
                )
                return

    def close(self) -> None:
        """Stop the watchdog and close every device (the VM is going away)."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join()
        with self._lock:
            devices = [*self._devices.values(), *self._retiring.values()]
            self._devices, self._retiring = {}, {}
        for device in devices:
            device.close()
