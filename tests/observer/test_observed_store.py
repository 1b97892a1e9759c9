"""The observer's writer and retention on real databases: rows, outages, rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from support import stored

from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Feed, Rollup, Sample, Vm
from observer import retention
from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, Tick
from observer.writer import ObservedWriter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
VM = VmProcess(VmKey(4242, 777), T0 - timedelta(hours=1), "qemu-system-x86", "qemu -m 1G", 2, (9,))


def _tick(at: datetime, writes: int, userspace: int, ended: bool = False) -> Tick:
    sample = AddressSample(VM.key, "pio", 0x510, 2, writes, userspace, 1)
    live = {} if ended else {VM.key: VM}
    return Tick(at, 1.0, live, [VM.key] if ended else [], [sample], {VM.key: [100, 101]}, {})


def _count(engine, what) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(what)).scalar()


def test_ticks_make_one_observed_row_its_samples_and_its_end(db_url) -> None:
    engine = make_engine(db_url)
    writer = ObservedWriter(engine, "hostA")
    for i in range(3):
        writer.put(_tick(T0 + timedelta(seconds=i), 10 * (i + 1), i))
    writer.put(_tick(T0 + timedelta(seconds=3), 5, 5, ended=True))
    assert writer.flush()
    with engine.connect() as conn:
        [vm] = conn.execute(select(Vm).where(Vm.kind == "observed")).all()
        counts = stored(conn, vm.id, Feed.OBSERVED).values()
        totals = (sum(c[0] for c in counts), sum(c[1] for c in counts))
    assert (vm.host, vm.pid, vm.comm, vm.cmdline, vm.vcpus) == ("hostA", 4242, *VM[2:5])
    assert vm.vcpu_tids == [100, 101] and vm.started_at == VM.started_at
    assert (vm.state, vm.ended_at) == ("stopped", T0 + timedelta(seconds=3))
    assert tuple(totals) == (65, 8)  # every tick's samples, the ending tick's too
    engine.dispose()


def test_a_database_outage_buffers_ticks_until_it_returns(postgres_admin_url) -> None:
    url = make_url(postgres_admin_url).set(database="iosignal_observer_outage")
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('DROP DATABASE IF EXISTS "iosignal_observer_outage"'))
    url_s = url.render_as_string(hide_password=False)
    engine = make_engine(url_s)
    writer = ObservedWriter(engine, "hostA", retry_s=0.01)
    writer.put(_tick(T0, 7, 3))
    writer.put(_tick(T0 + timedelta(seconds=1), 4, 0))
    assert not writer.flush() and writer.outage and writer.buffered == 2  # no database yet
    try:
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "iosignal_observer_outage"'))
        upgrade(url_s)
        assert writer.flush() and writer.buffered == 0
        assert _count(engine, Sample) == 2
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text('DROP DATABASE IF EXISTS "iosignal_observer_outage" WITH (FORCE)'))
        admin.dispose()


def test_rollups_sum_the_raw_minutes_and_retention_keeps_the_invariant(db_url) -> None:
    engine = make_engine(db_url)
    writer = ObservedWriter(engine, "hostA")
    for s in range(0, 150, 10):  # 12:00:00 .. 12:02:20, 15 ticks
        writer.put(_tick(T0 + timedelta(seconds=s), 3, 1))
    assert writer.flush()
    mark = retention.roll_up(engine, "hostA", T0 + timedelta(seconds=140))
    assert mark == T0 + timedelta(minutes=2)
    with engine.connect() as conn:
        vm_id = conn.execute(select(Vm.id)).scalar_one()
        rolled = stored(conn, vm_id, Feed.OBSERVED, rollups=True)
    key = ("pio", 0x510, 2)
    assert rolled == {(key, T0): (18, 6, 6), (key, T0 + timedelta(minutes=1)): (18, 6, 6)}
    retention.roll_up(engine, "hostA", T0 + timedelta(seconds=140))  # each minute once
    assert _count(engine, Rollup) == 2
    # raw kept 0 h: only rolled-up minutes go; the third minute stays raw
    retention.enforce(engine, "hostA", T0 + timedelta(hours=1), raw_h=0, rollup_d=30)
    assert _count(engine, Sample) == 3
    # past the rollup window the ended VM goes, with its rollups and samples
    writer.put(_tick(T0 + timedelta(seconds=150), 0, 0, ended=True))
    assert writer.flush()
    retention.enforce(engine, "hostA", T0 + timedelta(days=31), raw_h=0, rollup_d=30)
    assert (_count(engine, Vm), _count(engine, Rollup)) == (0, 0)
    engine.dispose()
