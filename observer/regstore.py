"""The observer's rows of what VMMs registered and wrote (issue 18), beside observer/store.py.

Every KVM_IOEVENTFD / KVM_IRQFD call of a tick becomes a row or ends one; the values of writes
that still exited are counted per address, keeping the few most recent; and the observer's own
start says since when calls are known. All in the writer's transaction for the tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, insert, select, update

from contract.models import ObservedExitValue, ObservedRegistration, Observer
from observer.sampler import ExitValue, Registration

KEEP_VALUES = 8  # per address: enough to name what the guest writes, bounded for a noisy one
Reg = ObservedRegistration


def start(conn: Connection, host: str, pid: int, started_at: datetime) -> int:
    """The row of this observer process: registrations made before `started_at` are unknown."""
    return conn.execute(
        insert(Observer)
        .values(host=host, pid=pid, started_at=started_at, seen_at=started_at)
        .returning(Observer.id)
    ).scalar_one()


def seen(conn: Connection, observer_id: int, at: datetime) -> None:
    """The observer wrote a tick taken at `at`."""
    conn.execute(update(Observer).where(Observer.id == observer_id).values(seen_at=at))


def _same_registration(call: Registration) -> ColumnElement[bool]:
    """What the kernel compares to find the registration a deassign removes: for an ioeventfd
    the bus, address, width, eventfd and datamatch (or wildcard); for an irqfd eventfd and gsi."""
    if call.kind != "ioeventfd":
        return and_(Reg.eventfd == call.eventfd, Reg.gsi == call.gsi)
    match = Reg.datamatch.is_(None) if call.datamatch is None else Reg.datamatch == call.datamatch
    return and_(
        Reg.space == call.space,
        Reg.addr == call.addr,
        Reg.len == call.len,
        Reg.eventfd == call.eventfd,
        match,
    )


def _row(vm_id: int, call: Registration, **times: Any) -> dict[str, Any]:
    return {
        "vm_id": vm_id,
        "kind": call.kind,
        "deassign": call.deassign,
        "space": call.space,
        "addr": call.addr,
        "len": call.len,
        "datamatch": call.datamatch,
        "eventfd": call.eventfd,
        "gsi": call.gsi,
        "flags": call.flags,
        "called_at": call.at,
        "errno": call.errno,
    } | times


def record_call(conn: Connection, vm_id: int, call: Registration) -> None:
    """One call: a refused one is kept with its errno, an assign starts a live row, a deassign
    ends the live row it matches (or, assigned before the observer started, is a row itself)."""
    if call.errno is not None or not call.deassign:
        assigned = {} if call.errno is not None else {"assigned_at": call.at}
        conn.execute(insert(Reg).values(_row(vm_id, call, **assigned)))
        return
    live = conn.execute(
        select(Reg.id)
        .where(Reg.vm_id == vm_id, Reg.kind == call.kind, Reg.deassign.is_(False))
        .where(Reg.errno.is_(None), Reg.deassigned_at.is_(None), _same_registration(call))
        .order_by(Reg.id)
        .limit(1)
    ).scalar()
    if live is None:
        conn.execute(insert(Reg).values(_row(vm_id, call, deassigned_at=call.at)))
    else:
        conn.execute(update(Reg).where(Reg.id == live).values(deassigned_at=call.at))


def add_exit_values(
    conn: Connection, vm_id: int, values: Iterable[ExitValue], at: datetime
) -> None:
    """Count this tick's exiting values per address; keep each address's newest KEEP_VALUES."""
    by_addr: dict[tuple[str, int, int], dict[int, int]] = {}
    for v in values:
        counts = by_addr.setdefault((v.space, v.addr, v.len), {})
        counts[v.value] = counts.get(v.value, 0) + v.count
    V = ObservedExitValue
    for (space, addr, len_), counts in by_addr.items():
        at_addr = and_(V.vm_id == vm_id, V.space == space, V.addr == addr, V.len == len_)
        added = False
        for value, n in counts.items():
            # one statement a pair in the steady state: a value seen before is updated
            done = conn.execute(
                update(V)
                .where(at_addr, V.value == value)
                .values(count=V.count + n, last_seen_at=at)
            )
            if done.rowcount == 0:
                row = {"vm_id": vm_id, "space": space, "addr": addr, "len": len_}
                conn.execute(
                    insert(V).values(row | {"value": value, "count": n, "last_seen_at": at})
                )
                added = True
        if not added:
            continue  # no new value: the address still holds at most KEEP_VALUES
        stale = list(
            conn.scalars(
                select(V.value)
                .where(at_addr)
                .order_by(V.last_seen_at.desc(), V.count.desc())
                .offset(KEEP_VALUES)
            )
        )
        if stale:
            conn.execute(delete(V).where(at_addr, V.value.in_(stale)))
