"""Reads of what the observer saw VMMs register (issue 18): a VM's observed registrations, the
live ones, the values its exiting writes carried, since when its host was watched, and the
assign/deassign markers of the charts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from app.schemas_events import AnnotationOut
from app.schemas_observed import ObservedRegistrationOut
from contract.models import ObservedExitValue, ObservedRegistration, Observer, Vm
from contract.rules import describe

Reg = ObservedRegistration
Addr = tuple[str, int, int]


def known_since(db: Session, host: str) -> datetime | None:
    """The start of the host's newest observer: calls before it are unknown (None: never)."""
    return db.scalar(
        select(Observer.started_at)
        .where(Observer.host == host)
        .order_by(Observer.started_at.desc())
        .limit(1)
    )


def state_of(reg: Reg) -> str:
    """active (the kernel holds it), removed (deassigned) or failed (refused: see errno)."""
    if reg.errno is not None:
        return "failed"
    return "removed" if reg.deassigned_at is not None or reg.deassign else "active"


def listing(db: Session, vm: Vm, states: set[str] | None) -> list[ObservedRegistrationOut]:
    """The VM's observed calls, oldest first: `states` only, else all but removed."""
    since = known_since(db, vm.host)
    out = []
    for reg in db.scalars(select(Reg).where(Reg.vm_id == vm.id).order_by(Reg.id)):
        state = state_of(reg)
        if (state in states) if states else state != "removed":
            out.append(_out(reg, state, since))
    return out


def _out(reg: Reg, state: str, known: datetime | None) -> ObservedRegistrationOut:
    columns = ("id", "vm_id", "kind", "space", "addr", "len", "datamatch", "eventfd", "gsi")
    return ObservedRegistrationOut(
        **{c: getattr(reg, c) for c in columns},
        flags=reg.flags,
        state=state,
        errno=reg.errno,
        since=reg.assigned_at,
        called_at=reg.called_at,
        deassigned_at=reg.deassigned_at,
        known_since=known,
    )


def live(db: Session, vm_id: int) -> list[Reg]:
    """The VM's ioeventfds the kernel holds, as far as the observer saw."""
    return live_of_vms(db, [vm_id])[vm_id]


def live_of_vms(db: Session, vm_ids: list[int]) -> dict[int, list[Reg]]:
    """`live` of several VMs in one query."""
    out: dict[int, list[Reg]] = {vm_id: [] for vm_id in vm_ids}
    for reg in db.scalars(
        select(Reg).where(
            Reg.vm_id.in_(vm_ids),
            Reg.kind == "ioeventfd",
            Reg.errno.is_(None),
            Reg.assigned_at.is_not(None),
            Reg.deassigned_at.is_(None),
        )
    ):
        out[reg.vm_id].append(reg)
    return out


def exit_values(db: Session, vm_id: int, since: datetime) -> dict[Addr, list[int]]:
    """The values of writes that exited at each address, last seen after `since`."""
    return exit_values_of_vms(db, [vm_id], since)[vm_id]


def exit_values_of_vms(
    db: Session, vm_ids: list[int], since: datetime
) -> dict[int, dict[Addr, list[int]]]:
    """`exit_values` of several VMs in one query."""
    V = ObservedExitValue
    out: dict[int, dict[Addr, list[int]]] = {vm_id: {} for vm_id in vm_ids}
    query = select(V.vm_id, V.space, V.addr, V.len, V.value).where(V.vm_id.in_(vm_ids))
    for vm_id, space, addr, len_, value in db.execute(query.where(V.last_seen_at > since)):
        out[vm_id].setdefault((space, addr, len_), []).append(value)
    return out


def markers(
    db: Session, span: tuple[datetime, datetime], vm_id: int | None
) -> Iterator[AnnotationOut]:
    """Assigns, deassigns and refusals the observer saw in the range."""
    since, until = span
    mine = Reg.vm_id == vm_id if vm_id is not None else true()
    for what, column in (
        ("assigned", Reg.assigned_at),
        ("deassigned", Reg.deassigned_at),
        ("refused", Reg.called_at),
    ):
        only = Reg.errno.is_not(None) if what == "refused" else Reg.errno.is_(None)
        query = select(Reg, column).where(column > since, column <= until, only, mine)
        for reg, at in db.execute(query):
            assert at is not None  # the range above
            yield _marker(reg, what, at)


def _marker(reg: Reg, what: str, at: datetime) -> AnnotationOut:
    if reg.kind == "ioeventfd" and reg.space is not None:
        assert reg.addr is not None and reg.len is not None
        name = describe(reg.space, reg.addr, reg.len, reg.datamatch)
    else:
        name = f"gsi {reg.gsi}"
    why = f" ({reg.errno})" if what == "refused" else ""
    return AnnotationOut(
        id=f"obsreg:{reg.id}:{what}",
        kind="registration",
        time=at,
        text=f"observed {reg.kind} {what}{why}: {name}, eventfd {reg.eventfd}",
        vm_id=reg.vm_id,
    )
