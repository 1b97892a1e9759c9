"""Userspace exits per address of a VM (JSON or CSV), with the observer's figures where it
watched the VM."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep, VmDep
from app.api.downloads import CSV_DOC, Format, csv_response
from app.api.exits.rows import vm_exit_rows
from app.api.samples.window import Since, Until, window_for
from app.schemas import ExitRow

router = APIRouter(
    prefix="/vms/{vm_id}", tags=["rates"], dependencies=[Authorized], responses=AUTH_RESPONSES
)

OBSERVED_COLUMNS = ["writes", "userspace", "in_kernel", "writes_hz", "userspace_hz"]
OBSERVED_COLUMNS += ["in_kernel_hz", "in_kernel_share"]
EXIT_COLUMNS = ["space", "addr", "len", "exits", "rate_hz", "registered", *OBSERVED_COLUMNS]


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
