"""The observer's side of the database contract: observed VM rows and their samples.

An observed VM gets a `vms` row of kind 'observed', found again by (host, pid, started_at). A
VMM that is an iosignal worker on this host already has its owned row (same host and pid,
claimed after the process started): its samples go there and the row's worker-managed columns
are left alone. The observer writes only its own columns and rows.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from contract.models import Vm, VmKind, VmState
from observer.discovery import VmProcess


def vm_name(host: str, vm: VmProcess) -> str:
    """A unique, readable name: comm/pid/start@host (the start tells a reused pid apart)."""
    head = f"{vm.comm}/{vm.pid}/{vm.key.start_ticks}@"
    return head + host[: max(0, 64 - len(head))]


def _owned_row(conn: Connection, host: str, vm: VmProcess) -> int | None:
    return conn.execute(
        select(Vm.id)
        .where(Vm.kind == VmKind.OWNED.value, Vm.host == host, Vm.pid == vm.pid)
        .where(Vm.started_at >= vm.started_at)
        .order_by(Vm.started_at.desc())
        .limit(1)
    ).scalar()


def ensure_vm(
    conn: Connection, host: str, vm: VmProcess, tids: list[int] | None, seen_at: datetime
) -> int:
    """The row id for `vm`: the owned row of a worker, else its observed row (made if new)."""
    details: dict[str, Any] = {"comm": vm.comm, "cmdline": vm.cmdline, "vcpus": vm.vcpus}
    if tids is not None:
        details["vcpu_tids"] = tids
    vm_id = _owned_row(conn, host, vm)
    if vm_id is None:
        vm_id = conn.execute(
            select(Vm.id).where(
                Vm.kind == VmKind.OBSERVED.value,
                Vm.host == host,
                Vm.pid == vm.pid,
                Vm.started_at == vm.started_at,
            )
        ).scalar()
    if vm_id is None:
        uname = platform.uname()
        return conn.execute(
            insert(Vm)
            .values(
                name=vm_name(host, vm),
                kind=VmKind.OBSERVED.value,
                host=host,
                kernel=f"{uname.system} {uname.release} {uname.machine}",
                capabilities={},
                state=VmState.RUNNING.value,
                pid=vm.pid,
                workload_version=0,
                started_at=vm.started_at,
                heartbeat_at=seen_at,
                created_at=seen_at,
                **details,
            )
            .returning(Vm.id)
        ).scalar_one()
    conn.execute(update(Vm).where(Vm.id == vm_id).values(**details))
    return vm_id


def heartbeat(conn: Connection, vm_ids: Iterable[int], at: datetime) -> None:
    """Observed VMs still running at `at` (owned rows have their worker's heartbeat), and every
    VM seen at `at`: an owned VM's page says its observer watches even while it writes nothing."""
    ids = list(vm_ids)
    if ids:
        # Each row updated once a tick (a fleet's 5,000 VMs: 5,000 row versions a second on
        # PostgreSQL, not 10,000): observed rows in full, owned rows only their observer mark.
        observed = Vm.kind == VmKind.OBSERVED.value
        conn.execute(
            update(Vm)
            .where(Vm.id.in_(ids), observed)
            .values(
                heartbeat_at=at, state=VmState.RUNNING.value, ended_at=None, observer_seen_at=at
            )
        )
        conn.execute(update(Vm).where(Vm.id.in_(ids), ~observed).values(observer_seen_at=at))


def mark_ended(conn: Connection, vm_ids: Iterable[int], at: datetime) -> None:
    """Observed VMs whose process is gone: stopped, ended at `at`."""
    ids = list(vm_ids)
    if ids:
        conn.execute(
            update(Vm)
            .where(Vm.id.in_(ids), Vm.kind == VmKind.OBSERVED.value)
            .values(state=VmState.STOPPED.value, ended_at=at)
        )


def end_missing(conn: Connection, host: str, live: Iterable[VmProcess], at: datetime) -> int:
    """At start: observed VMs of `host` left running by an earlier observer but gone now."""
    alive = {(vm.pid, vm.started_at) for vm in live}
    rows = conn.execute(
        select(Vm.id, Vm.pid, Vm.started_at).where(
            and_(Vm.kind == VmKind.OBSERVED.value, Vm.host == host, Vm.ended_at.is_(None))
        )
    ).all()
    stale = [r.id for r in rows if (r.pid, r.started_at) not in alive]
    mark_ended(conn, stale, at)
    return len(stale)


def set_kvm_stats(conn: Connection, vm_id: int, totals: dict[str, int], at: datetime) -> None:
    """KVM's own totals for the VM, with when they were read."""
    conn.execute(
        update(Vm).where(Vm.id == vm_id).values(kvm_stats={**totals, "taken_at": at.isoformat()})
    )
