"""Reads of a page of VMs made once for the page (the host view's 50 VMs), not once per VM.

`exit_rows` and `diagnosis.annotate` of one VM read its observer counts, read exits,
registrations, exit values and its host's bench cost: eight queries a VM, 400 for a page.
`prefetch` reads them for every VM of the page in a handful of queries; each VM's rows then
take their part from the `PageReads`. A VM it lacks (or the minute tier, whose rollup boundary
is each VM's own) is read as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.registrations import observed as observed_regs
from app.api.samples import store
from app.api.samples.observed import Addr, Counts, Span
from app.api.samples.window import Window
from contract import samples
from contract.models import BenchmarkRun, BenchState, Feed, ObservedRegistration, Observer, Vm

FEEDS = (Feed.OBSERVED, Feed.READ_EXITS)


@dataclass
class PageReads:
    """What a page's VMs share, and each one's reads made in one go."""

    costs: dict[tuple[str, str], Any] = field(default_factory=dict)  # (host, space): BenchCost
    known: dict[str, datetime | None] = field(default_factory=dict)  # host: observer start
    observed: dict[int, dict[Addr, Counts]] = field(default_factory=dict)
    spans: dict[int, Span] = field(default_factory=dict)  # its observer ticks in the window
    reads: dict[int, dict[Addr, int]] = field(default_factory=dict)  # reads that exited
    live: dict[int, list[ObservedRegistration]] = field(default_factory=dict)
    values: dict[int, dict[Addr, list[int]]] = field(default_factory=dict)
    vm_ids: set[int] = field(default_factory=set)  # the VMs read here (raw tier only)

    def known_since(self, db: Session, host: str) -> datetime | None:
        """observed_regs.known_since, once per host."""
        if host not in self.known:
            self.known[host] = observed_regs.known_since(db, host)
        return self.known[host]


def prefetch(db: Session, vms: list[Vm], window: Window) -> PageReads:
    """Every read of the page's VMs, in one query each: the raw tier's counts, read exits,
    live registrations, exit values, and the observer start of every host on the page."""
    out = PageReads()
    hosts = {vm.host for vm in vms}
    starts = db.execute(
        select(Observer.host, func.max(Observer.started_at))
        .where(Observer.host.in_(hosts))
        .group_by(Observer.host)
    ).all()
    out.known = {host: None for host in hosts} | {h: at for h, at in starts}
    done = BenchmarkRun.state == BenchState.DONE.value
    benched = set(db.scalars(select(BenchmarkRun.host).where(BenchmarkRun.host.in_(hosts), done)))
    for host in hosts - benched:  # no bench run there: no cost to look up for any doorbell
        out.costs |= {(host, "pio"): None, (host, "mmio"): None}
    if window.tier != "raw" or not vms:
        return out
    ids = [vm.id for vm in vms]
    out.vm_ids = set(ids)
    conn = db.connection()
    keys = samples.series_of_vms(conn, ids, FEEDS)
    sums: dict[tuple[int, Feed], dict[Addr, list[int]]] = {}
    for vm_id, feed, tick in samples.read_vms(conn, ids, FEEDS, window.since, window.until):
        if feed == Feed.OBSERVED:  # as observed.spans: first, last, longest interval
            was = out.spans.get(vm_id)
            out.spans[vm_id] = (
                Span(tick.at, tick.at, tick.interval_s)
                if was is None
                else Span(
                    min(was.first, tick.at),
                    max(was.last, tick.at),
                    max(was.interval_s, tick.interval_s),
                )
            )
        store.add_counts(sums.setdefault((vm_id, feed), {}), keys[(vm_id, feed)], [tick])
    for vm_id in ids:
        observed = sums.get((vm_id, Feed.OBSERVED), {})
        out.observed[vm_id] = {k: Counts(c[0], c[1]) for k, c in observed.items()}
        out.reads[vm_id] = {k: c[0] for k, c in sums.get((vm_id, Feed.READ_EXITS), {}).items()}
    out.live = observed_regs.live_of_vms(db, ids)
    out.values = observed_regs.exit_values_of_vms(db, ids, window.since)
    return out
