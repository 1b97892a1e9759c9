"""The observer's writer with latency deltas on real databases: a tick's doorbells reach their
minute's row through the same writer as the samples, ticks of one minute add into one row, and
retention drops the rows past the rollup window with the rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.latency import slot_of
from contract.models import DoorbellLatency
from observer import retention
from observer.discovery import VmKey, VmProcess
from observer.latency import Consumer
from observer.latencyreader import LatencyDelta
from observer.sampler import Tick
from observer.writer import ObservedWriter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
VM = VmProcess(VmKey(4242, 777), T0 - timedelta(hours=1), "qemu-system-x86", "qemu", 1, (9,))
IOTHREAD = Consumer(4250, "IO iothread0", 4242, "qemu-system-x86")


def _tick(at: datetime, kicks: int, irq_ns: int) -> Tick:
    delta = LatencyDelta(
        4242, "pio", 0xC010, 2, IOTHREAD, kicks=kicks, wakes=kicks, coalesced=0,
        answered=kicks, stale=0, vector=0x41, hists={"kick_to_irq": {slot_of(irq_ns): kicks}},
    )  # fmt: skip
    return Tick(at, 1.0, {VM.key: VM}, [], [], {VM.key: [100]}, {}, latency=[(VM.key, delta)])


def test_a_minutes_ticks_add_into_one_row_and_retention_drops_old_minutes(db_url) -> None:
    engine = make_engine(db_url)
    writer = ObservedWriter(engine, "hostA")
    for i, at in enumerate((T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=61))):
        writer.put(_tick(at, 10 * (i + 1), 5_000 * (i + 1)))
    assert writer.flush()
    with Session(engine) as db:
        rows = db.scalars(select(DoorbellLatency).order_by(DoorbellLatency.minute_at)).all()
        assert [(r.minute_at, r.kicks) for r in rows] == [(T0, 30), (T0 + timedelta(minutes=1), 30)]
        first = rows[0]
        assert first.consumer_comm == "IO iothread0" and first.vector == 0x41
        assert first.hists == {"kick_to_irq": {str(slot_of(5_000)): 10, str(slot_of(10_000)): 20}}
    retention.enforce(engine, "hostA", T0 + timedelta(days=30, seconds=90), raw_h=0, rollup_d=30)
    with engine.connect() as conn:
        left = conn.execute(select(func.count()).select_from(DoorbellLatency)).scalar()
    assert left == 1  # the minute 30 days before is gone, the next one stays
    engine.dispose()
