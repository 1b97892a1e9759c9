"""The demo workload: three doorbells, one of them registered, so a first run's charts move;
started and removed only on request, and removing it undoes exactly what it added."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.errors import ApiError
from app.api.lookups import refuse_observed
from app.api.registrations.owned import ask_removal, check_collision, insert_pending
from app.api.workloads.versions import add_version, newest
from app.schemas import IoeventfdIn
from app.schemas_events import DemoOut
from contract.models import Demo, Ioeventfd, RegState, Vm, Workload
from contract.notify import notify_desired
from contract.rules import doorbell_problem

DEMO_DOORBELLS: list[dict[str, Any]] = [
    {"space": "pio", "addr": 0x6000, "len": 2, "value": 1, "rate_hz": 1000.0},
    {"space": "pio", "addr": 0x6004, "len": 4, "value": 1, "rate_hz": 2000.0},
    {"space": "mmio", "addr": 0xD0000000, "len": 4, "value": 1, "rate_hz": 5000.0},
]
DEMO_REGISTRATION = IoeventfdIn(space="pio", addr=0x6000, len=2, label="demo: registered doorbell")
# The one demo row's key: two starts racing past `current` both insert it, and the database
# refuses the second, so "at most one demo" holds without a lock.
DEMO_ID = 1


def current(db: Session) -> Demo | None:
    """The running demo, if any (there is at most one)."""
    return db.scalars(select(Demo).order_by(Demo.id).limit(1)).first()


def demo_out(demo: Demo | None) -> DemoOut:
    """The demo's state as the API answers it."""
    if demo is None:
        return DemoOut(active=False)
    return DemoOut(
        active=True,
        vm_id=demo.vm_id,
        ioeventfd_id=demo.ioeventfd_id,
        workload_version=demo.workload_version,
        started_at=demo.started_at,
    )


def start(db: Session, vm_id: int) -> Demo:
    """Ring the demo doorbells on `vm_id` and register the first; 409 if a demo runs or the
    registration would collide, 422 if the VM is unknown or its guest cannot ring them."""
    vm = db.get(Vm, vm_id)
    if vm is None:
        raise ApiError(422, f"vm_id {vm_id} does not exist", "EINVAL")
    refuse_observed(vm, "starts a demo workload")
    refuse_if_running(db)
    mem_size = vm.guest_mem_size
    for bell in DEMO_DOORBELLS:
        problem = doorbell_problem(bell["space"], bell["addr"], bell["len"], 1, mem_size)
        if problem:
            raise ApiError(422, f"the demo cannot ring on VM {vm_id}: {problem}", "EINVAL")
    check_collision(db, vm_id, DEMO_REGISTRATION)
    before = newest(db, vm_id)
    # One transaction: a start that loses the race below leaves nothing behind.
    bells = [dict(bell) for bell in DEMO_DOORBELLS]
    workload = add_version(db, vm_id, bells, demo=True, commit=False)
    reg = insert_pending(db, vm_id, DEMO_REGISTRATION, commit=False)
    demo = Demo(
        id=DEMO_ID,
        vm_id=vm_id,
        ioeventfd_id=reg.id,
        workload_version=workload.version,
        previous_version=before.version if before else None,
    )
    db.add(demo)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()  # the workload version and registration go with it
        refuse_if_running(db)  # another start won the race
        raise
    notify_desired(db, vm_id)
    return demo


def refuse_if_running(db: Session) -> None:
    """409 EBUSY while a demo runs."""
    running = current(db)
    if running is not None:
        raise ApiError(
            409, f"a demo already runs on VM {running.vm_id}: DELETE /api/demo first", "EBUSY"
        )


def stop(db: Session, demo: Demo) -> None:
    """Deregister the demo's doorbell and, unless someone changed the workload since, give the
    guest back the workload it had before (or none)."""
    reg = db.get(Ioeventfd, demo.ioeventfd_id) if demo.ioeventfd_id else None
    if reg is not None and reg.state != RegState.REMOVED.value:
        ask_removal(db, reg)
    latest = newest(db, demo.vm_id)
    if latest is not None and latest.version == demo.workload_version:
        previous = db.scalar(
            select(Workload.doorbells).where(
                Workload.vm_id == demo.vm_id, Workload.version == demo.previous_version
            )
        )
        add_version(db, demo.vm_id, list(previous or []))
    db.delete(demo)
    db.commit()
