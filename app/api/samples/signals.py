"""A registration's signals over a window, tick by tick, and summed into rate buckets."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app.api.samples import store
from app.api.samples.window import Window, boundary
from contract import samples
from contract.models import Feed


def signal_rows(
    db: Session, vm_id: int, reg_id: int, window: Window
) -> list[tuple[datetime, int, float]]:
    """(time, signals, interval_s) of one registration covering `window`: a row per tick (or
    rolled-up minute) of its VM, 0 where it was idle."""
    idx = samples.index_of(db.connection(), vm_id, Feed.SIGNALS, reg_id)
    rows = []
    for tick in store.ticks(
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
