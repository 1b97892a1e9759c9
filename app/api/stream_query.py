"""Database reads behind /api/stream: sampling ticks after a cursor, and registration changes.

A tick is one `taken_at` of a VM's samples; the worker writes each tick's signal and exit samples
in one transaction, so a tick seen at all is seen whole. An observed VM has no worker: its ticks
are the observer's (also written whole), its exits the observer's userspace counts. Every tick
carries `observed`, what the observer counted per address since the tick before (app/api/
observed.py reads it; stream_observed.py shapes it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import observed
from app.api.stream_observed import is_observed, observed_per_tick, observed_ticks
from app.schemas import IoeventfdOut
from contract.models import ExitSample, Ioeventfd, RegState, SignalSample
from contract.timeparse import epoch_ms

TOP_EXITS = 10
# Registration rows are stamped before they commit; look back this far so none is missed.
CHANGE_OVERLAP = timedelta(seconds=5)


def _tick_times(db: Session, vm_id: int, after: datetime, limit: int) -> list[datetime]:
    signal_times = (
        select(SignalSample.taken_at)
        .join(Ioeventfd, Ioeventfd.id == SignalSample.ioeventfd_id)
        .where(Ioeventfd.vm_id == vm_id, SignalSample.taken_at > after)
        .distinct()
        .order_by(SignalSample.taken_at)
        .limit(limit)
    )
    exit_times = (
        select(ExitSample.taken_at)
        .where(ExitSample.vm_id == vm_id, ExitSample.taken_at > after)
        .distinct()
        .order_by(ExitSample.taken_at)
        .limit(limit)
    )
    times = set(db.scalars(signal_times)) | set(db.scalars(exit_times))
    return sorted(times)[:limit]


def ticks_after(db: Session, vm_id: int, after: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Up to `limit` ticks of `vm_id` after `after`, oldest first, as `rates` event payloads."""
    if is_observed(db, vm_id):
        return observed_ticks(db, vm_id, after, limit)
    times = _tick_times(db, vm_id, after, limit)
    if not times:
        return []
    upto = times[-1]
    regs = {r.id: r for r in db.scalars(select(Ioeventfd).where(Ioeventfd.vm_id == vm_id))}
    ticks: dict[datetime, dict[str, Any]] = {
        t: {"vm_id": vm_id, "t": t, "interval_s": 0.0, "registrations": [], "exits": []}
        for t in times
    }
    # Plain columns, not ORM objects: a replay page can hold a million rows.
    signal_rows = db.execute(
        select(
            SignalSample.taken_at,
            SignalSample.ioeventfd_id,
            SignalSample.signals,
            SignalSample.interval_s,
        )
        .join(Ioeventfd, Ioeventfd.id == SignalSample.ioeventfd_id)
        .where(
            Ioeventfd.vm_id == vm_id, SignalSample.taken_at > after, SignalSample.taken_at <= upto
        )
    )
    for taken_at, reg_id, signals, interval_s in signal_rows:
        reg = regs[reg_id]
        tick = ticks[taken_at]
        tick["interval_s"] = max(tick["interval_s"], interval_s)
        tick["registrations"].append(
            {
                "id": reg_id,
                "space": reg.space,
                "addr": reg.addr,
                "len": reg.len,
                "label": reg.label,
                "signals": signals,
                "rate_hz": signals / interval_s if interval_s else 0.0,
            }
        )
    # A write is covered by an active registration of the same width or of width 0.
    covered = {(r.space, r.addr, r.len) for r in regs.values() if r.state == RegState.ACTIVE.value}
    exits: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    exit_rows = db.execute(
        select(
            ExitSample.taken_at,
            ExitSample.space,
            ExitSample.addr,
            ExitSample.len,
            ExitSample.exits,
            ExitSample.interval_s,
        ).where(ExitSample.vm_id == vm_id, ExitSample.taken_at > after, ExitSample.taken_at <= upto)
    )
    for taken_at, space, addr, len_, count, interval_s in exit_rows:
        exits[taken_at].append(
            {
                "space": space,
                "addr": addr,
                "len": len_,
                "exits": count,
                "rate_hz": count / interval_s if interval_s else 0.0,
                "registered": (space, addr, len_) in covered or (space, addr, 0) in covered,
            }
        )
        ticks[taken_at]["interval_s"] = max(ticks[taken_at]["interval_s"], interval_s)
    per_tick = observed_per_tick(db, vm_id, after, times)
    out = []
    for t in times:
        tick = ticks[t]
        tick["registrations"].sort(key=lambda r: r["id"])
        tick["exits"] = sorted(exits[t], key=lambda e: -e["exits"])[:TOP_EXITS]
        tick["observed"] = per_tick[t]
        tick["t"] = t.isoformat()  # the payload is plain JSON types already
        out.append({"id": epoch_ms(t), "data": tick})
    return out


def newest_tick(db: Session, vm_id: int, not_before: datetime) -> datetime | None:
    """The newest tick of `vm_id` after `not_before` (where a new live stream starts)."""
    if is_observed(db, vm_id):
        return observed.newest_tick(db, vm_id, not_before)
    signal = db.scalar(
        select(SignalSample.taken_at)
        .join(Ioeventfd, Ioeventfd.id == SignalSample.ioeventfd_id)
        .where(Ioeventfd.vm_id == vm_id, SignalSample.taken_at > not_before)
        .order_by(SignalSample.taken_at.desc())
        .limit(1)
    )
    exit_ = db.scalar(
        select(ExitSample.taken_at)
        .where(ExitSample.vm_id == vm_id, ExitSample.taken_at > not_before)
        .order_by(ExitSample.taken_at.desc())
        .limit(1)
    )
    return max((t for t in (signal, exit_) if t is not None), default=None)


def changed_registrations(db: Session, vm_id: int, since: datetime) -> list[dict[str, Any]]:
    """Registrations of `vm_id` updated at or after `since - overlap`, as event payloads."""
    rows = db.scalars(
        select(Ioeventfd)
        .where(Ioeventfd.vm_id == vm_id, Ioeventfd.updated_at >= since - CHANGE_OVERLAP)
        .order_by(Ioeventfd.updated_at, Ioeventfd.id)
    )
    return [jsonable_encoder(IoeventfdOut.model_validate(r)) for r in rows]
