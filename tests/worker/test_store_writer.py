"""The sample writer and retention on SQLite and real PostgreSQL: batches, outages, rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from support import stored

from contract.db import make_engine
from contract.models import Feed, Ioeventfd, Rollup, Sample, Series, Vm
from worker import retention, sampler
from worker.writer import SampleWriter

# The sampler's own data shapes, written as the worker writes them.
Sig, Exit = sampler.SignalSample, sampler.ExitSample
Collected = sampler.Collected

T0 = datetime(2026, 11, 20, 12, 0, 30, 123457, tzinfo=UTC)


def _setup(engine: Engine, regs: int = 3) -> tuple[int, list[int]]:
    with Session(engine) as db:
        vm = Vm(name="vm-writer")
        db.add(vm)
        db.flush()
        rows = [
            Ioeventfd(vm_id=vm.id, space="pio", addr=0x600 + i, len=2, state="active")
            for i in range(regs)
        ]
        db.add_all(rows)
        db.commit()
        return vm.id, [r.id for r in rows]


def _tick(ids: list[int], at: datetime, k: int) -> Collected:
    return Collected(
        [Sig(rid, at, (k * 7 + rid) % 50, 1.0000001) for rid in ids],
        [Exit("mmio", 0xD000_0000, 4, at, k % 3 + 1, 1.0)],
    )


def _count(engine: Engine, feed: Feed, model=Sample) -> int:
    """Stored ticks (rows) of a feed."""
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(model).where(model.feed == int(feed)))


def _stored(engine: Engine, vm_id: int, feed: Feed, rollups: bool = False) -> dict:
    with engine.connect() as conn:
        return stored(conn, vm_id, feed, rollups=rollups)


@contextmanager
def database_unavailable(url: str, admin_url: str | None) -> Iterator[None]:
    """PostgreSQL: refuse and cut connections to the test database; SQLite: hold its write lock."""
    if url.startswith("sqlite"):
        lock = sqlite3.connect(make_url(url).database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        return
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
        try:
            yield
        finally:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    admin.dispose()


def _admin(request, url: str) -> str | None:
    return None if url.startswith("sqlite") else request.getfixturevalue("postgres_admin_url")


def test_each_tick_is_one_transaction_and_signals_total_adds_up(db_url: str) -> None:
    engine = make_engine(db_url)
    vm_id, ids = _setup(engine)
    writer = SampleWriter(engine, vm_id)
    for k in range(4):
        writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
        assert writer.flush()
    assert writer.transactions == 4 and writer.written == 4 * (len(ids) + 1)
    # one row per tick and feed, not per series
    assert _count(engine, Feed.SIGNALS) == 4 and _count(engine, Feed.EXITS) == 4
    signals = _stored(engine, vm_id, Feed.SIGNALS)
    assert signals == {
        (rid, T0 + timedelta(seconds=k)): ((k * 7 + rid) % 50,)
        for k in range(4)
        for rid in ids
        if (k * 7 + rid) % 50  # idle series are not stored
    }
    with Session(engine) as db:
        for rid in ids:
            total = db.get(Ioeventfd, rid).signals_total
            assert total == sum((k * 7 + rid) % 50 for k in range(4))
    assert writer.newest == T0 + timedelta(seconds=3)
    with Session(engine) as db:  # times and intervals come back to the microsecond
        rows = db.execute(select(Sample.taken_at, Sample.interval_us)).all()
    assert {t for t, _ in rows} == {T0 + timedelta(seconds=k) for k in range(4)}
    assert {iv for _, iv in rows} == {1_000_000}
    engine.dispose()


def test_outage_buffers_samples_and_flushes_them_when_the_database_returns(
    db_url: str, request
) -> None:
    engine = make_engine(db_url)
    vm_id, ids = _setup(engine)
    writer = SampleWriter(engine, vm_id)
    writer.put(_tick(ids, T0, 0))
    assert writer.flush()
    with database_unavailable(db_url, _admin(request, db_url)):
        for k in range(1, 4):
            writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
        assert writer.flush() is False
        assert writer.outage and writer.buffered == 3 * (len(ids) + 1)
    assert writer.flush() is True
    assert not writer.outage and writer.buffered == 0 and writer.dropped == 0
    assert _count(engine, Feed.SIGNALS) == 4
    with Session(engine) as db:
        assert db.get(Ioeventfd, ids[0]).signals_total == sum(
            (k * 7 + ids[0]) % 50 for k in range(4)
        )
    engine.dispose()


def test_full_buffer_drops_the_oldest_ticks_and_counts_them(empty_sqlite_url: str) -> None:
    from contract.migrate import upgrade

    upgrade(empty_sqlite_url)
    engine = make_engine(empty_sqlite_url)
    vm_id, ids = _setup(engine)
    writer = SampleWriter(engine, vm_id, max_samples=2 * (len(ids) + 1))
    for k in range(5):
        writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
    assert writer.dropped == 3 * (len(ids) + 1)
    assert writer.flush()
    with Session(engine) as db:
        times = set(db.scalars(select(Sample.taken_at)))
    assert times == {T0 + timedelta(seconds=3), T0 + timedelta(seconds=4)}
    engine.dispose()


def test_retention_deletes_old_raw_and_keeps_rollups_equal_to_what_they_replaced(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    vm_id, ids = _setup(engine, regs=2)
    writer = SampleWriter(engine, vm_id)
    start = T0 - timedelta(hours=26)
    ticks = [start + timedelta(seconds=10 * k) for k in range(26 * 360 + 1)]
    raw_by_minute: dict[tuple[int, datetime], int] = {}
    for k, at in enumerate(ticks):
        batch = _tick(ids, at, k)
        writer.put(batch)
        for s in batch.signals:
            key = (s.key, retention.minute_floor(at))
            raw_by_minute[key] = raw_by_minute.get(key, 0) + s.signals
    assert writer.flush()

    mark = retention.roll_up(engine, vm_id, newest=ticks[-1])
    assert mark == retention.minute_floor(ticks[-1])
    assert retention.roll_up(engine, vm_id, newest=ticks[-1]) == mark  # idempotent
    retention.enforce(engine, vm_id, now=T0, raw_h=24, rollup_d=30)

    cut = retention.minute_floor(T0 - timedelta(hours=24))
    first_kept = min(t for t in ticks if t >= cut)
    with Session(engine) as db:
        for feed in (Feed.SIGNALS, Feed.EXITS):
            oldest = select(func.min(Sample.taken_at)).where(Sample.feed == int(feed))
            assert db.scalar(oldest) == first_kept
    assert _count(engine, Feed.SIGNALS) == sum(1 for t in ticks if t >= cut)
    rollups = {k: v[0] for k, v in _stored(engine, vm_id, Feed.SIGNALS, rollups=True).items()}
    exit_total = sum(v[0] for v in _stored(engine, vm_id, Feed.EXITS, rollups=True).values())
    expected = {k: v for k, v in raw_by_minute.items() if k[1] < mark and v}
    assert rollups == expected  # every whole minute, including the deleted ones, sums exactly
    assert exit_total == sum(k % 3 + 1 for k, t in enumerate(ticks) if t < mark)
    with Session(engine) as db:  # the lifetime totals of the series count every rolled minute
        totals = dict(db.execute(select(Series.ioeventfd_id, Series.rolled_total)).all())
    assert {rid: totals[rid] for rid in ids} == {
        rid: sum(v for (r, _), v in expected.items() if r == rid) for rid in ids
    }

    retention.enforce(engine, vm_id, now=T0 + timedelta(days=30, hours=-1), raw_h=24, rollup_d=30)
    with Session(engine) as db:
        oldest = db.scalar(select(func.min(Rollup.minute_at)))
    assert oldest == retention.minute_floor(T0 - timedelta(hours=1))
    engine.dispose()


_KILLED_WRITER = """
import sys
from datetime import UTC, datetime, timedelta
from contract.db import make_engine
from worker import sampler
from worker.writer import SampleWriter

