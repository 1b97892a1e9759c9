"""Reads the routes share: a VM or registration (or 404), worker liveness, and the tiered read
that counts every sample once across the raw tier and the per-minute rollups."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import QueryableAttribute, Session

from app.api.errors import ApiError, not_found
from app.schemas import VmOut
from contract.config import get_settings
from contract.models import ExitRollup, ExitSample, Ioeventfd, Vm, VmKind, VmState, utcnow

ExitKey = tuple[str, int, int]  # (space, addr, len)
Columns = TypeVarTuple("Columns")


def get_vm(db: Session, vm_id: int) -> Vm:
    """The VM `vm_id`, or 404."""
    vm = db.get(Vm, vm_id)
    if vm is None:
        raise not_found("VM", vm_id)
    return vm


def refuse_observed(vm: Vm, what: str) -> None:
    """409 when `vm` is an observed VM: iosignal never changes another process's VM."""
    if vm.kind == VmKind.OBSERVED.value:
        who = f"{vm.comm or 'a VMM'} (pid {vm.pid})" if vm.pid else (vm.comm or "another VMM")
        raise ApiError(
            409,
            f"VM {vm.id} is observed, not owned: it belongs to {who}, which iosignal only "
            f"watches; iosignal never {what} in another process's VM",
            "EPERM",
            extra={"kind": vm.kind, "pid": vm.pid, "comm": vm.comm},
        )


def ensure_vm(db: Session, vm_id: int) -> None:
    """404 unless the VM exists (cheap check for nested resources)."""
    if db.scalar(select(Vm.id).where(Vm.id == vm_id)) is None:
        raise not_found("VM", vm_id)


def get_reg(db: Session, vm_id: int, reg_id: int) -> Ioeventfd:
    """Registration `reg_id` of VM `vm_id`, or 404."""
    reg = db.get(Ioeventfd, reg_id)
    if reg is None or reg.vm_id != vm_id:
        raise not_found("registration", reg_id)
    return reg


def heartbeat_age(heartbeat_at: datetime | None) -> float | None:
    """Seconds since the worker's last heartbeat, or None if it never beat."""
    return None if heartbeat_at is None else (utcnow() - heartbeat_at).total_seconds()


def is_alive(vm: Vm) -> bool:
    """A worker is alive while its heartbeat is younger than the configured timeout."""
    age = heartbeat_age(vm.heartbeat_at)
    timeout = get_settings().heartbeat_timeout_s
    return age is not None and age < timeout and vm.state == VmState.RUNNING


def vm_out(vm: Vm) -> VmOut:
    """A VM with its liveness computed now."""
    out = VmOut.model_validate(vm)
    out.heartbeat_age_s = heartbeat_age(vm.heartbeat_at)
    out.alive = is_alive(vm)
    return out


def rolled_up_until(db: Session, vm_id: int) -> datetime | None:
    """The VM's rollup boundary: raw samples before it are summed into the per-minute tier."""
    return db.scalar(select(Vm.rolled_up_until).where(Vm.id == vm_id))


def tiered(
    raw: Select[*Columns],
    raw_at: QueryableAttribute[datetime],
    rolled: Select[*Columns],
    minute_at: QueryableAttribute[datetime],
    boundary: datetime | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Select[*Columns]]:
    """`rolled` and `raw` narrowed so that together they read (since, until] once: rolled-up
    minutes before `boundary`, raw samples from it on; only `raw` without a boundary."""
    if until is not None:
        raw = raw.where(raw_at <= until)
    if boundary is not None and (since is None or boundary > since):
        # One lower bound on the raw tier: SQLite's time-first key range uses only one, and
        # with `> since` beside it, it would scan the whole range back to `since`.
        raw = raw.where(raw_at >= boundary)
    elif since is not None:
        raw = raw.where(raw_at > since)
    if boundary is None:
        return [raw]
    if since is not None:
        rolled = rolled.where(minute_at >= since.replace(second=0, microsecond=0))
    rolled = rolled.where(minute_at < (boundary if until is None else min(until, boundary)))
    return [rolled, raw]


def exit_totals(
    db: Session,
    vm_id: int,
    boundary: datetime | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[ExitKey, int]:
    """Userspace exits per (space, addr, len) of a VM in (since, until], every exit once."""
    key = (ExitSample.space, ExitSample.addr, ExitSample.len)
    rkey = (ExitRollup.space, ExitRollup.addr, ExitRollup.len)
    raw = select(*key, func.sum(ExitSample.exits)).where(ExitSample.vm_id == vm_id).group_by(*key)
    rolled = (
        select(*rkey, func.sum(ExitRollup.exits)).where(ExitRollup.vm_id == vm_id).group_by(*rkey)
    )
    totals: dict[ExitKey, int] = defaultdict(int)
    queries = tiered(raw, ExitSample.taken_at, rolled, ExitRollup.minute_at, boundary, since, until)
    for query in queries:
        for space, addr, len_, exits in db.execute(query):
            totals[(space, addr, len_)] += int(exits or 0)
    return dict(totals)
