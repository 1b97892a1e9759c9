"""Rollups and retention of observed samples, run by the observer for the VMs of its host.

The worker's invariant, per row: a raw minute is deleted only after it was rolled up, and only
whole minutes before the newest flushed sample's minute are rolled up, each once, tracked by
`vms.observed_rolled_up_until` in the same transaction. Observed VMs that ended before the
rollup window are deleted with their samples.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, or_, select, update

from contract import samples
from contract.models import DoorbellLatency, Feed, Rollup, Sample, Vm, VmKind
from contract.timeparse import EPOCH
from daemon.retention import minute_floor

FEEDS = [Feed.OBSERVED, Feed.READ_EXITS]  # both written by the observer, each tick
FEED_IDS = [int(f) for f in FEEDS]


def roll_up(engine: Engine, host: str, newest: datetime) -> datetime:
    """Roll up every whole minute before `newest`'s minute not yet rolled up; returns the mark."""
    end = minute_floor(newest)
    with engine.begin() as conn:
        vms = conn.execute(
            select(Vm.id, Vm.observed_rolled_up_until).where(
                Vm.host == host,
                or_(Vm.observed_rolled_up_until.is_(None), Vm.observed_rolled_up_until < end),
            )
        ).all()
        for vm_id, mark in vms:
            samples.roll_up(conn, vm_id, FEEDS, mark or EPOCH, end)
        if vms:
            ids = [vm_id for vm_id, _ in vms]
            conn.execute(update(Vm).where(Vm.id.in_(ids)).values(observed_rolled_up_until=end))
    return end


def enforce(engine: Engine, host: str, now: datetime, raw_h: float, rollup_d: float) -> None:
    """Delete rolled-up raw samples older than `raw_h` hours, rollups (and ended observed VMs)
    older than `rollup_d` days."""
    roll_cut = minute_floor(now - timedelta(days=rollup_d))
    raw_cut = minute_floor(now - timedelta(hours=raw_h))
    with engine.begin() as conn:
        vms = conn.execute(
            select(Vm.id, Vm.observed_rolled_up_until).where(
                Vm.host == host, Vm.observed_rolled_up_until.is_not(None)
            )
        ).all()
        for vm_id, mark in vms:  # only minutes already rolled up: before the VM's mark
            cut = raw_cut if mark is None else min(raw_cut, mark)
            conn.execute(
                delete(Sample).where(
                    Sample.vm_id == vm_id, Sample.feed.in_(FEED_IDS), Sample.taken_at < cut
                )
            )
        host_vms = select(Vm.id).where(Vm.host == host).scalar_subquery()
        conn.execute(
            delete(Rollup).where(
                Rollup.vm_id.in_(host_vms),
                Rollup.feed.in_(FEED_IDS),
                Rollup.minute_at < roll_cut,
            )
        )
        # doorbell latency rows are per minute already: kept as long as the rollups
        conn.execute(
            delete(DoorbellLatency).where(
                DoorbellLatency.vm_id.in_(host_vms), DoorbellLatency.minute_at < roll_cut
            )
        )
        conn.execute(
            delete(Vm).where(
                and_(Vm.kind == VmKind.OBSERVED.value, Vm.host == host, Vm.ended_at < roll_cut)
            )
        )


def run(engine: Engine, host: str, newest: datetime, raw_h: float, rollup_d: float) -> None:
    """One retention pass: roll up finished minutes, then apply both retention windows."""
    roll_up(engine, host, newest)
    enforce(engine, host, datetime.now(UTC), raw_h, rollup_d)