url, vm_id, ids = sys.argv[1], int(sys.argv[2]), [int(i) for i in sys.argv[3].split(",")]
writer = SampleWriter(make_engine(url), vm_id)
t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
k = 0
while True:  # batches of 20 ticks, each one transaction, until killed
    for _ in range(20):
        k += 1
        at = t0 + timedelta(seconds=k)
        writer.put(sampler.Collected([sampler.SignalSample(r, at, k, 1.0) for r in ids], []))
    writer.flush()
    print(k, flush=True)
"""


def test_a_writer_killed_mid_write_leaves_whole_ticks_only(db_url: str) -> None:
    """SIGKILL while batches of 20 ticks x 500 registrations are being written: every stored
    tick holds all 500 counts, whole batches only, and signals_total matches them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    engine = make_engine(db_url)
    vm_id, ids = _setup(engine, regs=500)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, db_url, str(vm_id), ",".join(map(str, ids))],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # one batch is in: the next is being written
    time.sleep(0.05 + (os.getpid() % 7) * 0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    signals = _stored(engine, vm_id, Feed.SIGNALS)
    ticks: dict[datetime, list[int]] = {}
    for (_, at), (n,) in signals.items():
        ticks.setdefault(at, []).append(n)
    assert ticks and len(ticks) % 20 == 0
    assert all(len(v) == len(ids) and len(set(v)) == 1 for v in ticks.values())
    with Session(engine) as db:
        total = db.scalar(select(func.sum(Ioeventfd.signals_total)))
    assert total == sum(n for v in ticks.values() for n in v)
    engine.dispose()


def test_batch_s_gathers_ticks_into_one_transaction(db_url: str) -> None:
    import threading

    engine = make_engine(db_url)
    vm_id, ids = _setup(engine)
    writer = SampleWriter(engine, vm_id, batch_s=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,))
    thread.start()
    for k in range(10):
        writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
    stop.wait(0.7)
    for k in range(10, 20):
        writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
    stop.set()
    thread.join()
    assert _count(engine, Feed.SIGNALS) == 20
    assert writer.transactions <= 4  # not 20
    engine.dispose()


