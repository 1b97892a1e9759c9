"""The buffered sample writer both daemons persist through: a bounded buffer across outages.

The ticker hands each tick to `put`; the writer thread drains the buffer, a chunk of ticks per
transaction, each tick whole or not at all; what a transaction writes is the subclass's
`_write` (worker/writer.py: one VM's feeds; observer/writer.py: every VM of the host). With
`batch_s` the writer flushes at most that often: at 10 Hz, ten ticks share one transaction.
While the database is unavailable (PostgreSQL stopped, SQLite locked past its busy timeout) the
ticks stay buffered, the outage is logged once, and they are written when it returns. When the
buffer is full the oldest ticks are dropped and counted, never the process.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from contract.samples import SeriesIndex

log = logging.getLogger("iosignal.writer")

MAX_BUFFERED_SAMPLES = 600_000  # ~10 min of 1,000 registrations at 1 Hz, ~100 MB
MAX_SAMPLES_PER_TXN = 50_000  # catching up after an outage: several ticks per transaction


class BufferedSampleWriter(ABC):
    """Buffers ticks and writes them in chunks from its own thread; subclasses say how a chunk
    is written (`_write`) and how many samples a tick holds (`size`, what the bounds count)."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_samples: int = MAX_BUFFERED_SAMPLES,
        retry_s: float = 1.0,
        after_flush: Callable[[datetime], None] | None = None,
        batch_s: float = 0.0,
    ) -> None:
        self.engine, self.batch_s = engine, batch_s
        self.max_samples, self.retry_s, self.after_flush = max_samples, retry_s, after_flush
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self.outage = False
        self.newest: datetime | None = None  # newest taken_at written
        self.cpu_s = 0.0  # CPU time of the writer thread, when it has stopped
        self.written = self.dropped = self.transactions = self.errors = self.lock_errors = 0
        self.index = SeriesIndex()  # the series dictionary of the feeds this writer writes

    @abstractmethod
    def size(self, batch: Any) -> int:
        """Samples in one tick: what the buffer and the transaction bounds count."""

    @abstractmethod
    def _write(self, chunk: list[Any]) -> None:
        """Write a chunk of ticks in one transaction (raises the database's error)."""

    @property
    def buffered(self) -> int:
        """Samples waiting to be written."""
        return self._queued

    def put(self, batch: Any) -> None:
        """Queue one tick; drop the oldest ticks if the buffer is full."""
        with self._cond:
            self._queue.append(batch)
            self._queued += self.size(batch)
            while self._queued > self.max_samples and len(self._queue) > 1:
                old = self._queue.popleft()
                self._queued -= self.size(old)
                self.dropped += self.size(old)
            self._cond.notify()

    def flush(self) -> bool:
        """Write everything queued; False (and kept queued) if the database is unavailable."""
        while True:
            with self._cond:
                chunk: list[Any] = []
                n = 0
                for batch in self._queue:
                    if chunk and n + self.size(batch) > MAX_SAMPLES_PER_TXN:
                        break
                    chunk.append(batch)
                    n += self.size(batch)
            if not chunk:
                return True
            written = self._write_chunk(chunk)
            if written is None:
                return False
            with self._cond:
                for _ in chunk:
                    self._queued -= self.size(self._queue.popleft())
            self.written += n if written else 0
            if self.outage:
                self.outage = False
                log.warning("database is back; writing %d buffered samples", self._queued + n)
            if self.after_flush and self.newest is not None:
                self.after_flush(self.newest)

    def _write_chunk(self, chunk: list[Any]) -> bool | None:
        """True written, False refused and dropped, None database unavailable (keep it)."""
        try:
            self._write(chunk)
        except DBAPIError as exc:
            self.errors += 1
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            if "locked" in reason:
                self.lock_errors += 1
            outage = (
                isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated
            )
            if not outage:
                # not an outage (e.g. a registration row deleted under us): skip, don't stall
                log.error("dropping %d ticks the database refused: %s", len(chunk), reason)
                self.dropped += sum(self.size(b) for b in chunk)
                return False
            if not self.outage:
                self.outage = True
                log.error("database unavailable, buffering samples until it returns: %s", reason)
            return None
        return True

    def run(self, stop: threading.Event, final_deadline_s: float = 5.0) -> None:
        """Thread body: flush as ticks arrive until `stop`, then a last flush (bounded in time)."""
        cpu0 = time.thread_time()
        while not stop.is_set():
            with self._cond:
                if not self._queue:
                    self._cond.wait(0.5)
            if self._queue:
                if not self.flush():
                    stop.wait(self.retry_s)
                elif self.batch_s:
                    stop.wait(self.batch_s)  # let the next ticks gather into one transaction
        deadline = time.monotonic() + final_deadline_s
        while self._queue and not self.flush() and time.monotonic() < deadline:
            time.sleep(min(self.retry_s, 0.5))
        if self._queue:
            log.error("stopping with %d samples unwritten: database unavailable", self._queued)
        self.cpu_s = time.thread_time() - cpu0
