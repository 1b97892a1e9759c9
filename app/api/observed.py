"""Every read of what `iosignal observe` stored (observed_samples, observed_rollups), in one place:
the panels, `/exits`, the stream, `/metrics` and the host view ask here, so a change of the sample
layout changes this module alone.

Only addresses that changed in an observer tick get a row: a missing row means no writes. Rollups
are read before each VM's own observer mark (`vms.observed_rolled_up_until`), raw rows from it on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.api.buckets import bucket_start_ms
from app.api.queries import tiered
from app.api.series import Window
from contract.models import ObservedRollup, ObservedSample, Vm

Addr = tuple[str, int, int]  # (space, addr, len)


class Counts(NamedTuple):
    """Guest writes at an address and how many of them exited to userspace."""

    writes: int
    userspace: int


class Row(NamedTuple):
    """One raw observer row: an address's counts in one tick."""

    taken_at: datetime
    space: str
    addr: int
    len: int
    writes: int
    userspace: int
    interval_s: float


def bucketed(db: Session, window: Window, vm: Vm, addrs: list[int]) -> list[Any]:
    """(space, addr, len, bucket_ms, writes, userspace) rows of one VM over `window`."""
    dialect = db.get_bind().dialect.name
    queries = []
    tiers = ((ObservedSample, ObservedSample.taken_at), (ObservedRollup, ObservedRollup.minute_at))
    for table, at in tiers:
        bucket = bucket_start_ms(at, window.step_s, dialect).label("bucket")
        keys = (table.space, table.addr, table.len)
        queries.append(
            select(*keys, bucket, func.sum(table.writes), func.sum(table.userspace))
            .where(table.vm_id == vm.id, table.addr.in_(addrs))
            .group_by(*keys, "bucket")
        )
    raw, rolled = queries
    boundary = vm.observed_rolled_up_until if window.tier == "minute" else None
    parts = tiered(
        raw,
        ObservedSample.taken_at,
        rolled,
        ObservedRollup.minute_at,
        boundary,
        window.since,
        window.until,
    )
    return [row for query in parts for row in db.connection().execute(query).all()]


def busiest(db: Session, window: Window, limit: int) -> list[tuple[int, str, int, int]]:
    """(vm_id, space, addr, len) of the addresses written most in the window, on raw samples
    (or on rollups for a minute-tier window)."""
    minute = window.tier == "minute"
    table: type[ObservedRollup] | type[ObservedSample] = (
        ObservedRollup if minute else ObservedSample
    )
    at = ObservedRollup.minute_at if minute else ObservedSample.taken_at
    keys = (table.vm_id, table.space, table.addr, table.len)
    rows = db.execute(
        select(*keys)
        .where(at > window.since, at <= window.until)
        .group_by(*keys)
        .order_by(func.sum(table.writes).desc())
        .limit(limit)
    )
    return [(v, s, a, n) for v, s, a, n in rows]


def totals(db: Session, vm: Vm, window: Window) -> dict[Addr, Counts]:
    """Writes and userspace exits per address of one VM in `window`, every tick once."""
    boundary = vm.observed_rolled_up_until if window.tier == "minute" else None
    return _totals(db, [vm.id], boundary, window.since, window.until)[vm.id]


def totals_of_vms(db: Session, vm_ids: list[int], since: datetime) -> dict[int, dict[Addr, Counts]]:
    """Writes and userspace exits per address of each VM since `since` (a short, raw range)."""
    return _totals(db, vm_ids, None, since, None)


def _totals(
    db: Session,
    vm_ids: list[int],
    boundary: datetime | None,
    since: datetime | None,
    until: datetime | None,
) -> dict[int, dict[Addr, Counts]]:
    keys = (ObservedSample.vm_id, ObservedSample.space, ObservedSample.addr, ObservedSample.len)
    rkeys = (ObservedRollup.vm_id, ObservedRollup.space, ObservedRollup.addr, ObservedRollup.len)
    sums = (func.sum(ObservedSample.writes), func.sum(ObservedSample.userspace))
    rsums = (func.sum(ObservedRollup.writes), func.sum(ObservedRollup.userspace))
    raw = select(*keys, *sums).where(ObservedSample.vm_id.in_(vm_ids)).group_by(*keys)
    rolled = select(*rkeys, *rsums).where(ObservedRollup.vm_id.in_(vm_ids)).group_by(*rkeys)
    parts = tiered(
        raw, ObservedSample.taken_at, rolled, ObservedRollup.minute_at, boundary, since, until
    )
    return _fold((row for query in parts for row in db.execute(query)), vm_ids)


