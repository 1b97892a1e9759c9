"""Persist collected samples: one transaction per batch of ticks, a bounded buffer across outages.

The sampler hands each tick's `Collected` (signals + exits) to `put`; a writer thread drains them
into the packed store (contract/samples.py), each tick whole or not at all. With `batch_s` the
writer flushes at most that often: at 10 Hz, ten ticks share one transaction and one update of
the registrations' signals_total.
While the database is unavailable (PostgreSQL stopped, SQLite locked past its busy timeout) the
ticks stay buffered, the outage is logged once, and they are written when it returns. When the
buffer is full the oldest ticks are dropped and counted, never the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from contract.models import Feed, Ioeventfd
from contract.samples import SeriesIndex, TickIn, write_ticks

log = logging.getLogger("iosignal.writer")

MAX_BUFFERED_SAMPLES = 600_000  # ~10 min of 1,000 registrations at 1 Hz, ~100 MB
MAX_SAMPLES_PER_TXN = 50_000  # catching up after an outage: several ticks per transaction

_add_signals = (
    update(Ioeventfd)
    .where(Ioeventfd.id == bindparam("rid"))
    # updated_at marks state changes only; keep it out of the per-tick counter update
    .values(signals_total=Ioeventfd.signals_total + bindparam("n"), updated_at=Ioeventfd.updated_at)
)
# PostgreSQL: one statement for every registration of a batch instead of one round trip each.
_PG_TOTALS = text(
    "UPDATE ioeventfds SET signals_total = ioeventfds.signals_total + x.n "
    "FROM unnest(CAST(:i AS integer[]), CAST(:n AS bigint[])) AS x(i, n) WHERE ioeventfds.id = x.i"
)


def add_totals(conn: Connection, totals: dict[int, int]) -> None:
    """Add each registration's signals of a batch to its `signals_total`."""
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_TOTALS, {"i": list(totals), "n": list(totals.values())})
    else:
        conn.execute(_add_signals, [{"rid": k, "n": v} for k, v in totals.items()])


def batch_seconds(interval_s: float) -> float:
    """How long the writer gathers ticks: up to 1 s when ticking faster than once a second."""
    return 1.0 if interval_s < 1.0 else 0.0


def _size(batch: Any) -> int:
    return len(batch.signals) + len(batch.exits) + len(getattr(batch, "answers", ()))


class SampleWriter:
    """Buffers each tick's samples and writes them for one VM."""

    def __init__(
        self,
        engine: Engine,
        vm_id: int,
        *,
        max_samples: int = MAX_BUFFERED_SAMPLES,
        retry_s: float = 1.0,
        after_flush: Callable[[datetime], None] | None = None,
        batch_s: float = 0.0,
    ) -> None:
        self.engine, self.vm_id, self.batch_s = engine, vm_id, batch_s
        self.max_samples, self.retry_s, self.after_flush = max_samples, retry_s, after_flush
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self.outage = False
        self.newest: datetime | None = None  # newest taken_at written
        self.cpu_s = 0.0  # CPU time of the writer thread, when it has stopped
        self.written = self.dropped = self.transactions = self.errors = self.lock_errors = 0
        self.index = SeriesIndex()  # the series dictionary of the feeds this writer writes

    @property
    def buffered(self) -> int:
        """Samples waiting to be written."""
        return self._queued

    def put(self, batch: Any) -> None:
        """Queue one tick's `Collected`; drop the oldest ticks if the buffer is full."""
        with self._cond:
            self._queue.append(batch)
            self._queued += _size(batch)
            while self._queued > self.max_samples and len(self._queue) > 1:
                old = self._queue.popleft()
                self._queued -= _size(old)
                self.dropped += _size(old)
            self._cond.notify()

    def flush(self) -> bool:
        """Write everything queued; False (and kept queued) if the database is unavailable."""
        while True:
            with self._cond:
                chunk: list[Any] = []
                n = 0
                for batch in self._queue:
                    if chunk and n + _size(batch) > MAX_SAMPLES_PER_TXN:
                        break
                    chunk.append(batch)
                    n += _size(batch)
            if not chunk:
                return True
            written = self._write_chunk(chunk)
            if written is None:
                return False
            with self._cond:
                for _ in chunk:
                    self._queued -= _size(self._queue.popleft())
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
                self.dropped += sum(_size(b) for b in chunk)
                return False
            if not self.outage:
                self.outage = True
                log.error("database unavailable, buffering samples until it returns: %s", reason)
            return None
        return True

    def _ticks(self, batch: Any, totals: dict[int, int]) -> list[TickIn]:
        """A Collected as (at most) three packed ticks; adds its signals to `totals`."""
        ticks = []
        if batch.signals:  # every registration is in it, zeros too: the tick is known
            s0 = batch.signals[0]
            signals = {s.key: (s.signals,) for s in batch.signals}
            ticks.append(TickIn(self.vm_id, Feed.SIGNALS, s0.taken_at, s0.interval_s, signals))
            for s in batch.signals:
                if s.signals:
                    totals[s.key] = totals.get(s.key, 0) + s.signals
        if batch.exits:
            e0 = batch.exits[0]
            exits = {(e.space, e.addr, e.len): (e.exits,) for e in batch.exits}
            ticks.append(TickIn(self.vm_id, Feed.EXITS, e0.taken_at, e0.interval_s, exits))
        answers = getattr(batch, "answers", ())
        if answers:  # every answered doorbell, idle ones too: a stalled device shows as 0
            a0 = answers[0]
            counts = {(a.space, a.addr, a.len): (a.kicks, a.interrupts) for a in answers}
            ticks.append(TickIn(self.vm_id, Feed.ANSWERS, a0.taken_at, a0.interval_s, counts))
        return ticks

    def _write(self, chunk: list[Any]) -> None:
        totals: dict[int, int] = {}
        ticks = [tick for batch in chunk for tick in self._ticks(batch, totals)]
        try:
            with self.engine.begin() as conn:
                write_ticks(conn, self.index, ticks)
                if totals:
                    add_totals(conn, totals)
        except BaseException:
            self.index.forget()  # series it added were rolled back with the ticks
            raise
        self.transactions += 1
        newest = max((t.taken_at for t in ticks), default=None)
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest

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
