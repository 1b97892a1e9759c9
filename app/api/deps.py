"""Request dependencies shared by the routers: the DB session, token checks, and the VM or
registration a path names (404 when it names none)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.errors import ApiError
from app.api.lookups import ensure_vm, get_reg, get_vm, refuse_observed
from app.core.security import authenticate, mark_used
from app.schemas import ErrorOut
from contract.db import get_db, get_sessionmaker
from contract.models import ApiToken, Ioeventfd, Vm

SessionDep = Annotated[Session, Depends(get_db)]

_READ_METHODS = {"GET", "HEAD", "OPTIONS"}


def tokens_required(db: Session) -> bool:
    """Tokens are enforced as soon as one exists."""
    return db.scalar(select(ApiToken.id).limit(1)) is not None


def bearer_token(request: Request) -> str | None:
    """The token from `Authorization: Bearer ...`, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_role(db: Session, token: str | None, needed: str) -> None:
    """Raise 401 (no/unknown token) or 403 (viewer on a write) unless `token` may act."""
    if not tokens_required(db):
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if token is None:
        raise ApiError(
            401, "an API token is required: Authorization: Bearer <token>", headers=challenge
        )
    row = authenticate(db, token)
    if row is None:
        raise ApiError(401, "the API token is not valid (unknown or revoked)", headers=challenge)
    mark_used(db, row)
    if needed == "editor" and row.role != "editor":
        raise ApiError(403, "this needs an editor token; the token given is a viewer token")


def authorize(request: Request, db: SessionDep) -> None:
    """Reads need a viewer or editor token, writes an editor token (once any token exists)."""
    needed = "viewer" if request.method in _READ_METHODS else "editor"
    check_role(db, bearer_token(request), needed)


def authorize_stream(
    request: Request,
    token: Annotated[
        str | None, Query(description="token for EventSource, which cannot send headers")
    ] = None,
) -> None:
    """Like `authorize` for reads, also accepting `?token=` (EventSource cannot set headers)."""
    # Its own short session: the stream lives long and must not hold a connection.
    with get_sessionmaker()() as db:
        check_role(db, bearer_token(request) or token, "viewer")


def authorize_read(request: Request, db: SessionDep) -> None:
    """A viewer or editor token, whatever the method: for a POST that only reads."""
    check_role(db, bearer_token(request), "viewer")


def author_name(request: Request, db: SessionDep) -> str | None:
    """The name of the caller's token (None while no token exists): who wrote a note."""
    token = bearer_token(request)
    if token is None or not tokens_required(db):
        return None
    row = authenticate(db, token)
    return row.name if row else None


Authorized = Depends(authorize)
ReadAuthorized = Depends(authorize_read)
AuthorDep = Annotated[str | None, Depends(author_name)]

# Ids are 32-bit in the schema; bounding them here turns a huge id into a 422, not a DB error.
INT32_MAX = 2**31 - 1
VmId = Annotated[int, Path(ge=1, le=INT32_MAX, description="VM id")]
RegId = Annotated[int, Path(ge=1, le=INT32_MAX, description="registration id")]


def vm_of_path(vm_id: VmId, db: SessionDep) -> Vm:
    """The VM the path names, or 404."""
    return get_vm(db, vm_id)


def owned_vm_of_path(vm_id: VmId, db: SessionDep) -> Vm:
    """The VM the path names (404 if none), refused with 409 if it is observed: a route that
    changes a VM takes only iosignal's own."""
    vm = get_vm(db, vm_id)
    refuse_observed(vm, "registers ioeventfds, changes workloads or runs benchmarks")
    return vm


def known_vm_id(vm_id: VmId, db: SessionDep) -> int:
    """The path's VM id once that VM is known to exist (404 otherwise), without loading it."""
    ensure_vm(db, vm_id)
    return vm_id


def reg_of_path(vm_id: VmId, reg_id: RegId, db: SessionDep) -> Ioeventfd:
    """The registration the path names, of the VM it names, or 404."""
    return get_reg(db, vm_id, reg_id)


VmDep = Annotated[Vm, Depends(vm_of_path)]
OwnedVmDep = Annotated[Vm, Depends(owned_vm_of_path)]
KnownVmId = Annotated[int, Depends(known_vm_id)]
RegDep = Annotated[Ioeventfd, Depends(reg_of_path)]

Responses = dict[int | str, dict[str, Any]]  # the `responses=` of a route, for /docs
AUTH_RESPONSES: Responses = {
    401: {"model": ErrorOut, "description": "tokens exist and none, or an unknown one, was given"},
    403: {"model": ErrorOut, "description": "a viewer token on a write: an editor token is needed"},
}
OBSERVED_RESPONSES: Responses = {
    409: {"model": ErrorOut, "description": "the VM is observed (another VMM's): errno EPERM"},
}
