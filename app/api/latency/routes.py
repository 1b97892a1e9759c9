"""How long a VM's in-kernel doorbells take to be heard: per doorbell, its consumer thread and
the p50/p99 of each stage (kick -> consumer running, kick -> interrupt, interrupt -> vCPU),
for an observed VM and for the owned one alike (the observer watches both)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep, VmDep
from app.api.latency.reads import vm_latency
from app.api.samples.window import Since, Until, window_for
from app.schemas import ErrorOut
from app.schemas_latency import LatencyOut

router = APIRouter(
    prefix="/vms/{vm_id}", tags=["latency"], dependencies=[Authorized], responses=AUTH_RESPONSES
)


@router.get("/latency", response_model=LatencyOut, responses={404: {"model": ErrorOut}})
def latency(vm: VmDep, db: SessionDep, since: Since = "-15m", until: Until = None) -> LatencyOut:
    """Each in-kernel doorbell's consumer, kicks/s and wakes/s, and each stage's p50/p99 over
    the window (whole minutes: the observer keeps one row per doorbell and minute), with the
    minutes themselves for a chart."""
    window = window_for(since, until)
    return vm_latency(db, vm.id, window.since, window.until)
