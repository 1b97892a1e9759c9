"""A VM's doorbell latency rows (observer/latencystore.py writes them) summed over a window:
bucket counts add, so a window's percentiles come from the sum of its minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.schemas_latency import (
    ConsumerOut,
    DoorbellLatencyOut,
    LatencyMinuteOut,
    LatencyOut,
    StageOut,
)
from contract.latency import STAGES, add, percentile
from contract.models import DoorbellLatency

COUNTS = ("kicks", "wakes", "answered", "coalesced", "stale")


def stage_out(hist: dict[int, int]) -> StageOut:
    """A histogram's count and p50/p99 in microseconds."""
    p50, p99 = percentile(hist, 50), percentile(hist, 99)
    return StageOut(
        count=sum(hist.values()),
        p50_us=None if p50 is None else round(p50 / 1e3, 3),
        p99_us=None if p99 is None else round(p99 / 1e3, 3),
    )


def _hists(row: DoorbellLatency) -> dict[str, dict[int, int]]:
    return {s: {int(k): n for k, n in h.items()} for s, h in row.hists.items()}


def _doorbell(rows: list[DoorbellLatency], seconds: float) -> DoorbellLatencyOut:
    last = rows[-1]  # the newest minute names the consumer (a VMM may move the eventfd)
    totals = {c: sum(getattr(r, c) for r in rows) for c in COUNTS}
    summed: dict[str, dict[int, int]] = {}
    minutes = []
    for r in rows:
        hists = _hists(r)
        for stage, h in hists.items():
            summed[stage] = add(summed.get(stage, {}), h)
        stages = {s: stage_out(h) for s, h in hists.items()}
        minute = LatencyMinuteOut(
            minute_at=r.minute_at, kicks=r.kicks, wakes=r.wakes, stages=stages
        )
        minutes.append(minute)
    return DoorbellLatencyOut(
        space=last.space,
        addr=last.addr,
        len=last.len,
        consumer=ConsumerOut(
            tid=last.consumer_tid, comm=last.consumer_comm, process=last.consumer_process
        ),
        **totals,
        suppressed=max(0, totals["kicks"] - totals["wakes"]),
        vector=next((r.vector for r in reversed(rows) if r.vector is not None), None),
        kicks_hz=round(totals["kicks"] / seconds, 3),
        wakes_hz=round(totals["wakes"] / seconds, 3),
        stages={s: stage_out(summed.get(s, {})) for s in STAGES},
        minutes=minutes,
    )


def _seconds(rows: list[DoorbellLatency], start: datetime, until: datetime) -> float:
    """The part of the window the doorbell's minutes cover: rates over the time it was watched,
    not over a window that began before the observer saw it."""
    first = max(start, rows[0].minute_at)
    last = min(until, rows[-1].minute_at + timedelta(minutes=1))
    return max((last - first).total_seconds(), 1.0)


def vm_latency(db: Session, vm_id: int, since: datetime, until: datetime) -> LatencyOut:
    """Every doorbell with a minute in [since, until), busiest first."""
    start = since.replace(second=0, microsecond=0)  # the minute `since` falls in counts whole
    rows = db.scalars(
        select(DoorbellLatency)
        .where(DoorbellLatency.vm_id == vm_id)
        .where(DoorbellLatency.minute_at >= start, DoorbellLatency.minute_at < until)
        .order_by(DoorbellLatency.minute_at)
    ).all()
    by_doorbell: dict[tuple[str, int, int], list[DoorbellLatency]] = {}
    for r in rows:
        by_doorbell.setdefault((r.space, r.addr, r.len), []).append(r)
    doorbells = [_doorbell(rs, _seconds(rs, start, until)) for rs in by_doorbell.values()]
    doorbells.sort(key=lambda d: -d.kicks)
    return LatencyOut(vm_id=vm_id, since=start, until=until, doorbells=doorbells)
