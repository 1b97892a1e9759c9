"""Ad-hoc panels read without saving them: History's compare view and its CSV/JSON export."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from app.api.deps import AUTH_RESPONSES, ReadAuthorized, Responses, SessionDep
from app.api.exports import csv_response, json_download
from app.api.paneldata import panel_window, panels_data
from app.schemas import ErrorOut
from app.schemas_dash import PanelsDataIn, PanelsDataOut
from contract.timeparse import EPOCH

# A POST that only reads: viewers may call it.
router = APIRouter(
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


@router.post("/data", response_model=PanelsDataOut, responses=DOWNLOADS)
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
