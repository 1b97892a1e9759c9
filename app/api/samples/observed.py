"""Every read of what `iosignal observe` stored (the `observed` feed of the sample store), in one
place: the panels, `/exits`, the stream, `/metrics` and the host view ask here, and the ticks are
decoded by app/api/samples/store.py.

Only addresses that changed in an observer tick are in it: a missing address means no writes.
Rollups are read before each VM's own observer mark (`vms.observed_rolled_up_until`), raw ticks
from it on.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.samples import store
from app.api.samples.window import Window
from contract import samples
from contract.models import Feed, Sample, Series, Vm

Addr = tuple[str, int, int]  # (space, addr, len)
OBSERVED = Feed.OBSERVED


class Counts(NamedTuple):
    """Guest writes at an address and how many of them exited to userspace."""

    writes: int
    userspace: int


class Row(NamedTuple):
    """One address's counts in one observer tick."""

    taken_at: datetime
    space: str
    addr: int
    len: int
    writes: int
    userspace: int
    interval_s: float


def bucketed(db: Session, window: Window, vm: Vm, addrs: list[int]) -> list[Any]:
    """(space, addr, len, bucket_ms, writes, userspace) of one VM's addresses at `addrs` over
    `window`."""
    wanted = set(addrs)
    keys = {k for k in store.series_keys(db, vm.id, OBSERVED).values() if k[1] in wanted}
    boundary = vm.observed_rolled_up_until if window.tier == "minute" else None
    found = store.bucketed(
        db,
        vm.id,
        OBSERVED,
        keys,
        window.step_s,
        boundary,
        window.since,
        window.until,
        idle_seconds=False,
    )
    return [
        (*key, bucket, int(c[0]), int(c[1]))
        for key, buckets in found.items()
        for bucket, c in buckets.items()
    ]


def busiest(db: Session, window: Window, limit: int) -> list[tuple[int, str, int, int]]:
    """(vm_id, space, addr, len) of the addresses written most in the window, on raw samples
    (or on rollups for a minute-tier window)."""
    minute = window.tier == "minute"
    top = store.busiest(db, OBSERVED, window.since, window.until, minute, limit)
    return [(v, *key) for v, key in top]


def totals(db: Session, vm: Vm, window: Window) -> dict[Addr, Counts]:
    """Writes and userspace exits per address of one VM in `window`, every tick once."""
    boundary = vm.observed_rolled_up_until if window.tier == "minute" else None
    sums = store.totals(db, vm.id, OBSERVED, boundary, window.since, window.until)
    return {key: Counts(c[0], c[1]) for key, c in sums.items()}


def totals_of_vms(db: Session, vm_ids: list[int], since: datetime) -> dict[int, dict[Addr, Counts]]:
    """Writes and userspace exits per address of each VM since `since` (a short, raw range)."""
    out = {}
    for vm_id in vm_ids:
        sums = store.totals(db, vm_id, OBSERVED, None, since, None)
        out[vm_id] = {key: Counts(c[0], c[1]) for key, c in sums.items()}
    return out


def sums_by_vm(db: Session, window: Window) -> dict[int, samples.VmSums]:
    """Every VM's writes and userspace exits in `window`, summed without decoding a tick (the
    host view's sort keys): raw ticks, or rollups before each VM's mark on the minute tier."""
    tiered = window.tier == "minute"
    return samples.sums_by_vm(db.connection(), OBSERVED, window.since, window.until, tiered)


def retained_totals(db: Session) -> dict[int, dict[Addr, Counts]]:
    """Every VM's writes and userspace exits per address since the observer first saw it:
    each series' lifetime totals of rolled-up minutes, plus the raw ticks from the VM's mark."""
    vms = db.execute(
        select(Vm.id, Vm.observed_rolled_up_until).where(
            Vm.id.in_(select(Series.vm_id).where(Series.feed == int(OBSERVED)))
        )
    ).all()
    out: dict[int, dict[Addr, Counts]] = {}
    for vm_id, mark in vms:
        if mark is None:  # nothing rolled up yet: every raw tick
            sums = store.totals(db, vm_id, OBSERVED, None, None, None)
        else:
            sums = store.totals(db, vm_id, OBSERVED, mark)
        out[vm_id] = {key: Counts(c[0], c[1]) for key, c in sums.items()}
    return out


class Span(NamedTuple):
    """The first and last observer tick of a VM in a range, and the longest tick interval."""

    first: datetime
    last: datetime
    interval_s: float


def spans(db: Session, vm_ids: list[int], since: datetime, until: datetime) -> dict[int, Span]:
    """Per VM, the raw observer ticks that hold any of its addresses in (since, until]."""
    out = {}
    for vm_id in vm_ids:
        span = samples.tick_span(db.connection(), vm_id, (OBSERVED,), since, until)
        if span is not None:
            out[vm_id] = Span(*span)
    return out


def tick_times(db: Session, vm_id: int, after: datetime, limit: int) -> list[datetime]:
    """Up to `limit` observer ticks of `vm_id` after `after`, oldest first."""
    return list(
        db.scalars(
            select(Sample.taken_at)
            .where(Sample.vm_id == vm_id, Sample.feed == int(OBSERVED), Sample.taken_at > after)
            .order_by(Sample.taken_at)
            .limit(limit)
        )
    )


def newest_tick(db: Session, vm_id: int, not_before: datetime) -> datetime | None:
    """The newest observer tick of `vm_id` after `not_before`."""
    return db.scalar(
        select(Sample.taken_at)
        .where(Sample.vm_id == vm_id, Sample.feed == int(OBSERVED), Sample.taken_at > not_before)
        .order_by(Sample.taken_at.desc())
        .limit(1)
    )


def rows_between(db: Session, vm_id: int, after: datetime, upto: datetime) -> list[Row]:
    """Every address's counts of `vm_id`'s observer ticks in (after, upto]."""
    keys = store.series_keys(db, vm_id, OBSERVED)
    return list(_rows(store.ticks(db, vm_id, OBSERVED, None, after, upto), keys))


def _rows(ticks: Iterable[samples.Tick], keys: dict[int, Addr]) -> Iterable[Row]:
    for tick in ticks:
        for i, (writes, userspace, _reads) in tick.counts.items():
            yield Row(tick.at, *keys[i], writes, userspace, tick.interval_s)
