"""Time series reads: the raw tier for short ranges, per-minute rollups (plus the raw tail not yet
rolled up) for long ones, bucketed to at most ~2,000 points."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.api import queries, sampleread
from app.api.errors import ApiError
from app.api.queries import ExitKey, rolled_up_until
from contract import samples
from contract.config import get_settings
from contract.models import Feed, utcnow
from contract.timeparse import parse_range

MAX_POINTS = 2000
RAW_MAX_TICKS = 2000  # the raw tier is keyed time-first: read it for short ranges only
MINUTE = 60.0


@dataclass(frozen=True)
class Window:
    """A time range, the step its points are bucketed to, and which tier answers it."""

    since: datetime
    until: datetime
    step_s: float
    tier: str  # "raw" | "minute"

    @property
    def span_s(self) -> float:
        """Length of the range in seconds."""
        return (self.until - self.since).total_seconds()


def plan(
    since: datetime,
    until: datetime,
    step_s: float | None,
    tick_s: float,
    max_points: int = MAX_POINTS,
) -> Window:
    """Pick tier and step: raw while the range is at most ~2,000 ticks and the step under a
    minute, else minutes; never more than `max_points` points."""
    span = (until - since).total_seconds()
    step = max(step_s or 0.0, tick_s, span / max_points)
    if span <= RAW_MAX_TICKS * tick_s and step < MINUTE:
        return Window(since, until, step, "raw")
    return Window(since, until, math.ceil(step / MINUTE) * MINUTE, "minute")


def window_for(
    since: str, until: str | None, step: float | None = None, max_points: int = MAX_POINTS
) -> Window:
    """Parse the range (422 naming the rule if bad) and plan tier and step."""
    try:
        start, end = parse_range(since, until, utcnow())
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, str(exc), "EINVAL") from None
    return plan(start, end, step, get_settings().sample_interval_s, max_points)


def boundary(db: Session, vm_id: int, window: Window) -> datetime | None:
    """Where the read switches from rollups to raw samples for this VM: None on the raw tier
    (short ranges read raw samples alone), the VM's rollup mark on the minute tier."""
    return rolled_up_until(db, vm_id) if window.tier == "minute" else None


def signal_rows(
    db: Session, vm_id: int, reg_id: int, window: Window
) -> list[tuple[datetime, int, float]]:
    """(time, signals, interval_s) of one registration covering `window`: a row per tick (or
    rolled-up minute) of its VM, 0 where it was idle."""
    idx = samples.index_of(db.connection(), vm_id, Feed.SIGNALS, reg_id)
    rows = []
    for tick in sampleread.ticks(
        db, vm_id, Feed.SIGNALS, boundary(db, vm_id, window), window.since, window.until
    ):
        got = None if idx is None else tick.counts.get(idx)
        rows.append((tick.at, got[0] if got else 0, tick.interval_s))
    return rows


def bucket(rows: list[tuple[datetime, int, float]], step_s: float) -> list[dict]:
    """Sum rows into `step_s` buckets aligned to the epoch; rate = signals / measured time."""
    sums: dict[float, list[float]] = defaultdict(lambda: [0, 0.0])
    for taken_at, count, interval in rows:
        key = math.floor(taken_at.timestamp() / step_s) * step_s
        sums[key][0] += count
        sums[key][1] += interval or 0.0
    return [
        {
            "t": datetime.fromtimestamp(key, UTC),
            "signals": int(total),
            "rate_hz": total / seconds if seconds > 0 else 0.0,
        }
        for key, (total, seconds) in sorted(sums.items())
    ]


def exit_totals(db: Session, vm_id: int, window: Window) -> dict[ExitKey, int]:
    """Exits per (space, addr, len) of a VM in `window`."""
    return queries.exit_totals(db, vm_id, boundary(db, vm_id, window), window.since, window.until)


def sampled_seconds(db: Session, vm_id: int, window: Window) -> float:
    """Seconds of `window` the worker was sampling: its first tick's interval to its last tick.

    A worker started 10 s ago has 10 s of exits in a one-minute window; dividing by 60 would
    understate the rate sixfold. Long (rollup) windows use their whole span.
    """
    if window.tier != "raw":
        return window.span_s
    span = sampleread.tick_span(db, vm_id, window.since, window.until)
    if span is None:
        return window.span_s
    first, last, interval = span  # a sample at `first` covers the tick before it
    return min(window.span_s, max((last - first).total_seconds() + interval, 1e-3))
