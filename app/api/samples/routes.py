"""Signal rates of a registration over time (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.api.deps import AUTH_RESPONSES, Authorized, RegDep, SessionDep
from app.api.downloads import CSV_DOC, Format, csv_response
from app.api.samples.signals import bucket, signal_rows
from app.api.samples.window import Since, Until, window_for
from app.schemas import RatesOut

router = APIRouter(
    prefix="/vms/{vm_id}", tags=["rates"], dependencies=[Authorized], responses=AUTH_RESPONSES
)


@router.get("/ioeventfds/{reg_id}/rates", response_model=RatesOut, responses=CSV_DOC)
def rates(
    reg: RegDep,
    db: SessionDep,
    since: Since = "-15m",
    until: Until = None,
    step: Annotated[float | None, Query(gt=0, le=86400 * 30, description="seconds")] = None,
    format: Format = "json",
) -> RatesOut | Response:
    """Signals per step and their rate; the raw tier for short ranges, rollups for long ones."""
    window = window_for(since, until, step)
    points = bucket(signal_rows(db, reg.vm_id, reg.id, window), window.step_s)
    if format == "csv":
        return csv_response(points, ["t", "signals", "rate_hz"], f"rates-{reg.id}")
    return RatesOut(id=reg.id, step_s=window.step_s, tier=window.tier, points=points)
