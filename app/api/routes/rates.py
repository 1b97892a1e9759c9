"""Signal rates of a registration over time, and userspace exits per address (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select

from app.api.deps import AUTH_RESPONSES, Authorized, KnownVmId, RegDep, Responses, SessionDep
from app.api.exports import csv_response
from app.api.series import bucket, exit_totals, sampled_seconds, signal_rows, window_for
from app.schemas import ErrorOut, ExitRow, RatesOut
from contract.models import Ioeventfd, RegState

router = APIRouter(
    prefix="/vms/{vm_id}", tags=["rates"], dependencies=[Authorized], responses=AUTH_RESPONSES
)

Since = Annotated[str, Query(description='ISO 8601 or relative: "-30s", "-15m", "-2h", "-7d"')]
Until = Annotated[str | None, Query(description="ISO 8601 or relative; default now")]
Format = Annotated[Literal["json", "csv"], Query(description="csv for a spreadsheet")]
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


def covered(space: str, addr: int, len_: int, active: list[Ioeventfd]) -> bool:
    """An active registration on this space/addr with this width (or any width)."""
    return any(r.space == space and r.addr == addr and r.len in (0, len_) for r in active)


@router.get("/exits", response_model=list[ExitRow], responses=CSV_DOC)
def exits(
    vm_id: KnownVmId,
    db: SessionDep,
    since: Since = "-1m",
    until: Until = None,
    format: Format = "json",
) -> list[ExitRow] | Response:
    """Userspace exits per address in the window, busiest first; the rate is over the part of
    the window the worker was sampling (from its first tick in the window)."""
    window = window_for(since, until)
    active = list(
        db.scalars(
            select(Ioeventfd).where(
                Ioeventfd.vm_id == vm_id, Ioeventfd.state == RegState.ACTIVE.value
            )
        )
    )
    seconds = sampled_seconds(db, vm_id, window)
    rows = [
        ExitRow(
            space=space,
            addr=addr,
            len=len_,
            exits=count,
            rate_hz=count / seconds,
            registered=covered(space, addr, len_, active),
        )
        for (space, addr, len_), count in exit_totals(db, vm_id, window).items()
    ]
    rows.sort(key=lambda r: (-r.exits, r.space, r.addr, r.len))
    if format == "csv":
        columns = ["space", "addr", "len", "exits", "rate_hz", "registered"]
        return csv_response([r.model_dump() for r in rows], columns, f"exits-vm{vm_id}")
    return rows