def test_a_corrupt_stored_value_is_refused_naming_the_vm_and_tick(db_url: str) -> None:
    from contract import samples
    from contract.packed import CorruptPacked

    engine = make_engine(db_url)
    vm_id, ids = _setup(engine)
    writer = SampleWriter(engine, vm_id)
    for k in range(3):
        writer.put(_tick(ids, T0 + timedelta(seconds=k), k))
    assert writer.flush()
    bad_at = T0 + timedelta(seconds=1)
    with engine.begin() as conn:
        where = (Sample.feed == int(Feed.SIGNALS), Sample.taken_at == bad_at)
        value = conn.execute(select(Sample.counts).where(*where)).scalar_one()
        conn.execute(Sample.__table__.update().where(*where).values(counts=value[:-3]))
    with engine.connect() as conn, pytest.raises(CorruptPacked) as err:
        list(samples.read(conn, vm_id, Feed.SIGNALS, None))
    assert f"VM {vm_id} (signals), tick {bad_at.isoformat()}" in str(err.value)
    assert "refusing" in str(err.value)
    engine.dispose()


def test_answered_doorbells_are_stored_as_kicks_and_interrupts(db_url: str, kvm_path: str) -> None:
    from worker.guest.table import Ring
    from worker.machine import Machine
    from worker.workload import Doorbell

    engine = make_engine(db_url)
    vm_id, _ = _setup(engine, regs=0)
    writer = SampleWriter(engine, vm_id)
    machine = Machine(kvm_path)
    machine.start()
    try:
        machine.set_workload([Doorbell("pio", 0x6000, 2, 1, 0.0, answered=True)])
        machine.collect()
        machine.ring([Ring("pio", 0x6000, 2, 1, 300, answered=True)])
        tick = machine.collect()
        machine.ring([Ring("pio", 0x6000, 2, 1, 5, answered=True)])
        second = machine.collect()
    finally:
        machine.close()
    writer.put(tick)
    writer.put(second)
    assert writer.flush()
    at, then = tick.answers[0].taken_at, second.answers[0].taken_at
    assert _stored(engine, vm_id, Feed.ANSWERS) == {
        (("pio", 0x6000, 2), at): (300, 300),
        (("pio", 0x6000, 2), then): (5, 5),
    }
    engine.dispose()
