"""The demo workload: a clearly labelled set of doorbells, one registered, started and removed
with one click each; never started on its own."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.api.demo.lifecycle import current, demo_out, start, stop
from app.api.deps import AUTH_RESPONSES, Authorized, SessionDep
from app.schemas import ErrorOut
from app.schemas_events import DemoIn, DemoOut

router = APIRouter(
    prefix="/demo", tags=["demo"], dependencies=[Authorized], responses=AUTH_RESPONSES
)


@router.get("", response_model=DemoOut)
def read_demo(db: SessionDep) -> DemoOut:
    """Whether the demo runs, and on which VM."""
    return demo_out(current(db))


@router.post(
    "",
    status_code=201,
    response_model=DemoOut,
    responses={
        409: {
            "model": ErrorOut,
            "description": "a demo runs already (EBUSY), a collision, or an observed VM (EPERM)",
        },
        422: {"model": ErrorOut, "description": "unknown VM, or its guest cannot ring them"},
    },
)
def start_demo(body: DemoIn, db: SessionDep) -> JSONResponse:
    """Start the demo on a VM: a workload version marked demo (pio 0x6000 len 2 at 1 kHz,
    pio 0x6004 len 4 at 2 kHz, mmio 0xd0000000 len 4 at 5 kHz) and one registration, pio
    0x6000 len 2 labelled "demo: registered doorbell" (pending until the worker applies it)."""
    return JSONResponse(jsonable_encoder(demo_out(start(db, body.vm_id))), 201)


@router.delete("", status_code=204)
def stop_demo(db: SessionDep) -> Response:
    """Remove the demo: deregister its doorbell and give the guest its previous workload back
    (unless it was changed since). Nothing to do without a demo."""
    demo = current(db)
    if demo is not None:
        stop(db, demo)
    return Response(status_code=204)
