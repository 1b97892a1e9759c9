"""Workload versions: the newest is what a VM's guest should ring; each change is a new one."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract.models import Workload
from contract.notify import notify_desired


def newest(db: Session, vm_id: int) -> Workload | None:
    """The VM's newest workload version (the desired one), if any."""
    query = select(Workload).where(Workload.vm_id == vm_id).order_by(Workload.version.desc())
    return db.scalars(query.limit(1)).first()


def add_version(
    db: Session,
    vm_id: int,
    doorbells: list[dict[str, Any]],
    demo: bool = False,
    commit: bool = True,
) -> Workload:
    """Store `doorbells` as the VM's next version and wake its worker; with `commit=False` only
    stage it in the caller's transaction (the caller commits and wakes)."""
    version = (
        db.scalar(select(func.max(Workload.version)).where(Workload.vm_id == vm_id)) or 0
    ) + 1
    workload = Workload(vm_id=vm_id, version=version, doorbells=doorbells, demo=demo)
    db.add(workload)
    if not commit:
        db.flush()
        return workload
    db.commit()
    notify_desired(db, vm_id)
    return workload
