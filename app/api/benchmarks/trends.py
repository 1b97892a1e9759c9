"""Benchmark history across runs: regressions (a path's writes/s fell more than a share below
the previous done run of the same path on the same host), and trends per host, kernel and KVM."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.schemas import BenchmarkOut, Regression, Trend, TrendPoint
from contract.benchpaths import BENCH_PATHS
from contract.models import BenchmarkResult, BenchmarkRun, BenchState
from contract.timeparse import epoch_ms

RunPath = tuple[int, str]  # (run id, path)


def done_results(
    db: Session, hosts: Iterable[str] | None = None, path: str | None = None
) -> Sequence[Any]:
    """Every result of a done run (optionally of these hosts, this path), oldest run first."""
    query = (
        select(
            BenchmarkRun.id.label("run_id"),
            BenchmarkRun.finished_at,
            BenchmarkRun.host,
            BenchmarkRun.kernel,
            BenchmarkRun.kvm_module,
            BenchmarkRun.kvm_nested,
            BenchmarkRun.cpu_model,
            BenchmarkResult.path,
            BenchmarkResult.iops,
            BenchmarkResult.rtt_us,
        )
        .join(BenchmarkRun, BenchmarkRun.id == BenchmarkResult.run_id)
        .where(BenchmarkRun.state == BenchState.DONE.value)
        .order_by(BenchmarkRun.finished_at, BenchmarkRun.id)
    )
    if hosts is not None:
        query = query.where(BenchmarkRun.host.in_(set(hosts)))
    if path is not None:
        query = query.where(BenchmarkResult.path == path)
    return db.execute(query).all()


def regressions(rows: Iterable[Any], share: float) -> dict[RunPath, Regression]:
    """The (run, path) results whose writes/s fell more than `share` below the previous done
    run of that path on that host; `rows` as `done_results` gives them."""
    previous: dict[tuple[str, str], Any] = {}
    found: dict[RunPath, Regression] = {}
    for row in rows:
        before = previous.get((row.host, row.path))
        previous[(row.host, row.path)] = row
        if before is None or before.iops <= 0:
            continue
        drop = (before.iops - row.iops) / before.iops
        if drop > share:
            found[(row.run_id, row.path)] = Regression(
                previous_run_id=before.run_id, previous_iops=before.iops, drop_share=drop
            )
    return found


def with_regressions(db: Session, runs: list[BenchmarkRun], share: float) -> list[BenchmarkOut]:
    """Runs as the API answers them, each result flagged when it is a regression."""
    flagged = regressions(done_results(db, {r.host for r in runs}), share)
    out = []
    for run in runs:
        body = BenchmarkOut.model_validate(run)
        for result in body.results:
            result.regression = flagged.get((run.id, result.path))
        out.append(body)
    return out


def trends(db: Session, path: str | None, host: str | None, share: float) -> list[Trend]:
    """Each path's done runs over time, one trend per (path, host, kernel, KVM module)."""
    rows = done_results(db, None if host is None else [host], path)
    flagged = regressions(rows, share)
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for row in rows:
        groups.setdefault((row.path, row.host, row.kernel, row.kvm_module), []).append(row)
    order = {name: i for i, name in enumerate(BENCH_PATHS)}
    keys = sorted(groups, key=lambda k: (order.get(k[0], len(order)), k[0], *k[1:]))
    return [
        Trend(
            path=key[0],
            host=key[1],
            kernel=key[2],
            kvm_module=key[3],
            kvm_nested=groups[key][-1].kvm_nested,
            cpu_model=groups[key][-1].cpu_model,
            points=[
                TrendPoint(
                    run_id=r.run_id,
                    t=epoch_ms(r.finished_at),
                    iops=r.iops,
                    rtt_us=r.rtt_us,
                    regression=flagged.get((r.run_id, r.path)),
                )
                for r in groups[key]
            ],
        )
        for key in keys
    ]
