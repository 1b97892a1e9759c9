"""Panel data: every panel of a dashboard (or an ad-hoc set) over one window, in one answer.

Each metric is read once for all the refs of all panels (the *_series modules beside); a panel with
no refs shows every series there is; sum/max panels fold their series into one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.dashboards.bench_series import read_bench
from app.api.dashboards.observed_series import busiest, read_share, read_writes
from app.api.dashboards.sample_series import Series, read_exits, read_signals
from app.api.samples.exits import exits_in_window
from app.api.samples.window import Window, window_for
from app.schemas_dash import MAX_SERIES, PanelIn, SeriesRef
from contract.models import BenchmarkResult, BenchmarkRun, BenchState, Ioeventfd, RegState, Vm
from contract.timeparse import epoch_ms

UNITS = {
    "signals": "signals/s",
    "exits": "exits/s",
    "writes": "writes/s",
    "in_kernel_share": "share of writes",
    "bench_iops": "writes/s",
    "bench_rtt": "us",
}
BUSIEST = 24  # addresses an exits panel without refs shows
# Points per series: a chart is at most ~1,000 px wide, and 8 panels of 24 series at one
# point per 1 s tick over 30 min would be 345,600 points to send and draw.
PANEL_POINTS = 600
Reader = Callable[[Session, Window, Iterable[SeriesRef]], list[Series]]
READERS: dict[str, Reader] = {
    "signals": read_signals,
    "exits": read_exits,
    "writes": read_writes,
    "in_kernel_share": read_share,
    "bench_iops": lambda db, window, refs: read_bench(db, window, refs, rtt=False),
    "bench_rtt": lambda db, window, refs: read_bench(db, window, refs, rtt=True),
}


def ref_key(ref: dict[str, Any]) -> tuple:
    """A ref as a dict key."""
    return tuple(sorted(ref.items()))


def every_series(db: Session, window: Window, metric: str) -> list[SeriesRef]:
    """The refs of a panel that names none: every registration not removed, the busiest
    addresses in the window (by exits, or by observed writes), every (path, host) benchmarked
    in it."""
    if metric == "signals":
        ids = db.scalars(
            select(Ioeventfd.id)
            .where(Ioeventfd.state != RegState.REMOVED.value)
            .order_by(Ioeventfd.vm_id, Ioeventfd.id)
            .limit(MAX_SERIES)
        )
        return [SeriesRef(ioeventfd_id=i) for i in ids]
    if metric == "exits":
        counts = [
            (count, SeriesRef(vm_id=vm_id, space=space, addr=addr, len=len_))
            for vm_id in db.scalars(select(Vm.id).order_by(Vm.id))
            for (space, addr, len_), count in exits_in_window(db, vm_id, window).items()
        ]
        counts.sort(key=lambda pair: -pair[0])
        return [ref for _count, ref in counts[:BUSIEST]]
    if metric in ("writes", "in_kernel_share"):
        return busiest(db, window)
    if metric in ("bench_iops", "bench_rtt"):
        pairs = db.execute(
            select(BenchmarkResult.path, BenchmarkRun.host)
            .join(BenchmarkRun, BenchmarkRun.id == BenchmarkResult.run_id)
            .where(
                BenchmarkRun.state == BenchState.DONE.value,
                BenchmarkRun.finished_at > window.since,
                BenchmarkRun.finished_at <= window.until,
            )
            .distinct()
        )
        return [SeriesRef(path=p, host=h) for p, h in sorted(pairs)][:MAX_SERIES]
    return []


def aggregate(how: str, parts: list[Series]) -> Series:
    """One series folding `parts` by sum or max at each time; names what could not be read."""
    folded: dict[int, float] = {}
    for part in parts:
        for t, v in zip(part["t"], part["v"], strict=True):
            if v is None:
                continue
            old = folded.get(t)
            folded[t] = v if old is None else (old + v if how == "sum" else max(old, v))
    times = sorted(folded)
    out: Series = {"ref": {"aggregate": how}, "name": how, "t": times}
    out["v"] = [folded[t] for t in times]
    gone = list(dict.fromkeys(p["missing"] for p in parts if "missing" in p))
    if gone and len(gone) == len(parts):
        out["missing"] = "; ".join(gone)
    elif gone:
        out["name"] = f"{how} (without: {'; '.join(gone)})"
    return out


def panel_window(since: str, until: str | None) -> Window:
    """The window of panel data: tier and step for at most PANEL_POINTS points per series."""
    return window_for(since, until, max_points=PANEL_POINTS)


def panels_data(db: Session, window: Window, panels: list[PanelIn]) -> dict[str, Any]:
    """The body of `/data`: since/until (ms), step, tier and each panel's series."""
    refs = [list(p.series) or every_series(db, window, p.metric) for p in panels]
    wanted: dict[str, dict[tuple, SeriesRef]] = {}
    for panel, panel_refs in zip(panels, refs, strict=True):
        for ref in panel_refs:
            wanted.setdefault(panel.metric, {})[ref_key(ref.key())] = ref
    read: dict[tuple[str, tuple], Series] = {}
    for metric, unique in wanted.items():
        for one in READERS[metric](db, window, unique.values()):
            read[(metric, ref_key(one["ref"]))] = one
    out = []
    for panel, panel_refs in zip(panels, refs, strict=True):
        parts = [read[(panel.metric, ref_key(ref.key()))] for ref in panel_refs]
        if panel.aggregate != "none":
            parts = [aggregate(panel.aggregate, parts)]
        out.append(
            {"title": panel.title, "metric": panel.metric, "unit": UNITS[panel.metric]}
            | {"series": parts}
        )
    return {
        "since": epoch_ms(window.since),
        "until": epoch_ms(window.until),
        "step_s": window.step_s,
        "tier": window.tier,
        "panels": out,
    }
