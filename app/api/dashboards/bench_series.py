"""The series of benchmark panels: a path's writes/s (or rtt) across the runs done in a window,
one point per run."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.dashboards.sample_series import Series, missing
from app.api.samples.window import Window
from app.schemas_dash import SeriesRef
from contract.benchpaths import BENCH_PATHS
from contract.models import BenchmarkResult, BenchmarkRun, BenchState
from contract.timeparse import epoch_ms


def read_bench(db: Session, window: Window, refs: Iterable[SeriesRef], rtt: bool) -> list[Series]:
    """Benchmark writes/s (or rtt us) of paths across the runs done in the window."""
    refs = list(refs)
    value = BenchmarkResult.rtt_us if rtt else BenchmarkResult.iops
    rows = db.execute(
        select(BenchmarkRun.finished_at, BenchmarkRun.host, BenchmarkResult.path, value)
        .join(BenchmarkRun, BenchmarkRun.id == BenchmarkResult.run_id)
        .where(
            BenchmarkRun.state == BenchState.DONE.value,
            BenchmarkResult.path.in_({ref.path for ref in refs}),
            BenchmarkRun.finished_at > window.since,
            BenchmarkRun.finished_at <= window.until,
        )
        .order_by(BenchmarkRun.finished_at, BenchmarkRun.id)
    ).all()
    out = []
    for ref in refs:
        name = f"{ref.path} on {ref.host}" if ref.host else f"{ref.path} (every host)"
        if ref.path not in BENCH_PATHS:
            why = f"path {ref.path!r} does not exist: paths are {', '.join(BENCH_PATHS)}"
            out.append(missing(ref, name, why))
            continue
        points = [r for r in rows if r.path == ref.path and ref.host in (None, r.host)]
        if not points and ref.host and not _host_known(db, ref.host):
            out.append(missing(ref, name, f"no benchmark ran on host {ref.host!r}"))
            continue
        t = [epoch_ms(r.finished_at) for r in points]
        out.append({"ref": ref.key(), "name": name, "t": t, "v": [float(r[3]) for r in points]})
    return out


def _host_known(db: Session, host: str) -> bool:
    return db.scalar(select(BenchmarkRun.id).where(BenchmarkRun.host == host).limit(1)) is not None
