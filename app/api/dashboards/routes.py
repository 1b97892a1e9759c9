"""Saved dashboards (viewers read, editors write) and their panels' data in one request; and
ad-hoc panels read without saving them (History's compare view and its CSV/JSON export)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.dashboards.panel_data import panel_window, panels_data
from app.api.dashboards.saved import dashboard_out, ensure_overview, get_dashboard, save
from app.api.deps import AUTH_RESPONSES, Authorized, ReadAuthorized, Responses, SessionDep
from app.api.downloads import csv_response, json_download
from app.schemas import ErrorOut
from app.schemas_dash import (
    DashboardIn,
    DashboardOut,
    DashboardSummary,
    PanelsDataIn,
    PanelsDataOut,
)
from contract.models import Dashboard
from contract.timeparse import EPOCH

router = APIRouter(
    prefix="/dashboards",
    tags=["dashboards"],
    dependencies=[Authorized],
    responses=AUTH_RESPONSES,
)
Slug = Annotated[str, Path(min_length=1, max_length=64, description="the dashboard's slug")]
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "no dashboard has this slug"}}
CLASH: Responses = {
    409: {"model": ErrorOut, "description": "the slug is taken: errno EEXIST"},
    422: {"model": ErrorOut},
}


def _created(row: Dashboard) -> JSONResponse:
    body = jsonable_encoder(dashboard_out(row))
    return JSONResponse(body, 201, headers={"Location": f"/api/dashboards/{row.slug}"})


@router.get("", response_model=list[DashboardSummary])
def list_dashboards(db: SessionDep) -> list[DashboardSummary]:
    """Every dashboard by name; a fresh database offers the default Overview."""
    ensure_overview(db)
    rows = db.scalars(select(Dashboard).order_by(Dashboard.name, Dashboard.id))
    return [
        DashboardSummary(
            id=r.id,
            slug=r.slug,
            name=r.name,
            updated_at=r.updated_at,
            panels=len(r.spec.get("panels", [])),
        )
        for r in rows
    ]


@router.post("", status_code=201, response_model=DashboardOut, responses=CLASH)
def create_dashboard(body: DashboardIn, db: SessionDep) -> JSONResponse:
    """Store a new dashboard (an exported one imports the same way); the slug defaults to one
    derived from the name."""
    return _created(save(db, Dashboard(), body))


@router.get("/{slug}", response_model=DashboardOut, responses=NOT_FOUND)
def read_dashboard(
    slug: Slug,
    db: SessionDep,
    download: Annotated[bool, Query(description="as the attachment {slug}.json")] = False,
) -> DashboardOut | Response:
    """One dashboard: also its export format."""
    out = dashboard_out(get_dashboard(db, slug))
    return json_download(jsonable_encoder(out), out.slug) if download else out


@router.put("/{slug}", response_model=DashboardOut, responses=NOT_FOUND | CLASH)
def replace_dashboard(slug: Slug, body: DashboardIn, db: SessionDep) -> DashboardOut:
    """Replace a dashboard; a `slug` in the body renames it (409 if another has it)."""
    return dashboard_out(save(db, get_dashboard(db, slug), body))


@router.delete("/{slug}", status_code=204, responses=NOT_FOUND)
def delete_dashboard(slug: Slug, db: SessionDep) -> Response:
    """Delete a dashboard."""
    db.delete(get_dashboard(db, slug))
    db.commit()
    return Response(status_code=204)


@router.get("/{slug}/data", response_model=PanelsDataOut, responses=NOT_FOUND)
def dashboard_data(
    slug: Slug,
    db: SessionDep,
    since: Annotated[str | None, Query(description="default: the dashboard's range")] = None,
    until: Annotated[str | None, Query(description='"now", ISO 8601 or relative')] = None,
) -> JSONResponse:
    """Every panel's series over the range; a series whose VM, registration or path does not
    exist says so in `missing`."""
    spec = dashboard_out(get_dashboard(db, slug))
    window = panel_window(since or spec.range.since, until or spec.range.until)
    # Plain JSON: hundreds of thousands of numbers need no second validation on the way out.
    return JSONResponse(panels_data(db, window, spec.panels))


# A POST that only reads: viewers may call it.
panels_router = APIRouter(
    prefix="/panels", tags=["dashboards"], dependencies=[ReadAuthorized], responses=AUTH_RESPONSES
)
DOWNLOADS: Responses = {
    200: {"content": {"text/csv": {}}, "description": "JSON; ?format=csv|json downloads it"},
    422: {"model": ErrorOut},
}
CSV_COLUMNS = ["panel", "metric", "unit", "series", "time", "t", "v"]


def csv_rows(body: dict) -> list[dict]:
    """One row per point of every series: time as ISO 8601 UTC and as t, ms since the epoch."""
    return [
        {"panel": p["title"], "metric": p["metric"], "unit": p["unit"], "series": s["name"]}
        | {"time": EPOCH + timedelta(milliseconds=t), "t": t, "v": v}
        for p in body["panels"]
        for s in p["series"]
        for t, v in zip(s["t"], s["v"], strict=True)
    ]


@panels_router.post("/data", response_model=PanelsDataOut, responses=DOWNLOADS)
def panels_adhoc(
    body: PanelsDataIn,
    db: SessionDep,
    format: Annotated[
        Literal["csv", "json"] | None, Query(description="download exactly this as a file")
    ] = None,
) -> Response:
    """The panels' series over the range, as a dashboard's `/data` answers them."""
    data = panels_data(db, panel_window(body.since, body.until), body.panels)
    if format == "csv":
        return csv_response(csv_rows(data), CSV_COLUMNS, "panels")
    if format == "json":
        return json_download(data, "panels")
    return JSONResponse(data)
