"""Downloads: rows as a CSV attachment, a body as a JSON attachment, and the `?format=` of a
route that answers JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import Response

from app.schemas import ErrorOut

Format = Annotated[Literal["json", "csv"], Query(description="csv for a spreadsheet")]
CSV_DOC: dict[int | str, dict[str, Any]] = {  # the `responses=` of a route with `Format`
    200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with ?format=csv"},
    404: {"model": ErrorOut},
}


def attachment(name: str) -> dict[str, str]:
    """The header that makes a browser save the answer as `name`."""
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def csv_response(rows: list[dict], columns: list[str], name: str) -> Response:
    """Rows as a CSV attachment `name`.csv; datetimes as ISO 8601."""
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
        )
    return Response(out.getvalue(), media_type="text/csv", headers=attachment(f"{name}.csv"))


def json_download(body: Any, name: str) -> Response:
    """`body` (JSON-ready) as an attachment `name`.json."""
    return Response(
        json.dumps(body), media_type="application/json", headers=attachment(f"{name}.json")
    )
