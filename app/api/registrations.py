"""Registration work behind the routes: collision check, insert, and waiting for the verdict."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.errors import ApiError
from app.schemas import IoeventfdIn
from contract.config import get_settings
from contract.models import Ioeventfd, RegState, utcnow
from contract.notify import notify_desired
from contract.rules import collision_sentence, describe, first_collision

LIVE_STATES = tuple(state.value for state in RegState.live())
POLL_S = 0.02


def check_collision(db: Session, vm_id: int, body: IoeventfdIn) -> None:
    """409 EEXIST if the kernel would refuse `body` beside the VM's live registrations."""
    live = db.scalars(
        select(Ioeventfd).where(Ioeventfd.vm_id == vm_id, Ioeventfd.state.in_(LIVE_STATES))
    ).all()
    new = Ioeventfd(space=body.space, addr=body.addr, len=body.len, datamatch=body.datamatch_int)
    old = first_collision(new, live)
    if old is not None:
        raise ApiError(
            409,
            collision_sentence(
                describe(new.space, new.addr, new.len, new.datamatch),
                f"registration {old.id} ({describe(old.space, old.addr, old.len, old.datamatch)}, "
                f"{old.state})",
            ),
            "EEXIST",
            extra={"conflict_id": old.id},
        )


def insert_pending(db: Session, vm_id: int, body: IoeventfdIn, commit: bool = True) -> Ioeventfd:
    """Store the desired registration as `pending` and wake the worker; with `commit=False` only
    stage it in the caller's transaction (the caller commits and wakes)."""
    reg = Ioeventfd(
        vm_id=vm_id,
        space=body.space,
        addr=int(body.addr),
        len=body.len,
        datamatch=body.datamatch_int,
        label=body.label,
        state=RegState.PENDING.value,
    )
    db.add(reg)
    if not commit:
        db.flush()
        return reg
    db.commit()
    notify_desired(db, vm_id)
    return reg


def ask_removal(db: Session, reg: Ioeventfd) -> None:
    """Mark `reg` for deassignment; a failed one was never in the kernel and is removed now."""
    if reg.state == RegState.FAILED.value:
        reg.state = RegState.REMOVED.value
        reg.removed_at = utcnow()
        db.commit()
        return
    if reg.state != RegState.REMOVING.value:
        reg.state = RegState.REMOVING.value
        db.commit()
    notify_desired(db, reg.vm_id)


def wait_for(db: Session, reg_id: int, done: tuple[str, ...]) -> Ioeventfd:
    """Poll `reg_id` until its state is in `done` or the verdict timeout passes; return it."""
    deadline = time.monotonic() + get_settings().verdict_timeout_s
    while True:
        db.rollback()  # end the read snapshot so the worker's commits become visible
        reg = db.get(Ioeventfd, reg_id, populate_existing=True)
        assert reg is not None  # rows are never deleted, only marked removed
        if reg.state in done or time.monotonic() >= deadline:
            return reg
        time.sleep(POLL_S)
