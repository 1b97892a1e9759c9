"""The reconciler against a real KVM VM and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from contract.db import make_engine
from contract.models import Ioeventfd, Vm, Workload
from worker import store
from worker.machine import Machine
from worker.reconciler import Reconciler


@pytest.fixture
def machine(kvm_path: str) -> Iterator[Machine]:
    m = Machine(kvm_path)
    m.start()
    yield m
    m.close()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def _add(engine: Engine, vm_id: int, **fields) -> int:
    with Session(engine) as db:
        row = Ioeventfd(vm_id=vm_id, **fields)
        db.add(row)
        db.commit()
        return row.id


def _row(engine: Engine, rid: int) -> Ioeventfd:
    with Session(engine) as db:
        return db.get(Ioeventfd, rid)


def test_pending_becomes_active_and_a_collision_fails_with_eexist(engine, machine) -> None:
    vm_id = store.claim_vm(engine, "vm-r1", machine.info())
    first = _add(engine, vm_id, space="pio", addr=0x600, len=2)
    clash = _add(engine, vm_id, space="pio", addr=0x600, len=0)
    bad = _add(engine, vm_id, space="pio", addr=0x600, len=8)
    rec = Reconciler(engine, machine, vm_id)
    assert rec.apply_changes() == 3
    assert _row(engine, first).state == "active" and _row(engine, first).applied_at is not None
    row = _row(engine, clash)
    assert (row.state, row.errno) == ("failed", "EEXIST") and "collides" in row.error
    assert (_row(engine, bad).state, _row(engine, bad).errno) == ("failed", "EINVAL")
    assert machine.registered() == {first}
    assert rec.apply_changes() == 0  # verdicts are final: nothing left to do


def test_removing_is_unregistered_then_removed(engine, machine) -> None:
    vm_id = store.claim_vm(engine, "vm-r2", machine.info())
    rid = _add(engine, vm_id, space="mmio", addr=0xD000_0000, len=4, datamatch=7)
    rec = Reconciler(engine, machine, vm_id)
    rec.apply_changes()
    assert machine.registered() == {rid}
    with Session(engine) as db:
        db.execute(update(Ioeventfd).where(Ioeventfd.id == rid).values(state="removing"))
        db.commit()
    rec.apply_changes()
    row = _row(engine, rid)
    assert row.state == "removed" and row.removed_at is not None
    assert machine.registered() == set()


def test_workload_rings_the_registered_doorbell_and_bad_workload_is_reported(
    engine, machine
) -> None:
    vm_id = store.claim_vm(engine, "vm-r3", machine.info())
    rid = _add(engine, vm_id, space="pio", addr=0x610, len=1)
    with Session(engine) as db:
        db.add(
            Workload(
                vm_id=vm_id,
                version=1,
                doorbells=[{"space": "pio", "addr": 0x610, "len": 1, "value": 1, "rate_hz": 200.0}],
            )
        )
        db.commit()
    rec = Reconciler(engine, machine, vm_id)
    rec.apply_all()
    machine.collect()
    time.sleep(0.5)
    signals = {s.key: s.signals for s in machine.collect().signals}
    assert signals[rid] > 0
    with Session(engine) as db:
        assert db.get(Vm, vm_id).workload_version == 1
        db.add(
            Workload(
                vm_id=vm_id,
                version=2,
                doorbells=[
                    {"space": "pio", "addr": 0x1_0000, "len": 1, "value": 1, "rate_hz": 1.0}
                ],
            )
        )
        db.commit()
    rec.apply_changes()
    with Session(engine) as db:
        vm = db.get(Vm, vm_id)
        assert vm.workload_version == 2 and "version 2 refused" in vm.error


def test_a_verdict_lost_in_a_database_outage_is_written_next_time(engine, machine) -> None:
    vm_id = store.claim_vm(engine, "vm-r5", machine.info())
    rid = _add(engine, vm_id, space="pio", addr=0x620, len=2)
    machine.register(rid, "pio", 0x620, 2, None)  # assigned; then the verdict write failed
    assert Reconciler(engine, machine, vm_id).apply_changes() == 1
    assert _row(engine, rid).state == "active" and machine.registered() == {rid}


def test_apply_all_reapplies_active_rows_on_a_new_vm(engine, kvm_path) -> None:
    first = Machine(kvm_path)
    first.start()
    vm_id = store.claim_vm(engine, "vm-r4", first.info())
    ids = [_add(engine, vm_id, space="pio", addr=0x700 + i, len=2) for i in range(3)]
    Reconciler(engine, first, vm_id).apply_changes()
    first.close()  # the old VM is gone, its rows still say active
    second = Machine(kvm_path)
    second.start()
    try:
        assert Reconciler(engine, second, vm_id).apply_all() == 3
        assert second.registered() == set(ids)
        assert all(_row(engine, rid).state == "active" for rid in ids)
    finally:
        second.close()
