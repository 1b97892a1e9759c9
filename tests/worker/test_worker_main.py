"""`iosignal worker` as a real process on real KVM, against SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from support import stored, wait_for
from test_store_writer import _admin, database_unavailable  # same folder, on sys.path

from contract.db import make_engine
from contract.models import (
    BenchmarkRun,
    Feed,
    Ioeventfd,
    Sample,
    Vm,
    WorkerEvent,
    Workload,
    utcnow,
)
from contract.notify import notify_desired, wake_path
from worker.hostinfo import flavour

REPO = Path(__file__).resolve().parents[2]
TICK_S = 0.2


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


@pytest.fixture
def spawn(tmp_path: Path, kvm_path: str) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `python -m cli.main worker` processes; every one is killed at the end."""
    procs: list[subprocess.Popen] = []

    def start(url: str, name: str, **more_env: str) -> subprocess.Popen:
        env = os.environ | {
            "IOSIGNAL_DATABASE_URL": url,
            "IOSIGNAL_VM_NAME": name,
            "IOSIGNAL_KVM_PATH": kvm_path,
            "IOSIGNAL_SAMPLE_INTERVAL_S": str(TICK_S),
            "IOSIGNAL_LOG_LEVEL": "info",
            **more_env,
        }
        log = open(tmp_path / f"worker-{len(procs)}.log", "w")  # noqa: SIM115 (closed by exit)
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker"],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _vm(engine: Engine, name: str) -> Vm | None:
    with Session(engine) as db:
        return db.scalars(select(Vm).where(Vm.name == name)).one_or_none()


def _running(engine: Engine, name: str, pid: int) -> Vm | None:
    vm = _vm(engine, name)
    return vm if vm and vm.pid == pid and vm.state == "running" else None


def _reg(engine: Engine, rid: int) -> Ioeventfd:
    with Session(engine) as db:
        return db.get(Ioeventfd, rid)


def _desire(engine: Engine, vm_id: int, *rows: Ioeventfd | Workload) -> list[int]:
    with Session(engine) as db:
        db.add_all(rows)
        db.commit()
        ids = [r.id for r in rows]
        notify_desired(db, vm_id)  # as the API does after its commit
        return ids


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=20)


def test_worker_applies_registrations_writes_verdicts_and_stops_cleanly(
    db_url, engine, spawn
) -> None:
    proc = spawn(db_url, "vm-a")
    vm = wait_for("the VM row", lambda: _running(engine, "vm-a", proc.pid))
    assert vm.kernel and vm.host and vm.capabilities.get("api_version") == 12
    host = flavour()
    assert (vm.cpu_model, vm.kvm_module, vm.kvm_nested) == tuple(host.values())
    t0 = time.monotonic()
    ok, clash = _desire(
        engine,
        vm.id,
        Ioeventfd(vm_id=vm.id, space="pio", addr=0x600, len=2),
        Ioeventfd(vm_id=vm.id, space="pio", addr=0x600, len=0),
    )
    wait_for("active", lambda: _reg(engine, ok).state == "active")
    wait_for("failed", lambda: _reg(engine, clash).state == "failed")
    row = _reg(engine, ok)
    lag_ms = (row.applied_at - row.created_at).total_seconds() * 1000
    print(
        f"\n[{db_url.split(':')[0]}] applied {lag_ms:.1f} ms after the row was created; "
        f"both verdicts seen by the test after {1000 * (time.monotonic() - t0):.0f} ms"
    )
    assert _reg(engine, clash).errno == "EEXIST"
    beat = _vm(engine, "vm-a").heartbeat_at
    wait_for("a newer heartbeat", lambda: _vm(engine, "vm-a").heartbeat_at > beat)
    assert _stop(proc) == 0
    assert _vm(engine, "vm-a").state == "stopped"
    with Session(engine) as db:
        events = db.execute(
            select(WorkerEvent.event, WorkerEvent.pid).where(WorkerEvent.vm_id == vm.id)
        ).all()
    assert [tuple(e) for e in events] == [("start", proc.pid), ("stop", proc.pid)]


