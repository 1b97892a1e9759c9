"""Registrations: ask the worker to (de)assign ioeventfds; answer with the kernel's verdict."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.deps import AUTH_RESPONSES, Authorized, KnownVmId, OwnedVmDep, RegDep, SessionDep
from app.api.errors import ApiError
from app.api.lookups import get_vm
from app.api.registrations import observed as observed_regs
from app.api.registrations.owned import (
    ask_removal,
    check_collision,
    check_guest_can_fire,
    insert_pending,
    wait_for,
)
from app.api.vms.liveness import is_alive
from app.schemas import ErrorOut, IoeventfdIn, IoeventfdOut
from app.schemas_observed import ObservedRegistrationOut
from contract.models import Ioeventfd, RegState, VmKind

router = APIRouter(
    prefix="/vms/{vm_id}/ioeventfds",
    tags=["ioeventfds"],
    dependencies=[Authorized],
    responses=AUTH_RESPONSES,
)


def _reply(reg: Ioeventfd, status: int) -> JSONResponse:
    body = jsonable_encoder(IoeventfdOut.model_validate(reg))
    location = f"/api/vms/{reg.vm_id}/ioeventfds/{reg.id}"
    return JSONResponse(body, status_code=status, headers={"Location": location})


@router.get("", response_model=list[IoeventfdOut] | list[ObservedRegistrationOut])
def list_ioeventfds(
    vm_id: KnownVmId,
    db: SessionDep,
    state: Annotated[
        list[RegState] | None,
        Query(description="only these states (repeatable); default: all but removed"),
    ] = None,
) -> list[IoeventfdOut] | list[ObservedRegistrationOut]:
    """The VM's registrations, oldest first: iosignal's (`source: "iosignal"`), or for an
    observed VM those the observer saw its VMM make (`source: "observed"`, read-only), each
    with `known_since`: calls before the host's observer started are unknown."""
    vm = get_vm(db, vm_id)
    if vm.kind == VmKind.OBSERVED.value:
        return observed_regs.listing(db, vm, {s.value for s in state or []})
    query = select(Ioeventfd).where(Ioeventfd.vm_id == vm_id).order_by(Ioeventfd.id)
    if state:
        query = query.where(Ioeventfd.state.in_([s.value for s in state]))
    else:
        query = query.where(Ioeventfd.state != RegState.REMOVED.value)
    return [IoeventfdOut.model_validate(reg) for reg in db.scalars(query)]


@router.get("/{reg_id}", response_model=IoeventfdOut, responses={404: {"model": ErrorOut}})
def read_ioeventfd(reg: RegDep) -> Ioeventfd:
    """One registration (removed ones too: history keeps pointing at them)."""
    return reg


@router.post(
    "",
    status_code=201,
    response_model=IoeventfdOut,
    responses={
        201: {"description": "assigned in the kernel: state active"},
        202: {"model": IoeventfdOut, "description": "worker away or slow: state pending"},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut, "description": "collision (EEXIST), or an observed VM (EPERM)"},
        422: {"model": ErrorOut, "description": "a rule broken, or the kernel said EINVAL etc."},
    },
)
def register_ioeventfd(vm: OwnedVmDep, body: IoeventfdIn, db: SessionDep) -> JSONResponse:
    """Register an ioeventfd and wait (up to the verdict timeout) for the kernel's verdict."""
    alive = is_alive(vm)
    check_guest_can_fire(vm, body)
    check_collision(db, vm.id, body)
    reg = insert_pending(db, vm.id, body)
    if not alive:
        return _reply(reg, 202)  # applied when the worker returns
    reg = wait_for(db, reg.id, (RegState.ACTIVE.value, RegState.FAILED.value))
    if reg.state == RegState.FAILED.value:
        status = 409 if reg.errno == "EEXIST" else 422
        detail = f"the kernel refused it: {reg.error or reg.errno or 'unknown error'}"
        raise ApiError(status, detail, reg.errno, extra={"id": reg.id})
    return _reply(reg, 201 if reg.state == RegState.ACTIVE.value else 202)


@router.delete(
    "/{reg_id}",
    status_code=204,
    responses={
        202: {"model": IoeventfdOut, "description": "worker away or slow: state removing"},
        404: {"model": ErrorOut},
        409: {"model": ErrorOut, "description": "an observed VM (EPERM)"},
    },
)
def delete_ioeventfd(_vm: OwnedVmDep, reg: RegDep, db: SessionDep) -> Response:
    """Deassign a registration; 204 once the worker has removed it from the kernel."""
    if reg.state != RegState.REMOVED.value:
        ask_removal(db, reg)
    if reg.state != RegState.REMOVED.value:
        if not is_alive(get_vm(db, reg.vm_id)):
            return _reply(reg, 202)
        reg = wait_for(db, reg.id, (RegState.REMOVED.value,))
        if reg.state != RegState.REMOVED.value:
            return _reply(reg, 202)
    return Response(status_code=204)
