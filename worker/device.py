"""`Consumer`: the device half of a doorbell. A thread reads the doorbell's eventfd (signalled by
KVM_IOEVENTFD) and answers each kick by writing an irqfd's eventfd (KVM_IRQFD injects the
interrupt), the vhost pattern. It either blocks on the eventfd or spins on it (`poll`).
"""

from __future__ import annotations

import logging
import os
import threading

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

    def _main(self, loop) -> None:
        try:
            loop()
        except Exception as e:  # a dead consumer must be visible to whoever waits on it
            self.error = f"{type(e).__name__}: {e}"
            log.error("device consumer stopped: %s", self.error)

    def _answer(self, kicks: int) -> None:
        self.kicks += kicks
        self.answers += 1
        os.eventfd_write(self.irq_fd, 1)  # KVM_IRQFD turns it into the guest's interrupt

    def _block(self) -> None:
        read, doorbell, answer = os.eventfd_read, self.doorbell_fd, self._answer
        while True:
            kicks = read(doorbell)
            if self._stopping:
                return
            answer(kicks)

    def _spin(self) -> None:
        read, doorbell, answer = os.eventfd_read, self.doorbell_fd, self._answer
        while not self._stopping:
            try:
                kicks = read(doorbell)
            except BlockingIOError:
                continue
            answer(kicks)