@pytest.mark.serial  # its lags are timed (< 0.3 s)
def test_the_apps_wake_up_gets_registrations_applied_long_before_the_poll(
    db_url, engine, spawn
) -> None:
    """With a 30 s poll (the heartbeat still looks every 1 s), only the wake-up is this quick."""
    proc = spawn(db_url, "vm-w", IOSIGNAL_POLL_INTERVAL_S="30")
    vm = wait_for("the VM row", lambda: _running(engine, "vm-w", proc.pid))
    lags = []
    for i in range(5):
        t0 = time.monotonic()
        (rid,) = _desire(engine, vm.id, Ioeventfd(vm_id=vm.id, space="pio", addr=0x700 + i, len=1))
        wait_for("active", lambda rid=rid: _reg(engine, rid).state == "active", every=0.002)
        lags.append(time.monotonic() - t0)
    print(f"\n[{db_url.split(':')[0]}] applied after {[round(1000 * x) for x in lags]} ms")
    assert max(lags) < 0.3, lags
    fifo = wake_path(db_url, vm.id)
    assert fifo is None or fifo.exists()  # SQLite: the worker listens beside the database
    assert _stop(proc) == 0
    assert fifo is None or not fifo.exists()


def test_a_second_worker_for_a_live_vm_name_refuses_to_start(db_url, engine, spawn) -> None:
    first = spawn(db_url, "vm-d")
    wait_for("the VM row", lambda: _running(engine, "vm-d", first.pid))
    second = spawn(db_url, "vm-d")
    assert second.wait(timeout=30) == 1
    assert _running(engine, "vm-d", first.pid) is not None  # the row still belongs to the first
    assert _stop(first) == 0


def test_kill_9_and_restart_loses_nothing(db_url, engine, spawn) -> None:
    proc = spawn(db_url, "vm-k")
    vm = wait_for("the VM row", lambda: _running(engine, "vm-k", proc.pid))
    rung, quiet = _desire(
        engine,
        vm.id,
        Ioeventfd(vm_id=vm.id, space="pio", addr=0x620, len=1),
        Ioeventfd(vm_id=vm.id, space="mmio", addr=0xD000_0000, len=4, datamatch=1),
        Workload(
            vm_id=vm.id,
            version=1,
            doorbells=[{"space": "pio", "addr": 0x620, "len": 1, "value": 5, "rate_hz": 500.0}],
        ),
    )[:2]
    wait_for("signals counted", lambda: _reg(engine, rung).signals_total > 0)
    proc.kill()  # SIGKILL: no shutdown code runs
    proc.wait()
    # Desired state changes while the worker is away wait as pending.
    (late,) = _desire(engine, vm.id, Ioeventfd(vm_id=vm.id, space="pio", addr=0x630, len=4))
    before = _reg(engine, rung).signals_total
    restarted_at = utcnow()

    proc = spawn(db_url, "vm-k")
    wait_for("the VM row again", lambda: _running(engine, "vm-k", proc.pid))
    for rid in (rung, quiet, late):
        wait_for(
            f"{rid} active",
            lambda rid=rid: (
                (r := _reg(engine, rid)).state == "active" and r.applied_at > restarted_at
            ),
        )
    wait_for("the workload ringing again", lambda: _reg(engine, rung).signals_total > before + 100)
    with engine.connect() as conn:
        signals = stored(conn, vm.id, Feed.SIGNALS)
        exits_stored = stored(conn, vm.id, Feed.EXITS)
    new = sum(1 for (rid, at), (n,) in signals.items() if rid == rung and at > restarted_at and n)
    exits = sum(1 for (key, at) in exits_stored if key[1] == 0x620 and at > restarted_at)
    assert new > 0 and exits == 0  # rings reach the eventfd on the new VM, not userspace
    assert _stop(proc) == 0


