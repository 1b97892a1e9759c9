"""Liveness of the app, the database and each VM's worker."""

from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import SessionDep
from contract.config import get_settings
from contract.models import Vm, utcnow

router = APIRouter(tags=["health"])


def heartbeat_age(heartbeat_at: datetime | None) -> float | None:
    """Seconds since the worker's last heartbeat, or None if it never beat."""
    return None if heartbeat_at is None else (utcnow() - heartbeat_at).total_seconds()


def is_alive(vm: Vm) -> bool:
    """A worker is alive while its heartbeat is younger than the configured timeout."""
    age = heartbeat_age(vm.heartbeat_at)
    return age is not None and age < get_settings().heartbeat_timeout_s and vm.state == "running"


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
                    "alive": is_alive(vm),
                    "heartbeat_age_s": heartbeat_age(vm.heartbeat_at),
                }
                for vm in vms
            ],
        }
    )
