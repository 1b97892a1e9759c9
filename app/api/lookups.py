"""Reads the routes share: a VM or registration (or 404), worker liveness, and exit totals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import sampleread
from app.api.errors import ApiError, not_found
from app.schemas import VmOut
from contract.config import get_settings
from contract.models import Feed, Ioeventfd, Vm, VmKind, VmState, utcnow

ExitKey = tuple[str, int, int]  # (space, addr, len)


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
    out.observer_age_s = heartbeat_age(vm.observer_seen_at)
    out.alive = is_alive(vm)
    return out


def rolled_up_until(db: Session, vm_id: int) -> datetime | None:
    """The VM's rollup boundary: raw samples before it are summed into the per-minute tier."""
    return db.scalar(select(Vm.rolled_up_until).where(Vm.id == vm_id))


def exit_totals(
    db: Session,
    vm_id: int,
    boundary: datetime | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[ExitKey, int]:
    """Userspace exits per (space, addr, len) of a VM in (since, until], every exit once;
    without a range, since the VM started (rolled-up minutes from the series' totals)."""
    totals = sampleread.totals(db, vm_id, Feed.EXITS, boundary, since, until)
    return {key: counts[0] for key, counts in totals.items() if counts[0]}
