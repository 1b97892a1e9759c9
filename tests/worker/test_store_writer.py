"""The sample writer and retention on SQLite and real PostgreSQL: batches, outages, rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.models import ExitRollup, ExitSample, Ioeventfd, SignalRollup, SignalSample, Vm
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


def _count(engine: Engine, model) -> int:
    with Session(engine) as db:
        return db.scalar(select(func.count()).select_from(model))


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
    assert _count(engine, SignalSample) == 4 * len(ids) and _count(engine, ExitSample) == 4
    with Session(engine) as db:
        for rid in ids:
            total = db.get(Ioeventfd, rid).signals_total
            assert total == sum((k * 7 + rid) % 50 for k in range(4))
    assert writer.newest == T0 + timedelta(seconds=3)
    with Session(engine) as db:  # times come back to the microsecond, intervals as float32
        stored = db.execute(select(SignalSample.taken_at, SignalSample.interval_s)).all()
    assert {t for t, _ in stored} == {T0 + timedelta(seconds=k) for k in range(4)}
    assert all(abs(iv - 1.0) < 1e-6 for _, iv in stored)
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
    assert _count(engine, SignalSample) == 4 * len(ids)
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
        times = set(db.scalars(select(SignalSample.taken_at)))
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
    with Session(engine) as db:
        first_kept = min(t for t in ticks if t >= cut)
        assert db.scalar(select(func.min(SignalSample.taken_at))) == first_kept
        assert db.scalar(select(func.min(ExitSample.taken_at))) == first_kept
        raw_left = db.scalar(select(func.count()).select_from(SignalSample))
        assert raw_left == len(ids) * sum(1 for t in ticks if t >= cut)
        rollups = {
            (r.ioeventfd_id, r.minute_at): r.signals for r in db.scalars(select(SignalRollup))
        }
        exit_total = db.scalar(select(func.sum(ExitRollup.exits)))
    expected = {k: v for k, v in raw_by_minute.items() if k[1] < mark}
    assert rollups == expected  # every whole minute, including the deleted ones, sums exactly
    assert exit_total == sum(k % 3 + 1 for k, t in enumerate(ticks) if t < mark)

    retention.enforce(engine, vm_id, now=T0 + timedelta(days=30, hours=-1), raw_h=24, rollup_d=30)
    with Session(engine) as db:
        oldest = db.scalar(select(func.min(SignalRollup.minute_at)))
    assert oldest == retention.minute_floor(T0 - timedelta(hours=1))
    engine.dispose()
