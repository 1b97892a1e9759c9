"""VMs: one per worker, with host, kernel, capabilities and liveness."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from app.api.deps import AUTH_RESPONSES, Authorized, Responses, SessionDep, VmDep
from app.api.queries import heartbeat_age, is_alive
from app.schemas import ErrorOut, VmOut
from contract.models import Vm

router = APIRouter(prefix="/vms", tags=["vms"], dependencies=[Authorized], responses=AUTH_RESPONSES)
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "unknown VM"}}


def vm_out(vm: Vm) -> VmOut:
    """A VM with its liveness computed now."""
    out = VmOut.model_validate(vm)
    out.heartbeat_age_s = heartbeat_age(vm.heartbeat_at)
    out.alive = is_alive(vm)
    return out


@router.get("", response_model=list[VmOut])
def list_vms(db: SessionDep) -> list[VmOut]:
    """Every VM known to the database, oldest first."""
    return [vm_out(vm) for vm in db.scalars(select(Vm).order_by(Vm.id))]


@router.get("/{vm_id}", response_model=VmOut, responses=NOT_FOUND)
def read_vm(vm: VmDep) -> VmOut:
    """One VM."""
    return vm_out(vm)
