"""Annotations: what changed, for markers on every time chart; notes are added and deleted here,
the other kinds come from what the database records."""

from __future__ import annotations

import re
from typing import Annotated, get_args

from fastapi import APIRouter, Path, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.api.annotations.sources import find_annotations, note_out
from app.api.deps import AUTH_RESPONSES, INT32_MAX, AuthorDep, Authorized, Responses, SessionDep
from app.api.errors import ApiError, not_found
from app.api.samples.window import window_for
from app.schemas import ErrorOut
from app.schemas_events import AnnotationKind, AnnotationOut, NoteIn
from contract.models import Note, Vm, utcnow

router = APIRouter(
    prefix="/annotations",
    tags=["annotations"],
    dependencies=[Authorized],
    responses=AUTH_RESPONSES,
)
KINDS = list(get_args(AnnotationKind))
NOTE_ID = re.compile(r"^note:(\d{1,10})$")
NOTE_ERRORS: Responses = {
    404: {"model": ErrorOut, "description": "no such note"},
    422: {"model": ErrorOut, "description": "not a note: automatic annotations stay"},
}


@router.get("", response_model=list[AnnotationOut])
def list_annotations(
    db: SessionDep,
    since: Annotated[str, Query(description='ISO 8601 or relative ("-1h")')] = "-1h",
    until: Annotated[str | None, Query(description="default now")] = None,
    vm_id: Annotated[
        int | None, Query(ge=1, le=INT32_MAX, description="this VM's, and the global ones")
    ] = None,
    kind: Annotated[list[AnnotationKind] | None, Query(description="repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[AnnotationOut]:
    """Annotations in the range, oldest first (the newest `limit` of them)."""
    window = window_for(since, until)
    return find_annotations(db, (window.since, window.until), vm_id, list(kind or KINDS), limit)


@router.post(
    "",
    status_code=201,
    response_model=AnnotationOut,
    responses={422: {"model": ErrorOut}},
)
def add_note(body: NoteIn, db: SessionDep, author: AuthorDep) -> JSONResponse:
    """Add a note (kind `note`); its author is the token's name (null while no token exists)."""
    if body.vm_id is not None and db.get(Vm, body.vm_id) is None:
        raise ApiError(422, f"vm_id {body.vm_id} does not exist", "EINVAL")
    note = Note(
        vm_id=body.vm_id,
        time=body.time or utcnow(),
        time_end=body.time_end,
        text=body.text,
        author=author,
    )
    db.add(note)
    db.commit()
    body_out = jsonable_encoder(note_out(note))
    return JSONResponse(body_out, 201, headers={"Location": f"/api/annotations/note:{note.id}"})


@router.delete("/{annotation_id}", status_code=204, responses=NOTE_ERRORS)
def delete_note(
    annotation_id: Annotated[str, Path(max_length=64, description="note:{id}")],
    db: SessionDep,
) -> Response:
    """Delete a note; the other kinds record what happened and cannot be deleted."""
    match = NOTE_ID.match(annotation_id)
    if match is None:
        if annotation_id.split(":", 1)[0] in ("reg", "workload", "worker", "bench"):
            raise ApiError(
                422, "only notes can be deleted: the other annotations record what happened"
            )
        raise not_found("annotation", repr(annotation_id))
    note = db.get(Note, int(match.group(1))) if int(match.group(1)) <= INT32_MAX else None
    if note is None:
        raise not_found("annotation", repr(annotation_id))
    db.delete(note)
    db.commit()
    return Response(status_code=204)
