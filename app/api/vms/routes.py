"""VMs: one per worker (owned) or per VMM process the observer watches (observed), with host,
kernel, capabilities and liveness."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app.api.deps import AUTH_RESPONSES, Authorized, Responses, SessionDep, VmDep
from app.api.vms.liveness import vm_out
from app.schemas import ErrorOut, VmOut
from contract.models import Vm, VmKind

router = APIRouter(prefix="/vms", tags=["vms"], dependencies=[Authorized], responses=AUTH_RESPONSES)
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "unknown VM"}}


@router.get("", response_model=list[VmOut])
def list_vms(
    db: SessionDep,
    kind: Annotated[
        VmKind | None,
        Query(description="owned (an iosignal worker's) or observed (any VMM on the host)"),
    ] = None,
) -> list[VmOut]:
    """Every VM known to the database (or those of one kind), oldest first."""
    query = select(Vm).order_by(Vm.id)
    if kind is not None:
        query = query.where(Vm.kind == kind.value)
    return [vm_out(vm) for vm in db.scalars(query)]


@router.get("/{vm_id}", response_model=VmOut, responses=NOT_FOUND)
def read_vm(vm: VmDep) -> VmOut:
    """One VM."""
    return vm_out(vm)
