"""The host view: a page of the fleet's VMs (owned and observed), sorted by host or by writes/s,
userspace exits/s or in-kernel share, searched by host, command, pid or doorbell address, each
with its busiest doorbells over a short recent window (app/api/hosts/listing.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep
from app.api.hosts import listing
from app.api.samples.window import window_for
from app.schemas_hosts import HostPage
from contract.models import VmKind, utcnow

router = APIRouter(tags=["vms"], dependencies=[Authorized], responses=AUTH_RESPONSES)
ENDED_SHOWN = timedelta(hours=1)  # an observed VM that ended longer ago leaves the view
MAX_PER_PAGE = 200


@router.get("/hosts", response_model=HostPage)
def list_hosts(
    db: SessionDep,
    since: Annotated[str, Query(description='the window: "-10s", "-1m", ISO 8601')] = "-10s",
    until: Annotated[str | None, Query(description="ISO 8601 or relative; default now")] = None,
    host: Annotated[str | None, Query(description="only this host's VMs")] = None,
    kind: Annotated[VmKind | None, Query(description="owned or observed; default both")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="host, command or name containing it, "
            "the pid, or a doorbell's address (0x6000)",
        ),
    ] = None,
    sort: Annotated[
        Literal["host", "writes", "userspace", "share"],
        Query(description="host (owned first), writes/s, userspace exits/s, in-kernel share"),
    ] = "host",
    order: Annotated[
        Literal["asc", "desc"] | None, Query(description="default: asc by host, else desc")
    ] = None,
    page: Annotated[int, Query(ge=1, description="the page, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="VMs a page")] = 50,
) -> Response:
    """A page of VMs (observed VMs that ended more than an hour ago left out), each with
    writes/s, userspace exits/s, in-kernel share and its busiest doorbells over the window, and
    every host's totals. The dashboard's Host view refreshes it every two seconds."""
    body = listing.page(
        db,
        window_for(since, until),
        shown_after=utcnow() - ENDED_SHOWN,
        host=host,
        kind=kind.value if kind else None,
        q=q.strip() if q else None,
        sort=sort,
        order=order or ("asc" if sort == "host" else "desc"),
        number=page,
        per_page=per_page,
    )
    # Serialized once: the body is built from validated models, which FastAPI's response_model
    # would validate again (50 VMs and their 250 doorbell rows) before serializing them.
    return Response(body.model_dump_json(), media_type="application/json")
