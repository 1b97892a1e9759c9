"""Persist the worker's samples: each tick's `Collected` (signals, exits, answers) for its VM.

The buffer, outage handling and thread are daemon/writer.py's; this is what one transaction
writes: the packed ticks (contract/samples.py) and one update of the registrations'
signals_total per batch (at 10 Hz, ten ticks share it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text, update

from contract.models import Feed, Ioeventfd
from contract.samples import TickIn, write_ticks
from daemon.writer import BufferedSampleWriter

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


class SampleWriter(BufferedSampleWriter):
    """Buffers each tick's samples and writes them for one VM."""

    def __init__(self, engine: Engine, vm_id: int, **kw: Any) -> None:
        super().__init__(engine, **kw)
        self.vm_id = vm_id

    def size(self, batch: Any) -> int:
        """Rows of one `Collected`: its signals, exits and answered doorbells."""
        return len(batch.signals) + len(batch.exits) + len(getattr(batch, "answers", ()))

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
