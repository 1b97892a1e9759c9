"""Benchmarks: queued here, run by a worker on a scratch VM, results in `bench --json` shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.deps import AUTH_RESPONSES, INT32_MAX, Authorized, SessionDep
from app.api.errors import ApiError, not_found
from app.schemas import BenchmarkCreated, BenchmarkIn, BenchmarkOut, ErrorOut, Text
from contract.benchpaths import BENCH_PATHS
from contract.models import BenchmarkRun, Vm
from contract.notify import notify_desired

router = APIRouter(
    prefix="/benchmarks", tags=["benchmarks"], dependencies=[Authorized], responses=AUTH_RESPONSES
)


def known_paths() -> list[str]:
    """The benchmark paths the worker knows (`iosignal bench --path`)."""
    return list(BENCH_PATHS)


@router.post(
    "",
    status_code=202,
    response_model=BenchmarkCreated,
    responses={422: {"model": ErrorOut}},
)
def queue_benchmark(body: BenchmarkIn, db: SessionDep) -> JSONResponse:
    """Queue a benchmark; poll `GET /api/benchmarks/{id}` for progress and results."""
    if body.vm_id is not None and db.get(Vm, body.vm_id) is None:
        raise ApiError(422, f"vm_id {body.vm_id} does not exist", "EINVAL")
    known = known_paths()
    for path in body.paths or []:
        if path not in known:
            raise ApiError(422, f"path {path!r} must be one of {', '.join(known)}", "EINVAL")
    run = BenchmarkRun(
        vm_id=body.vm_id, writes=body.writes, repeat=body.repeat, paths=body.paths or []
    )
    db.add(run)
    db.commit()
    if body.vm_id is not None:
        notify_desired(db, body.vm_id)
    return JSONResponse(
        {"id": run.id}, status_code=202, headers={"Location": f"/api/benchmarks/{run.id}"}
    )


@router.get("", response_model=list[BenchmarkOut])
def list_benchmarks(
    db: SessionDep,
    host: Text | None = None,
    kernel: Text | None = None,
    state: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[BenchmarkRun]:
    """Benchmark history, newest first, optionally for one host/kernel/state."""
    query = select(BenchmarkRun).order_by(BenchmarkRun.id.desc()).limit(limit)
    for column, value in (
        (BenchmarkRun.host, host),
        (BenchmarkRun.kernel, kernel),
        (BenchmarkRun.state, state),
    ):
        if value is not None:
            query = query.where(column == value)
    return list(db.scalars(query))


@router.get("/{run_id}", response_model=BenchmarkOut, responses={404: {"model": ErrorOut}})
def read_benchmark(
    run_id: Annotated[int, Path(ge=1, le=INT32_MAX)], db: SessionDep
) -> BenchmarkRun:
    """One benchmark: state, progress 0..1, and results once done."""
    run = db.get(BenchmarkRun, run_id)
    if run is None:
        raise not_found("benchmark", run_id)
    return run
