"""Every read of the packed sample store the routes make: here, and only here, ticks are decoded.

A VM feed's ticks come from contract.samples.read (rollups before a boundary, raw from it on,
each checked; a corrupt value raises CorruptPacked naming VM and tick, which the app answers
with a 500 saying so, never a wrong rate). This module sums them the way each route needs:
per series and time bucket, per series over a window, or tick by tick for the stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract import samples
from contract.models import Feed, Sample, Series
from contract.samples import SeriesKey, Tick
from contract.timeparse import epoch_us

_US = timedelta(microseconds=1)
WORKER_FEEDS = (Feed.SIGNALS, Feed.EXITS, Feed.ANSWERS)  # a worker tick is any of them
Buckets = dict[int, list[float]]  # bucket start (ms since the epoch) -> [count..., seconds]
_JOIN_OVER = 8  # wanted series per tick above which the planes are joined (measured: 144 -> 2x)


def ticks(
    db: Session,
    vm_id: int,
    feed: Feed,
    boundary: datetime | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[Tick]:
    """The feed's ticks in (since, until], each counted once (see contract.samples.read)."""
    return samples.read(db.connection(), vm_id, feed, boundary, since, until)


def series_keys(db: Session, vm_id: int, feed: Feed) -> samples.SeriesKeys:
    """index -> series key of a VM feed (a series added since is read on use)."""
    return samples.series_of(db.connection(), vm_id, feed)


def bucket_start_ms(at: datetime, step_s: float) -> int:
    """The start, in ms since the epoch, of the `step_s` bucket (aligned to the epoch) of `at`."""
    step_ms = max(1, round(step_s * 1000))
    return (epoch_us(at) // (step_ms * 1000)) * step_ms


def bucketed(
    db: Session,
    vm_id: int,
    feed: Feed,
    wanted: set[SeriesKey],
    step_s: float,
    boundary: datetime | None,
    since: datetime | None,
    until: datetime | None,
    *,
    idle_seconds: bool,
) -> dict[SeriesKey, Buckets]:
    """Per wanted series, per bucket: its counts summed and the seconds they cover.
    `idle_seconds`: every tick's interval counts for every wanted series, busy or idle
    (signals: each registration is sampled each tick); else only the ticks where it was busy."""
    pick = {i: k for i, k in series_keys(db, vm_id, feed).items() if k in wanted}
    out: dict[SeriesKey, Buckets] = {key: {} for key in wanted}
    width = feed.fields
    current: int | None = None
    slots: dict[SeriesKey, list[float]] = {}  # the current bucket's slot of each series
    for tick in ticks(db, vm_id, feed, boundary, since, until):
        bucket = bucket_start_ms(tick.at, step_s)
        if bucket != current:  # ticks come in time order: a bucket's slots are found once
            current = bucket
            slots = {k: _slot(b, bucket, width) for k, b in out.items()} if idle_seconds else {}
        if idle_seconds:
            for each in slots.values():
                each[-1] += tick.interval_s
        packed = tick.counts
        if len(pick) > _JOIN_OVER:
            _ = packed.counts  # join the byte planes once: cheaper than reading each series
        for i, key in pick.items():
            got = packed.get(i)
            if got is None:
                continue
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = _slot(out[key], bucket, width)
            for f, n in enumerate(got):
                slot[f] += n
            if not idle_seconds:
                slot[-1] += tick.interval_s
    return out


def _slot(buckets: Buckets, bucket: int, width: int) -> list[float]:
    slot = buckets.get(bucket)
    if slot is None:
        slot = buckets[bucket] = [0] * width + [0.0]
    return slot


def totals(
    db: Session,
    vm_id: int,
    feed: Feed,
    boundary: datetime | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[SeriesKey, list[int]]:
    """Counts per series of a VM feed in (since, until], every sample once. Without `since`
    and `until`, the rolled-up part is read from each series' lifetime `rolled_total` and
    `rolled_second` (one row per series instead of a month of rollups): the first two counts
    only (a third, observed reads, reads 0 there), as /metrics needs."""
    keys = series_keys(db, vm_id, feed)
    out: dict[SeriesKey, list[int]] = {}
    if since is None and until is None and boundary is not None:
        rolled = db.execute(
            select(Series.idx, Series.rolled_total, Series.rolled_second).where(
                Series.vm_id == vm_id, Series.feed == int(feed)
            )
        )
        for idx, first, second in rolled:
            if first or second:
                out[keys[idx]] = ([first, second] + [0] * feed.fields)[: feed.fields]
        # the raw tail from the boundary on: raw ticks after (boundary - 1 us)
        tail = samples.read(db.connection(), vm_id, feed, None, boundary - _US, None)
        add_counts(out, keys, tail)
        return out
    add_counts(out, keys, ticks(db, vm_id, feed, boundary, since, until))
    return out


def add_counts(out: dict, keys: dict[int, SeriesKey], rows: Iterable[Tick]) -> None:
    """Add each tick's counts into `out`, per series key (`keys`: the feed's index -> key)."""
    for tick in rows:
        for i, counts in tick.counts.items():
            acc = out.get(keys[i])
            if acc is None:
                out[keys[i]] = list(counts)
            else:
                for f, n in enumerate(counts):
                    acc[f] += n


def tick_span(
    db: Session, vm_id: int, since: datetime, until: datetime
) -> tuple[datetime, datetime, float] | None:
    """First and last worker tick (signals, exits or answers) in (since, until], and the longest
    interval."""
    return samples.tick_span(db.connection(), vm_id, WORKER_FEEDS, since, until)


def tick_times(db: Session, vm_id: int, after: datetime, limit: int) -> list[datetime]:
    """Times of the worker's ticks (signals, exits or answers) after `after`, oldest first."""
    per_feed = [
        select(Sample.taken_at)
        .where(Sample.vm_id == vm_id, Sample.feed == int(feed), Sample.taken_at > after)
        .order_by(Sample.taken_at)
        .limit(limit)
        for feed in WORKER_FEEDS
    ]
    times = {t for query in per_feed for t in db.scalars(query)}
    return sorted(times)[:limit]


def newest_tick(db: Session, vm_id: int, not_before: datetime) -> datetime | None:
    """The newest worker tick of `vm_id` after `not_before`."""
    newest = [
        db.scalar(
            select(Sample.taken_at)
            .where(Sample.vm_id == vm_id, Sample.feed == int(feed), Sample.taken_at > not_before)
            .order_by(Sample.taken_at.desc())
            .limit(1)
        )
        for feed in WORKER_FEEDS
    ]
    return max((t for t in newest if t is not None), default=None)


def busiest(
    db: Session, feed: Feed, since: datetime, until: datetime, minute: bool, limit: int
) -> list[tuple[int, SeriesKey]]:
    """(vm_id, series key) of the series of every VM with the largest first count of `feed`
    in (since, until]: raw ticks, or rollups for a minute-tier window."""
    vm_ids = list(db.scalars(select(func.distinct(Series.vm_id)).where(Series.feed == int(feed))))
    sums: dict[tuple[int, SeriesKey], int] = {}
    for vm_id in vm_ids:
        keys = series_keys(db, vm_id, feed)
        # a minute window: rollups before `until` (and a raw tick exactly at it)
        for tick in ticks(db, vm_id, feed, until if minute else None, since, until):
            for i, n in tick.counts.firsts():
                sums[(vm_id, keys[i])] = sums.get((vm_id, keys[i]), 0) + n
    ranked = sorted(sums.items(), key=lambda kv: -kv[1])
    return [key for key, total in ranked[:limit] if total]
