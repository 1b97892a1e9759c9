"""The worker's database operations: VM row takeover, conditional verdicts, benchmark claims."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.models import BenchmarkRun, Ioeventfd, Vm, Workload
from worker import store

INFO = {
    "host": "h",
    "kernel": "Linux 6",
    "api_version": 12,
    "mem_size": 0x200000,
    "capabilities": {"IOEVENTFD": 1},
}


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def test_claim_vm_creates_then_takes_over_the_same_row(engine: Engine) -> None:
    first = store.claim_vm(engine, "vm-s", INFO)
    store.set_workload_version(engine, first, 3, None)
    with Session(engine) as db:
        db.add(BenchmarkRun(vm_id=first, state="running", writes=1, repeat=1))
        db.commit()
    assert store.claim_vm(engine, "vm-s", INFO | {"kernel": "Linux 7"}) == first
    with Session(engine) as db:
        vm = db.get(Vm, first)
        assert (vm.kernel, vm.state, vm.workload_version) == ("Linux 7", "running", 0)
        assert vm.capabilities == {"api_version": 12, "IOEVENTFD": 1}
        assert vm.mem_size == 0x200000  # a typed column, not a key of capabilities
        run = db.query(BenchmarkRun).one()
        assert run.state == "failed" and "stopped" in run.error


def test_verdicts_never_overwrite_a_removal_asked_meanwhile(engine: Engine) -> None:
    vm_id = store.claim_vm(engine, "vm-v", INFO)
    with Session(engine) as db:
        row = Ioeventfd(vm_id=vm_id, space="pio", addr=0x600, len=2)
        db.add(row)
        db.commit()
        rid = row.id
        db.execute(update(Ioeventfd).where(Ioeventfd.id == rid).values(state="removing"))
        db.commit()
    assert store.mark_active(engine, rid) is False
    assert store.mark_failed(engine, rid, "EEXIST", "x") is False
    assert store.mark_removed(engine, rid) is True
    assert store.mark_removed(engine, rid) is False
    with Session(engine) as db:
        row = db.get(Ioeventfd, rid)
        assert row.state == "removed" and row.removed_at is not None and row.errno is None


def test_registrations_lists_active_first_and_newest_workload_wins(engine: Engine) -> None:
    vm_id = store.claim_vm(engine, "vm-l", INFO)
    with Session(engine) as db:
        db.add_all(
            [
                Ioeventfd(vm_id=vm_id, space="pio", addr=0x600 + i, len=1, state=state)
                for i, state in enumerate(["pending", "active", "failed", "removing", "active"])
            ]
        )
        db.add_all([Workload(vm_id=vm_id, version=v, doorbells=[{"v": v}]) for v in (1, 3, 2)])
        db.commit()
    rows = store.registrations(engine, vm_id, ("active", "pending", "removing"))
    assert [r.state for r in rows] == ["active", "active", "pending", "removing"]
    assert store.newest_workload(engine, vm_id) == (3, [{"v": 3}])


def test_a_queued_benchmark_is_claimed_once(engine: Engine) -> None:
    a = store.claim_vm(engine, "vm-a", INFO)
    b = store.claim_vm(engine, "vm-b", INFO)
    with Session(engine) as db:
        db.add_all(
            [
                BenchmarkRun(vm_id=b, writes=1, repeat=1),
                BenchmarkRun(vm_id=None, writes=2, repeat=1),
            ]
        )
        db.commit()
    run = store.claim_benchmark(engine, a)
    assert run is not None and run.writes == 2  # any-VM run; vm-b's is not vm-a's
    assert store.claim_benchmark(engine, a) is None
    store.finish_benchmark(
        engine,
        run.id,
        {
            "host": "h",
            "kernel": "k",
            "results": [
                {
                    "path": "ioeventfd-pio",
                    "writes": 2,
                    "iops": 1.0,
                    "rtt_us": 1.0,
                    "rtt_us_min": 1.0,
                    "rtt_us_max": 1.0,
                    "guest_rtt_us": None,
                },
                {
                    "path": "roundtrip-ioeventfd-irqfd",
                    "writes": 2,
                    "iops": 1.0,
                    "rtt_us": 2.0,
                    "rtt_us_min": 1.5,
                    "rtt_us_max": 9.0,
                    "rtt_us_p99": 7.5,
                    "guest_rtt_us": 2.1,
                },
            ],
        },
        None,
    )
    with Session(engine) as db:
        done = db.get(BenchmarkRun, run.id)
        assert (done.state, done.vm_id, len(done.results)) == ("done", a, 2)
        assert [r.rtt_us_p99 for r in done.results] == [None, 7.5]  # per request: round trips


def test_probe_reports_work_waiting_for_this_vm_only(engine: Engine) -> None:
    a = store.claim_vm(engine, "vm-p", INFO)
    b = store.claim_vm(engine, "vm-q", INFO)
    assert store.probe(engine, a) == (0, None, None)
    with Session(engine) as db:
        db.add_all(
            [
                Ioeventfd(vm_id=a, space="pio", addr=1, len=1),
                Ioeventfd(vm_id=a, space="pio", addr=2, len=1, state="removing"),
                Ioeventfd(vm_id=a, space="pio", addr=3, len=1, state="active"),
                Ioeventfd(vm_id=b, space="pio", addr=1, len=1),
                Workload(vm_id=a, version=4, doorbells=[]),
                BenchmarkRun(vm_id=b, writes=1, repeat=1),
            ]
        )
        db.commit()
    assert store.probe(engine, a) == (2, 4, None)
    assert store.probe(engine, b)[0] == 1 and store.probe(engine, b)[2] is not None
