"""The observer's rows of VMMs' registrations, exit values and read exits, written by its real
writer into real SQLite and PostgreSQL: the kernel's deassign matching, refused calls, the bound
on values per address, the observer's start, and the read-exit feed rolled up and retained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from support import stored

from contract.db import make_engine
from contract.models import Feed, ObservedExitValue, ObservedRegistration, Observer, Rollup, Vm
from observer import retention
from observer.discovery import VmKey, VmProcess
from observer.regstore import KEEP_VALUES
from observer.sampler import AddressSample, ExitValue, Registration, Tick
from observer.writer import ObservedWriter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
VM = VmProcess(VmKey(4242, 777), T0 - timedelta(hours=1), "qemu-system-x86", "qemu", 1, (9,))


def call(at, deassign=False, datamatch=1, eventfd=12, errno=None, addr=0x510) -> Registration:
    return Registration(
        VM.key, at, "ioeventfd", deassign, "pio", addr, 4, datamatch, eventfd, None, 0, errno
    )


def tick(at, calls=(), values=(), samples=()) -> Tick:
    return Tick(at, 1.0, {VM.key: VM}, [], list(samples), {}, {}, list(values), list(calls))


def rows(engine, model, *order) -> list:
    with engine.connect() as conn:
        return list(conn.execute(select(model).order_by(*order)))


def test_deassign_ends_the_row_the_kernel_would_match_and_refusals_never_register(db_url):
    engine = make_engine(db_url)
    started = T0 - timedelta(minutes=5)
    writer = ObservedWriter(engine, "hostA", started_at=started)
    at = [T0 + timedelta(seconds=i) for i in range(4)]
    writer.put(tick(at[0], [call(at[0]), call(at[0], datamatch=None, eventfd=13, addr=0x520)]))
    writer.put(tick(at[1], [call(at[1], errno="EEXIST")]))  # the same again: refused
    # a deassign with another datamatch matches nothing live; then the real one
    writer.put(tick(at[2], [call(at[2], deassign=True, datamatch=2), call(at[2], deassign=True)]))
    writer.put(tick(at[3], [call(at[3], deassign=True, datamatch=None, eventfd=13, addr=0x520)]))
    assert writer.flush()
    regs = rows(engine, ObservedRegistration, ObservedRegistration.id)
    shape = [
        (r.addr, r.datamatch, r.deassign, r.errno, r.assigned_at, r.deassigned_at) for r in regs
    ]
    assert shape == [
        (0x510, 1, False, None, at[0], at[2]),  # assigned, then deassigned by its twin call
        (0x520, None, False, None, at[0], at[3]),  # a wildcard matched by a wildcard deassign
        (0x510, 1, False, "EEXIST", None, None),  # refused: never assigned
        (0x510, 2, True, None, None, at[2]),  # assigned before the observer: unknown since
    ]
    [observer] = rows(engine, Observer)
    assert (observer.host, observer.started_at, observer.seen_at) == ("hostA", started, at[3])
    engine.dispose()


def test_exit_values_are_counted_and_only_the_newest_few_per_address_kept(db_url):
    engine = make_engine(db_url)
    writer = ObservedWriter(engine, "hostA")
    value = lambda v, n: ExitValue(VM.key, "pio", 0x510, 4, v, n)  # noqa: E731
    writer.put(tick(T0, values=[value(0, 5), value(7, 1)]))
    later = [T0 + timedelta(seconds=1 + i) for i in range(KEEP_VALUES)]
    for i, at in enumerate(later):  # 8 new values, each newer than 0 and 7; 0 written again
        writer.put(tick(at, values=[value(100 + i, 1)] + ([value(0, 2)] if i == 0 else [])))
    assert writer.flush()
    kept = {r.value: (r.count, r.last_seen_at) for r in rows(engine, ObservedExitValue)}
    # 7 is the oldest; 100 ties with 0 (written again then) and counted less
    assert set(kept) == {0} | {100 + i for i in range(1, KEEP_VALUES)}
    assert kept[0] == (7, later[0])
    assert kept[100 + KEEP_VALUES - 1] == (1, later[-1])
    writer.put(tick(later[-1] + timedelta(seconds=1), values=[value(101, 3)]))
    assert writer.flush()
    assert {r.value: r.count for r in rows(engine, ObservedExitValue)}[101] == 4
    engine.dispose()


def test_read_exits_are_a_feed_rolled_up_and_retained_with_the_observed_one(db_url):
    engine = make_engine(db_url)
    writer = ObservedWriter(engine, "hostA")
    for s in range(0, 70, 10):  # 12:00:00 .. 12:01:00
        sample = AddressSample(VM.key, "pio", 0x511, 1, 0, 0, 4, 3)
        writer.put(tick(T0 + timedelta(seconds=s), samples=[sample]))
    assert writer.flush()
    retention.roll_up(engine, "hostA", T0 + timedelta(seconds=60))
    with engine.connect() as conn:
        vm_id = conn.execute(select(Vm.id)).scalar_one()
        rolled = stored(conn, vm_id, Feed.READ_EXITS, rollups=True)
        raw = stored(conn, vm_id, Feed.READ_EXITS)
    assert rolled == {(("pio", 0x511, 1), T0): (18,)}
    assert len(raw) == 7
    retention.enforce(engine, "hostA", T0 + timedelta(days=31), raw_h=0, rollup_d=30)
    with engine.connect() as conn:
        assert stored(conn, vm_id, Feed.READ_EXITS) == {
            (("pio", 0x511, 1), T0 + timedelta(minutes=1)): (3,)
        }
    assert rows(engine, Rollup) == []
    engine.dispose()
