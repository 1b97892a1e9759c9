"""VMs: one per worker, with host, kernel, capabilities and liveness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep, VmId
from app.api.errors import not_found
from app.api.routes.health import heartbeat_age, is_alive
from app.schemas import ErrorOut, VmOut
from contract.models import Vm

router = APIRouter(prefix="/vms", tags=["vms"], dependencies=[Authorized], responses=AUTH_RESPONSES)
NOT_FOUND = {404: {"model": ErrorOut, "description": "unknown VM"}}


def vm_out(vm: Vm) -> VmOut:
    """A VM with its liveness computed now."""
    out = VmOut.model_validate(vm)
    out.heartbeat_age_s = heartbeat_age(vm.heartbeat_at)
    out.alive = is_alive(vm)
    return out


def get_vm(db: Session, vm_id: int) -> Vm:
    """The VM `vm_id`, or 404."""
    vm = db.get(Vm, vm_id)
    if vm is None:
        raise not_found("VM", vm_id)
    return vm


def ensure_vm(db: Session, vm_id: int) -> None:
    """404 unless the VM exists (cheap check for nested resources)."""
    if db.scalar(select(Vm.id).where(Vm.id == vm_id)) is None:
        raise not_found("VM", vm_id)


@router.get("", response_model=list[VmOut])
def list_vms(db: SessionDep) -> list[VmOut]:
    """Every VM known to the database, oldest first."""
    return [vm_out(vm) for vm in db.scalars(select(Vm).order_by(Vm.id))]


@router.get("/{vm_id}", response_model=VmOut, responses=NOT_FOUND)
def read_vm(vm_id: VmId, db: SessionDep) -> VmOut:
    """One VM."""
    return vm_out(get_vm(db, vm_id))
