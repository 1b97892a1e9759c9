"""Database reads behind /api/stream: sampling ticks after a cursor, and registration changes.

A tick is one `taken_at` of a VM's samples; the worker writes each tick's signal and exit samples
in one transaction, so a tick seen at all is seen whole. Decoding is app/api/samples/store.py's.
An observed VM has no worker: its ticks are the observer's (also written whole), its exits the
observer's userspace counts. Every tick carries `observed`, what the observer counted per
address since the tick before (app/api/samples/observed.py reads it; stream/observed.py shapes
it and says how a live stream reads those rows by commit order).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.samples import observed, store
from app.api.stream.observed import (
    ObservedCursor,
    caught_up,
    is_observed,
    observed_per_tick,
    observed_ticks,
    observer_seen_at,
    paired,
)
from app.schemas import IoeventfdOut
from contract.models import Feed, Ioeventfd, RegState, utcnow
from contract.rules import covers
from contract.timeparse import epoch_ms

# Registration rows are stamped before they commit; look back this far so none is missed.
CHANGE_OVERLAP = timedelta(seconds=5)
# Registrations the worker samples each tick: those listed with 0 in a tick they did not count.
_SAMPLED = (RegState.ACTIVE.value, RegState.REMOVING.value)


def ticks_after(
    db: Session, vm_id: int, after: datetime, limit: int = 500, cursor: ObservedCursor | None = None
) -> list[dict[str, Any]]:
    """Up to `limit` ticks of `vm_id` after `after`, oldest first, as `rates` event payloads.

    A tick lists the registrations it counted and, with 0, the active ones it did not (the
    store keeps no idle series): created by then and not removed before it. A live stream
    passes its cursor in the observer's rows; a replay reads them by tick time."""
    if is_observed(db, vm_id):
        return observed_ticks(db, vm_id, after, limit)
    times = store.tick_times(db, vm_id, after, limit)
    if cursor is not None:
        times = caught_up(times, observer_seen_at(db, vm_id), utcnow())
    if not times:
        return []
    upto = times[-1]
    regs = {r.id: r for r in db.scalars(select(Ioeventfd).where(Ioeventfd.vm_id == vm_id))}
    ticks: dict[datetime, dict[str, Any]] = {
        t: {
            "vm_id": vm_id,
            "t": t,
            "interval_s": 0.0,
            "registrations": [],
            "exits": [],
            "answers": [],
        }
        for t in times
    }
    # Plain dicts made once, copied per tick: a replay page can hold half a million rows.
    base = {
        r.id: {"id": r.id, "space": r.space, "addr": r.addr, "len": r.len, "label": r.label}
        for r in regs.values()
    }
    live = {r.id: r.created_at for r in regs.values() if r.state in _SAMPLED}
    signal_keys = store.series_keys(db, vm_id, Feed.SIGNALS)
    for tick in store.ticks(db, vm_id, Feed.SIGNALS, None, after, upto):
        payload = ticks.get(tick.at)
        if payload is None:
            continue
        interval = tick.interval_s
        payload["interval_s"] = max(payload["interval_s"], interval)
        counted = {signal_keys[i]: n for i, n in tick.counts.firsts()}
        idle = [rid for rid in live.keys() - counted.keys() if live[rid] <= tick.at]
        rows = payload["registrations"]
        for reg_id, signals in [*counted.items(), *((rid, 0) for rid in idle)]:
            reg = base.get(reg_id)
            if reg is not None:
                rate = signals / interval if interval else 0.0
                rows.append(reg | {"signals": signals, "rate_hz": rate})
    active = [r for r in regs.values() if r.state == RegState.ACTIVE.value]
    exits: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
    exit_keys = store.series_keys(db, vm_id, Feed.EXITS)
    for tick in store.ticks(db, vm_id, Feed.EXITS, None, after, upto):
        if tick.at not in ticks:
            continue
        for i, count in tick.counts.firsts():
            space, addr, len_ = exit_keys[i]
            exits[tick.at].append(
                {
                    "space": space,
                    "addr": addr,
                    "len": len_,
                    "exits": count,
                    "rate_hz": count / tick.interval_s if tick.interval_s else 0.0,
                    "registered": any(covers(r, space, addr, len_) for r in active),
                }
            )
        ticks[tick.at]["interval_s"] = max(ticks[tick.at]["interval_s"], tick.interval_s)
    _add_answers(db, vm_id, ticks, after, upto)
    per_tick = observed_per_tick(db, vm_id, after, times, cursor)
    out = []
    for t in times:
        tick_out = ticks[t]
        tick_out["registrations"].sort(key=lambda r: r["id"])
        tick_out["exits"], tick_out["observed"] = paired(exits[t], per_tick[t])
        tick_out["t"] = t.isoformat()  # the payload is plain JSON types already
        out.append({"id": epoch_ms(t), "data": tick_out})
    return out


def _add_answers(
    db: Session, vm_id: int, ticks: dict[datetime, dict[str, Any]], after: datetime, upto: datetime
) -> None:
    """Each tick's answered doorbells: kicks and the device's interrupts, and their rates."""
    keys = store.series_keys(db, vm_id, Feed.ANSWERS)
    for tick in store.ticks(db, vm_id, Feed.ANSWERS, None, after, upto):
        payload = ticks.get(tick.at)
        if payload is None:
            continue
        interval = tick.interval_s
        payload["interval_s"] = max(payload["interval_s"], interval)
        for i, (kicks, interrupts) in tick.counts.items():
            space, addr, len_ = keys[i]
            payload["answers"].append(
                {
                    "space": space,
                    "addr": addr,
                    "len": len_,
                    "kicks": kicks,
                    "interrupts": interrupts,
                    "kicks_hz": kicks / interval if interval else 0.0,
                    "interrupts_hz": interrupts / interval if interval else 0.0,
                }
            )


def newest_tick(db: Session, vm_id: int, not_before: datetime) -> datetime | None:
    """The newest tick of `vm_id` after `not_before` (where a new live stream starts)."""
    if is_observed(db, vm_id):
        return observed.newest_tick(db, vm_id, not_before)
    return store.newest_tick(db, vm_id, not_before)


def changed_registrations(db: Session, vm_id: int, since: datetime) -> list[dict[str, Any]]:
    """Registrations of `vm_id` updated at or after `since - overlap`, as event payloads."""
    rows = db.scalars(
        select(Ioeventfd)
        .where(Ioeventfd.vm_id == vm_id, Ioeventfd.updated_at >= since - CHANGE_OVERLAP)
        .order_by(Ioeventfd.updated_at, Ioeventfd.id)
    )
    return [jsonable_encoder(IoeventfdOut.model_validate(r)) for r in rows]
