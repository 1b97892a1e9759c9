"""Per-minute rollups and retention of the sample tiers, run by the worker for its own VM.

Invariant: a raw minute is deleted only after it was rolled up, and rollups are made only for
whole minutes that will get no more samples (before the minute of the newest flushed sample),
each exactly once, tracked by `vms.rolled_up_until` in the same transaction. So the rollups of a
deleted minute sum to exactly the raw counts they replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select, update

from contract import samples
from contract.models import Feed, Rollup, Sample, Vm
from contract.timeparse import EPOCH
from daemon.retention import minute_floor

FEEDS = (Feed.SIGNALS, Feed.EXITS, Feed.ANSWERS)  # the worker's own feeds of its VM
_FEED_IDS = [int(f) for f in FEEDS]


def roll_up(engine: Engine, vm_id: int, newest: datetime) -> datetime | None:
    """Roll up every whole minute before `newest`'s minute not rolled up yet; returns the mark."""
    end = minute_floor(newest)
    with engine.begin() as conn:
        start = conn.execute(select(Vm.rolled_up_until).where(Vm.id == vm_id)).scalar() or EPOCH
        if start >= end:
            return start
        samples.roll_up(conn, vm_id, FEEDS, start, end)
        conn.execute(update(Vm).where(Vm.id == vm_id).values(rolled_up_until=end))
    return end


def enforce(engine: Engine, vm_id: int, now: datetime, raw_h: float, rollup_d: float) -> None:
    """Delete raw samples older than `raw_h` hours (only rolled-up minutes) and rollups older
    than `rollup_d` days."""
    with engine.begin() as conn:
        mark = conn.execute(select(Vm.rolled_up_until).where(Vm.id == vm_id)).scalar()
        if mark is None:
            return  # nothing rolled up yet, so nothing may be deleted
        raw_cut = min(minute_floor(now - timedelta(hours=raw_h)), mark)
        roll_cut = minute_floor(now - timedelta(days=rollup_d))
        conn.execute(
            delete(Sample).where(
                Sample.vm_id == vm_id, Sample.feed.in_(_FEED_IDS), Sample.taken_at < raw_cut
            )
        )
        conn.execute(
            delete(Rollup).where(
                Rollup.vm_id == vm_id, Rollup.feed.in_(_FEED_IDS), Rollup.minute_at < roll_cut
            )
        )


def run(engine: Engine, vm_id: int, newest: datetime, raw_h: float, rollup_d: float) -> None:
    """One retention pass: roll up finished minutes, then apply both retention windows."""
    roll_up(engine, vm_id, newest)
    enforce(engine, vm_id, datetime.now(UTC), raw_h, rollup_d)