def test_database_outage_keeps_every_tick(db_url, engine, spawn, request) -> None:
    proc = spawn(db_url, "vm-o")
    vm = wait_for("the VM row", lambda: _running(engine, "vm-o", proc.pid))
    (rid,) = _desire(engine, vm.id, Ioeventfd(vm_id=vm.id, space="pio", addr=0x640, len=2))
    wait_for("active", lambda: _reg(engine, rid).state == "active")
    outage_from = utcnow()
    # SQLite: a lock held past the 10 s busy timeout; PostgreSQL: connections refused and cut.
    hold = 12.0 if db_url.startswith("sqlite") else 3.0
    with database_unavailable(db_url, _admin(request, db_url)):
        time.sleep(hold)
        assert proc.poll() is None
    outage_to = utcnow()
    wait_for(
        "samples after the outage", lambda: _count_after(engine, rid, outage_to) >= 3, timeout=30
    )
    with Session(engine) as db:
        times = list(
            db.scalars(
                select(Sample.taken_at)
                .where(Sample.vm_id == vm.id, Sample.feed == int(Feed.SIGNALS))
                .where(Sample.taken_at >= outage_from)
                .order_by(Sample.taken_at)
            )
        )
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] < outage_from + timedelta(seconds=1) and times[-1] > outage_to
    assert max(gaps) < timedelta(seconds=4 * TICK_S), "a tick of the outage was lost"
    assert _stop(proc) == 0


def _count_after(engine: Engine, rid: int, after) -> int:
    with Session(engine) as db:
        vm_id = select(Ioeventfd.vm_id).where(Ioeventfd.id == rid).scalar_subquery()
        return db.scalar(
            select(func.count()).where(
                Sample.vm_id == vm_id, Sample.feed == int(Feed.SIGNALS), Sample.taken_at > after
            )
        )


def test_a_queued_benchmark_runs_and_stores_one_result_per_path(empty_sqlite_url, spawn) -> None:
    from contract.migrate import upgrade

    upgrade(empty_sqlite_url)
    engine = make_engine(empty_sqlite_url)
    with Session(engine) as db:
        db.add(BenchmarkRun(writes=2000, repeat=2, paths=["userspace-pio", "ioeventfd-pio"]))
        db.commit()
    proc = spawn(empty_sqlite_url, "vm-b")
    with Session(engine) as db:
        run = wait_for(
            "the benchmark",
            lambda: db.scalars(
                select(BenchmarkRun)
                .where(BenchmarkRun.state.in_(["done", "failed"]))
                .execution_options(populate_existing=True)
            ).first(),
            timeout=60,
        )
        assert run.state == "done", run.error
        assert run.progress == 1.0 and run.vm_id is not None and run.kernel
        assert run.kvm_module == flavour()["kvm_module"] and run.cpu_model
        assert [r.path for r in run.results] == ["userspace-pio", "ioeventfd-pio"]
        assert all(r.writes == 2000 and r.iops > 0 for r in run.results)
    assert _stop(proc) == 0
    engine.dispose()


def test_an_answered_workload_stores_kicks_and_interrupts(db_url, engine, spawn) -> None:
    proc = spawn(db_url, "vm-answered")
    vm = wait_for("the VM row", lambda: _running(engine, "vm-answered", proc.pid))
    (reg,) = _desire(engine, vm.id, Ioeventfd(vm_id=vm.id, space="pio", addr=0x6100, len=2))
    wait_for("active", lambda: _reg(engine, reg).state == "active")
    bell = {"space": "pio", "addr": 0x6000, "len": 2, "value": 1, "rate_hz": 500.0}
    _desire(engine, vm.id, Workload(vm_id=vm.id, version=1, doorbells=[bell | {"answered": True}]))

    def answered() -> tuple[int, int] | None:
        with engine.connect() as conn:
            rows = stored(conn, vm.id, Feed.ANSWERS)
        kicks = sum(c[0] for c in rows.values())
        interrupts = sum(c[1] for c in rows.values())
        return (kicks, interrupts) if kicks >= 300 else None

    kicks, interrupts = wait_for("answered kicks stored", answered)
    assert abs(kicks - interrupts) <= 1  # a kick read but not yet answered at the last tick
    # An answered doorbell where a registration already catches the writes: the version is
    # refused whole, the VM keeps running, and the error says why.
    caught = bell | {"addr": 0x6100, "answered": True}
    _desire(engine, vm.id, Workload(vm_id=vm.id, version=2, doorbells=[caught]))
    refused = wait_for("version 2 refused", lambda: (v := _vm(engine, "vm-answered")) and v.error)
    assert "workload version 2 refused" in refused and "EEXIST" in refused
    assert _vm(engine, "vm-answered").state == "running"
    assert _stop(proc) == 0
