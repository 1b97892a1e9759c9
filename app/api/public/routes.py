"""The routes any caller may ask without a token: the liveness of the app, the database and each
VM's worker; who is calling; and the rules a registration or workload must respect."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SessionDep, bearer_token, tokens_required
from app.api.vms.liveness import heartbeat_age, is_alive
from app.core.security import role_of
from app.schemas import AuthOut
from contract import rules
from contract.benchpaths import BENCH_PATHS
from contract.models import Vm

router = APIRouter()


@router.get("/health", tags=["health"])
def health(db: SessionDep) -> JSONResponse:
    """`status: ok` with the database reachable; each VM with its worker's liveness."""
    try:
        db.execute(text("SELECT 1"))
        vms = db.scalars(select(Vm).order_by(Vm.id)).all()
    except SQLAlchemyError as exc:
        body = {"status": "error", "database": f"unreachable: {type(exc).__name__}", "vms": []}
        return JSONResponse(body, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "database": "ok",
            "vms": [
                {
                    "id": vm.id,
                    "name": vm.name,
                    "kind": vm.kind,
                    "alive": is_alive(vm),
                    "heartbeat_age_s": heartbeat_age(vm.heartbeat_at),
                }
                for vm in vms
            ],
        }
    )


@router.get("/auth", response_model=AuthOut, tags=["auth"])
def whoami(request: Request, db: SessionDep) -> AuthOut:
    """`tokens_required` false means anyone may edit (role editor); else the bearer's role
    (null for a missing or unknown token). Never 401, so a login form can call it."""
    if not tokens_required(db):
        return AuthOut(tokens_required=False, role="editor")
    token = bearer_token(request)
    role = role_of(db, token) if token else None
    return AuthOut(tokens_required=True, role=role)


@router.get("/rules", tags=["rules"])
def read_rules() -> dict[str, Any]:
    """Every rule's numbers (contract/rules.py) and the benchmark paths, in table order.

    Public like /health: these are the kernel's and the guest's rules, nothing of this
    deployment. The server checks every request again and has the last word.
    """
    return {**rules.as_dict(), "bench_paths": BENCH_PATHS}
