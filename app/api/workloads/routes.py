"""A VM's workload: the doorbells its guest rings, versioned; the worker applies the newest."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import (
    AUTH_RESPONSES,
    OBSERVED_RESPONSES,
    Authorized,
    OwnedVmDep,
    Responses,
    SessionDep,
    VmDep,
)
from app.api.errors import ApiError
from app.api.workloads.versions import add_version, newest
from app.schemas import ErrorOut, WorkloadIn, WorkloadOut
from contract.models import Vm, Workload
from contract.rules import doorbell_problem

router = APIRouter(
    prefix="/vms/{vm_id}/workload",
    tags=["workload"],
    dependencies=[Authorized],
    responses=AUTH_RESPONSES,
)
RESPONSES: Responses = {404: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def _out(vm: Vm, workload: Workload | None) -> WorkloadOut:
    version = workload.version if workload else 0
    applied = vm.workload_version >= version
    return WorkloadOut(
        vm_id=vm.id,
        version=version,
        doorbells=workload.doorbells if workload else [],
        applied=applied,
        error=vm.error if applied and version else None,
        created_at=workload.created_at if workload else None,
        demo=bool(workload and workload.demo),
    )


def check_guest_can_ring(vm: Vm, body: WorkloadIn) -> None:
    """422 unless the guest can perform every write (MMIO outside its RAM, not its control port)."""
    mem_size = vm.guest_mem_size
    for i, d in enumerate(body.doorbells):
        problem = doorbell_problem(d.space, int(d.addr), d.len, int(d.value), mem_size)
        if problem:
            raise ApiError(422, f"doorbells[{i}]: {problem}", "EINVAL")


@router.get("", response_model=WorkloadOut, responses=RESPONSES)
def read_workload(vm: VmDep, db: SessionDep) -> WorkloadOut:
    """The newest workload, whether the worker applied it, and the rate limits."""
    return _out(vm, newest(db, vm.id))


@router.put("", response_model=WorkloadOut, responses=RESPONSES | OBSERVED_RESPONSES)
def put_workload(vm: OwnedVmDep, body: WorkloadIn, db: SessionDep) -> WorkloadOut:
    """Replace the doorbells (a new version); the worker applies it on its next poll."""
    check_guest_can_ring(vm, body)
    doorbells = [
        {
            "space": d.space,
            "addr": int(d.addr),
            "len": d.len,
            "value": int(d.value),
            "rate_hz": d.rate_hz,
            **({"answered": True} if d.answered else {}),  # absent: not answered, as before
        }
        for d in body.doorbells
    ]
    return _out(vm, add_version(db, vm.id, doorbells))
