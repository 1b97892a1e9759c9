"""Persist collected samples: one transaction per tick, a bounded buffer across outages.

The sampler hands each tick's `Collected` (signals + exits) to `put`; a writer thread drains them.
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

from sqlalchemy import Engine, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from contract.models import ExitSample, Ioeventfd, SignalSample
from worker.pgwrite import write_signals_pg

log = logging.getLogger("iosignal.writer")

MAX_BUFFERED_SAMPLES = 600_000  # ~10 min of 1,000 registrations at 1 Hz, ~100 MB
MAX_SAMPLES_PER_TXN = 50_000  # catching up after an outage: several ticks per transaction

_add_signals = (
    update(Ioeventfd)
    .where(Ioeventfd.id == bindparam("rid"))
    # updated_at marks state changes only; keep it out of the per-tick counter update
    .values(signals_total=Ioeventfd.signals_total + bindparam("n"), updated_at=Ioeventfd.updated_at)
)


def _size(batch: Any) -> int:
    return len(batch.signals) + len(batch.exits)


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
    ) -> None:
        self.engine, self.vm_id = engine, vm_id
        self.max_samples, self.retry_s, self.after_flush = max_samples, retry_s, after_flush
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._cond = threading.Condition()
        self.outage = False
        self.newest: datetime | None = None  # newest taken_at written
        self.cpu_s = 0.0  # CPU time of the writer thread, when it has stopped
        self.written = self.dropped = self.transactions = self.errors = self.lock_errors = 0

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

    def _write(self, chunk: list[Any]) -> None:
        cols: dict[str, list] = {
            "ioeventfd_id": [],
            "taken_at": [],
            "signals": [],
            "interval_s": [],
        }
        exits: list[dict[str, Any]] = []
        totals: dict[int, int] = {}
        for batch in chunk:
            for s in batch.signals:
                cols["ioeventfd_id"].append(s.key)
                cols["taken_at"].append(s.taken_at)
                cols["signals"].append(s.signals)
                cols["interval_s"].append(s.interval_s)
                if s.signals:
                    totals[s.key] = totals.get(s.key, 0) + s.signals
            exits += [
                {
                    "vm_id": self.vm_id,
                    "space": e.space,
                    "addr": e.addr,
                    "len": e.len,
                    "taken_at": e.taken_at,
                    "exits": e.exits,
                    "interval_s": e.interval_s,
                }
                for e in batch.exits
            ]
        times = cols["taken_at"] + [e["taken_at"] for e in exits]
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                write_signals_pg(conn, cols, totals)
            else:
                if cols["taken_at"]:
                    conn.execute(
                        insert(SignalSample),
                        [
                            dict(zip(cols, row, strict=True))
                            for row in zip(*cols.values(), strict=True)
                        ],
                    )
                if totals:
                    conn.execute(_add_signals, [{"rid": k, "n": v} for k, v in totals.items()])
            if exits:
                conn.execute(insert(ExitSample), exits)
        self.transactions += 1
        if times and (self.newest is None or max(times) > self.newest):
            self.newest = max(times)

    def run(self, stop: threading.Event, final_deadline_s: float = 5.0) -> None:
        """Thread body: flush as ticks arrive until `stop`, then a last flush (bounded in time)."""
        cpu0 = time.thread_time()
        while not stop.is_set():
            with self._cond:
                if not self._queue:
                    self._cond.wait(0.5)
            if self._queue and not self.flush():
                stop.wait(self.retry_s)
        deadline = time.monotonic() + final_deadline_s
        while self._queue and not self.flush() and time.monotonic() < deadline:
            time.sleep(min(self.retry_s, 0.5))
        if self._queue:
            log.error("stopping with %d samples unwritten: database unavailable", self._queued)
        self.cpu_s = time.thread_time() - cpu0
