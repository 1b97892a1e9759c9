"""Liveness of the app, the database and each VM's worker."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SessionDep
from app.api.queries import heartbeat_age, is_alive
from contract.models import Vm

router = APIRouter(tags=["health"])


@router.get("/health")
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
