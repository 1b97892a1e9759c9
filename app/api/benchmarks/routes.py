"""Benchmarks: queued here, run by a worker on a scratch VM, results in `bench --json` shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.api.benchmarks.trends import trends, with_regressions
from app.api.deps import AUTH_RESPONSES, INT32_MAX, Authorized, SessionDep
from app.api.errors import ApiError, not_found
from app.api.lookups import refuse_observed
from app.schemas import BenchmarkCreated, BenchmarkIn, BenchmarkOut, ErrorOut, Text, Trend
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
    responses={422: {"model": ErrorOut}, 409: {"model": ErrorOut, "description": "observed VM"}},
)
def queue_benchmark(body: BenchmarkIn, db: SessionDep) -> JSONResponse:
    """Queue a benchmark; poll `GET /api/benchmarks/{id}` for progress and results."""
    vm = db.get(Vm, body.vm_id) if body.vm_id is not None else None
    if body.vm_id is not None and vm is None:
        raise ApiError(422, f"vm_id {body.vm_id} does not exist", "EINVAL")
    if vm is not None:
        refuse_observed(vm, "runs benchmarks")  # its worker runs them: an observed VM has none
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


Share = Annotated[
    float,
    Query(gt=0, lt=1, description="flag a result whose writes/s fell more than this share"),
]


@router.get("", response_model=list[BenchmarkOut])
def list_benchmarks(
    db: SessionDep,
    host: Text | None = None,
    kernel: Text | None = None,
    state: Text | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    regression_share: Share = 0.1,
) -> list[BenchmarkOut]:
    """Benchmark history, newest first, optionally for one host/kernel/state; each result
    says whether it is a regression against the previous done run on the same host."""
    query = select(BenchmarkRun).order_by(BenchmarkRun.id.desc()).limit(limit)
    for column, value in (
        (BenchmarkRun.host, host),
        (BenchmarkRun.kernel, kernel),
        (BenchmarkRun.state, state),
    ):
        if value is not None:
            query = query.where(column == value)
    return with_regressions(db, list(db.scalars(query)), regression_share)


@router.get("/trends", response_model=list[Trend])
def benchmark_trends(
    db: SessionDep,
    path: Annotated[Text | None, Query(max_length=32)] = None,
    host: Annotated[Text | None, Query(max_length=255)] = None,
    regression_share: Share = 0.1,
) -> list[Trend]:
    """Each path's writes/s and rtt across done runs, oldest first, one trend per host,
    kernel and KVM module; regressions flagged as in the list."""
    return trends(db, path, host, regression_share)


@router.get("/{run_id}", response_model=BenchmarkOut, responses={404: {"model": ErrorOut}})
def read_benchmark(
    run_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    db: SessionDep,
    regression_share: Share = 0.1,
) -> BenchmarkOut:
    """One benchmark: state, progress 0..1, and results once done."""
    run = db.get(BenchmarkRun, run_id)
    if run is None:
        raise not_found("benchmark", run_id)
    return with_regressions(db, [run], regression_share)[0]
