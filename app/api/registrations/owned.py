"""Registration work behind the routes: collision check, insert, and waiting for the verdict."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.api.errors import ApiError
from app.schemas import IoeventfdIn
from contract.config import get_settings
from contract.models import Ioeventfd, RegState, Vm, utcnow
from contract.notify import notify_desired, notify_on_commit, wake_after
from contract.rules import (
    LIVE_STATES,
    RegistrationLike,
    collision_sentence,
    describe,
    guest_problem,
)

# The worker usually answers within a few milliseconds of its wake-up: look often at first, then
# settle to a slower poll for a busy or absent worker.
FAST_POLL_S, FAST_FOR_S, POLL_S = 0.002, 0.1, 0.02


def collision_clause(new: RegistrationLike) -> ColumnElement[bool]:
    """`contract.rules.collides(old, new)` as SQL over the `old` rows, for one indexed query.

    Same space and address (the index's prefix), then: a width of 0 on either side, or the
    same width with a wildcard or equal datamatch.
    """
    if new.len == 0:
        width: ColumnElement[bool] = true()
    else:
        match = (
            true()
            if new.datamatch is None
            else or_(Ioeventfd.datamatch.is_(None), Ioeventfd.datamatch == new.datamatch)
        )
        width = or_(Ioeventfd.len == 0, and_(Ioeventfd.len == new.len, match))
    return and_(Ioeventfd.space == new.space, Ioeventfd.addr == new.addr, width)


def first_live_collision(db: Session, vm_id: int, new: RegistrationLike) -> Ioeventfd | None:
    """The oldest live registration of the VM that `new` collides with, or None.

    One query on `ix_ioeventfds_vm_addr`: it reads the registrations at `new`'s address only,
    so its cost does not grow with the VM's other registrations.
    """
    query = (
        select(Ioeventfd)
        .where(Ioeventfd.vm_id == vm_id, Ioeventfd.state.in_(LIVE_STATES), collision_clause(new))
        .order_by(Ioeventfd.id)
        .limit(1)
    )
    return db.scalars(query).first()


def check_guest_can_fire(vm: Vm, body: IoeventfdIn) -> None:
    """422 EINVAL if `body` could never fire on the VM's guest (its pass-done port, MMIO inside
    its RAM): the worker refuses it by the same rule, so the app answers without the trip."""
    problem = guest_problem(body.space, int(body.addr), vm.guest_mem_size)
    if problem:
        raise ApiError(422, problem, "EINVAL")


def check_collision(db: Session, vm_id: int, body: IoeventfdIn) -> None:
    """409 EEXIST if the kernel would refuse `body` beside the VM's live registrations."""
    new = Ioeventfd(space=body.space, addr=body.addr, len=body.len, datamatch=body.datamatch_int)
    old = first_live_collision(db, vm_id, new)
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
    notify_on_commit(db, vm_id)  # one transaction: the row and the worker's NOTIFY
    db.commit()
    wake_after(db, vm_id)
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
    start = time.monotonic()
    deadline = start + get_settings().verdict_timeout_s
    reg = db.get(Ioeventfd, reg_id)  # the caller's row, from the session
    assert reg is not None  # rows are never deleted, only marked removed
    # The request's work is committed: end any read transaction (rows stay loaded), then hold
    # one connection for the whole wait, each look a single autocommit SELECT that sees the
    # worker's newest commit (not a checkout, ping, BEGIN and ROLLBACK every 2 ms).
    db.commit()
    state_of = select(Ioeventfd.state).where(Ioeventfd.id == reg_id)
    with db.get_bind().engine.connect() as conn:
        looker = conn.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            now = time.monotonic()
            if looker.scalar(state_of) in done or now >= deadline:
                break
            time.sleep(FAST_POLL_S if now - start < FAST_FOR_S else POLL_S)
        row = looker.execute(select(Ioeventfd.__table__).where(Ioeventfd.id == reg_id)).one()
    for column, value in row._mapping.items():  # the worker's verdict, not a change to write
        set_committed_value(reg, column, value)
    return reg