def _fold(rows: Iterable[Any], vm_ids: Iterable[int]) -> dict[int, dict[Addr, Counts]]:
    acc: dict[int, dict[Addr, list[int]]] = {vm_id: defaultdict(lambda: [0, 0]) for vm_id in vm_ids}
    for vm_id, space, addr, len_, writes, userspace in rows:
        slot = acc.setdefault(vm_id, defaultdict(lambda: [0, 0]))[(space, addr, len_)]
        slot[0] += int(writes or 0)
        slot[1] += int(userspace or 0)
    return {v: {k: Counts(w, u) for k, (w, u) in per.items()} for v, per in acc.items()}


def retained_totals(db: Session) -> dict[int, dict[Addr, Counts]]:
    """Every VM's writes and userspace exits per address over all retained samples (two
    queries for all VMs: rollups before each VM's mark, raw samples from it on)."""
    raw_keys = (ObservedSample.vm_id, ObservedSample.space, ObservedSample.addr)
    raw = (
        select(*raw_keys, ObservedSample.len, func.sum(ObservedSample.writes))
        .add_columns(func.sum(ObservedSample.userspace))
        .join(Vm, Vm.id == ObservedSample.vm_id)
        .where(
            or_(
                Vm.observed_rolled_up_until.is_(None),
                ObservedSample.taken_at >= Vm.observed_rolled_up_until,
            )
        )
        .group_by(*raw_keys, ObservedSample.len)
    )
    rolled_keys = (ObservedRollup.vm_id, ObservedRollup.space, ObservedRollup.addr)
    rolled = (
        select(*rolled_keys, ObservedRollup.len, func.sum(ObservedRollup.writes))
        .add_columns(func.sum(ObservedRollup.userspace))
        .join(Vm, Vm.id == ObservedRollup.vm_id)
        .where(ObservedRollup.minute_at < Vm.observed_rolled_up_until)
        .group_by(*rolled_keys, ObservedRollup.len)
    )
    return _fold((row for query in (rolled, raw) for row in db.execute(query)), [])


class Span(NamedTuple):
    """The first and last observer tick of a VM in a range, and the longest tick interval."""

    first: datetime
    last: datetime
    interval_s: float


def spans(db: Session, vm_ids: list[int], since: datetime, until: datetime) -> dict[int, Span]:
    """Per VM, the raw ticks that hold any of its rows in (since, until]."""
    rows = db.execute(
        select(
            ObservedSample.vm_id,
            func.min(ObservedSample.taken_at),
            func.max(ObservedSample.taken_at),
            func.max(ObservedSample.interval_s),
        )
        .where(
            ObservedSample.vm_id.in_(vm_ids),
            ObservedSample.taken_at > since,
            ObservedSample.taken_at <= until,
        )
        .group_by(ObservedSample.vm_id)
    )
    return {v: Span(first, last, float(i or 0.0)) for v, first, last, i in rows}


def tick_times(db: Session, vm_id: int, after: datetime, limit: int) -> list[datetime]:
    """Up to `limit` observer ticks that hold rows of `vm_id` after `after`, oldest first."""
    return list(
        db.scalars(
            select(ObservedSample.taken_at)
            .where(ObservedSample.vm_id == vm_id, ObservedSample.taken_at > after)
            .distinct()
            .order_by(ObservedSample.taken_at)
            .limit(limit)
        )
    )


def newest_tick(db: Session, vm_id: int, not_before: datetime) -> datetime | None:
    """The newest observer tick of `vm_id` after `not_before`."""
    return db.scalar(
        select(ObservedSample.taken_at)
        .where(ObservedSample.vm_id == vm_id, ObservedSample.taken_at > not_before)
        .order_by(ObservedSample.taken_at.desc())
        .limit(1)
    )


def rows_between(db: Session, vm_id: int, after: datetime, upto: datetime) -> list[Row]:
    """The raw rows of `vm_id` in (after, upto], as plain tuples (a replay page can be big)."""
    query = select(
        ObservedSample.taken_at,
        ObservedSample.space,
        ObservedSample.addr,
        ObservedSample.len,
        ObservedSample.writes,
        ObservedSample.userspace,
        ObservedSample.interval_s,
    ).where(
        ObservedSample.vm_id == vm_id,
        ObservedSample.taken_at > after,
        ObservedSample.taken_at <= upto,
    )
    return [Row(*r) for r in db.execute(query)]
