"""The worker's userspace exits per address: counted in a window, or since the VM started, and
the part of a window the worker was sampling (what a rate divides by)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.api.samples import store
from app.api.samples.window import Window, boundary
from contract.models import Feed

ExitKey = tuple[str, int, int]  # (space, addr, len)


def _exits(totals: dict[ExitKey, list[int]]) -> dict[ExitKey, int]:
    return {key: counts[0] for key, counts in totals.items() if counts[0]}


def exits_in_window(db: Session, vm_id: int, window: Window) -> dict[ExitKey, int]:
    """Exits per (space, addr, len) of a VM in `window`, every exit once."""
    bound = boundary(db, vm_id, window)
    return _exits(store.totals(db, vm_id, Feed.EXITS, bound, window.since, window.until))


def exits_since_start(
    db: Session, vm_id: int, rolled_up_until: datetime | None
) -> dict[ExitKey, int]:
    """Exits per (space, addr, len) of a VM since it started, every exit once: the rolled-up
    minutes before `rolled_up_until` (the VM's mark) from each series' lifetime totals."""
    return _exits(store.totals(db, vm_id, Feed.EXITS, rolled_up_until))


def sampled_seconds(db: Session, vm_id: int, window: Window) -> float:
    """Seconds of `window` the worker was sampling: its first tick's interval to its last tick.

    A worker started 10 s ago has 10 s of exits in a one-minute window; dividing by 60 would
    understate the rate sixfold. Long (rollup) windows use their whole span.
    """
    if window.tier != "raw":
        return window.span_s
    span = store.tick_span(db, vm_id, window.since, window.until)
    if span is None:
        return window.span_s
    first, last, interval = span  # a sample at `first` covers the tick before it
    return min(window.span_s, max((last - first).total_seconds() + interval, 1e-3))
