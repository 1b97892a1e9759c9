"""The device half of a doorbell, the vhost pattern: `IrqfdDevice` assigns KVM_IOEVENTFD on the
doorbell and KVM_IRQFD on a GSI, and its `Consumer` thread reads the doorbell's eventfd and
answers each kick by writing the irqfd's (KVM injects the interrupt). The consumer either blocks
on the eventfd or spins on it (`poll`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from worker.kvm import IoEventAddress, Vm

log = logging.getLogger(__name__)


class Consumer:
    """Answers every signal on `doorbell_fd` with one write to `irq_fd`, on its own thread.

    `kicks` counts the signals read and `answers` the interrupts sent; both are bumped before the
    answer goes out, so once the guest has seen an interrupt the counts already include it.
    """

    def __init__(self, doorbell_fd: int, irq_fd: int, *, poll: bool = False) -> None:
        self.doorbell_fd, self.irq_fd, self.poll = doorbell_fd, irq_fd, poll
        self.kicks = 0
        self.answers = 0
        self.error: str | None = None
        self._stopping = False
        target = self._spin if poll else self._block
        self._thread = threading.Thread(target=self._main, args=(target,), daemon=True)
        self._thread.name = f"iosignal-consumer-{'poll' if poll else 'block'}"

    @property
    def tid(self) -> int | None:
        """The kernel's id of the answering thread once started (what a host tracer sees)."""
        return self._thread.native_id

    @property
    def alive(self) -> bool:
        """The thread is answering (it has started and not ended)."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start answering."""
        os.set_blocking(self.doorbell_fd, not self.poll)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """End the thread (kicks after this go unanswered); True once it has ended."""
        self._stopping = True
        if not self.poll and self._thread.is_alive():
            os.eventfd_write(self.doorbell_fd, 1)  # wake the blocked read; not counted
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _main(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception as e:  # a dead consumer must be visible to whoever waits on it
            self.error = f"{type(e).__name__}: {e}"
            log.error("device consumer stopped: %s", self.error)

    def _answer(self, kicks: int) -> None:
        self.kicks += kicks
        self.answers += 1
        try:
            os.eventfd_write(self.irq_fd, 1)  # KVM_IRQFD turns it into the guest's interrupt
        except OSError:
            self.answers -= 1  # never sent
            raise

    def _block(self) -> None:
        read, doorbell, answer = os.eventfd_read, self.doorbell_fd, self._answer
        while True:
            kicks = read(doorbell)
            if self._stopping:
                return
            answer(kicks)

    def _spin(self) -> None:
        read, doorbell, answer = os.eventfd_read, self.doorbell_fd, self._answer
        idle = os.sched_yield  # as vhost's busy poll stops when need_resched(): the vCPU
        while not self._stopping:  # thread may be waiting for this very CPU
            try:
                kicks = read(doorbell)
            except BlockingIOError:
                idle()
                continue
            answer(kicks)


class IrqfdDevice:
    """Kicks at `address` (`length`-byte writes) answered by an interrupt on `gsi`, all in the
    kernel but for the Consumer thread between them. Deassigns what it assigned on close."""

    def __init__(
        self, vm: Vm, address: IoEventAddress, gsi: int, *, poll: bool = False, length: int = 4
    ) -> None:
        self.consumer: Consumer | None = None
        self._undo: list[Callable[[], None]] = []
        doorbell, irq = os.eventfd(0, os.EFD_CLOEXEC), os.eventfd(0, os.EFD_CLOEXEC)
        self._fds = [doorbell, irq]
        try:
            vm.register_ioevent(doorbell, address, length)
            self._undo.append(lambda: vm.unregister_ioevent(doorbell, address, length))
            vm.register_irqfd(irq, gsi)
            self._undo.append(lambda: vm.unregister_irqfd(irq, gsi))
            self.consumer = Consumer(doorbell, irq, poll=poll)
            self.consumer.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the consumer, deassign the irqfd and the ioeventfd, close both eventfds."""
        if self.consumer is not None:
            self.consumer.stop()
        while self._undo:
            self._undo.pop()()
        for fd in self._fds:
            os.close(fd)
        self._fds = []
