"""Signal rates of a registration over time, and userspace exits per address (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.api.deps import AUTH_RESPONSES, Authorized, RegDep, Responses, SessionDep, VmDep
from app.api.exitrows import vm_exit_rows
from app.api.exports import csv_response
from app.api.series import bucket, signal_rows, window_for
from app.schemas import ErrorOut, ExitRow, RatesOut

router = APIRouter(
    prefix="/vms/{vm_id}", tags=["rates"], dependencies=[Authorized], responses=AUTH_RESPONSES
)

Since = Annotated[str, Query(description='ISO 8601 or relative: "-30s", "-15m", "-2h", "-7d"')]
Until = Annotated[str | None, Query(description="ISO 8601 or relative; default now")]
OBSERVED_COLUMNS = ["writes", "userspace", "in_kernel", "writes_hz", "userspace_hz"]
OBSERVED_COLUMNS += ["in_kernel_hz", "in_kernel_share"]
Format = Annotated[Literal["json", "csv"], Query(description="csv for a spreadsheet")]
EXIT_COLUMNS = ["space", "addr", "len", "exits", "rate_hz", "registered", *OBSERVED_COLUMNS]
CSV_DOC: Responses = {
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
    404: {"model": ErrorOut},
}


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


@router.get("/exits", response_model=list[ExitRow], responses=CSV_DOC)
def exits(
    vm: VmDep,
    db: SessionDep,
    since: Since = "-1m",
    until: Until = None,
    format: Format = "json",
) -> list[ExitRow] | Response:
    """Userspace exits per address in the window, busiest first; the rate is over the part of
    the window the worker was sampling (from its first tick in the window). Where `iosignal
    observe` watched the VM (always, for an observed VM), each row also has the guest's writes,
    userspace exits and in-kernel writes per second and the in-kernel share."""
    rows = vm_exit_rows(db, vm, window_for(since, until))
    if format == "csv":
        # The observer's columns where it watched the VM: an unwatched VM keeps today's columns.
        columns = EXIT_COLUMNS if any(r.writes is not None for r in rows) else EXIT_COLUMNS[:6]
        return csv_response([r.model_dump() for r in rows], columns, f"exits-vm{vm.id}")
    return rows
