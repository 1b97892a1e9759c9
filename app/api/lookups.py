"""Lookups the routes share: the VM or registration an id names (or 404), and the refusal to
change an observed VM."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.errors import ApiError, not_found
from contract.models import Ioeventfd, Vm, VmKind


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
