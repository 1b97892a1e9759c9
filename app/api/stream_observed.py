"""The observer's part of /api/stream's `rates` events: per address, what `iosignal observe`
counted since the tick before (writes, userspace exits, in-kernel, their rates, the share).

An observed VM's ticks are the observer's own; an owned VM's ticks stay its worker's, each
carrying the observer's rows that fell in (previous tick, tick], so its exits chart keeps one
clock. The reads are app/api/observed.py's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api import observed
from contract.models import Vm, VmKind
from contract.timeparse import epoch_ms

TOP_OBSERVED = 24  # addresses per tick, most written first (the live chart draws 24 lines)
TOP_EXITS = 10


def is_observed(db: Session, vm_id: int) -> bool:
    """The VM is another VMM's, watched by the observer (no worker ticks of its own)."""
    return db.scalar(select(Vm.kind).where(Vm.id == vm_id)) == VmKind.OBSERVED.value


def figures(space: str, addr: int, len_: int, writes: int, userspace: int, seconds: float) -> dict:
    """One address's observed figures over `seconds`."""
    in_kernel = writes - userspace
    per_s = 1.0 / seconds if seconds > 0 else 0.0
    return {
        "space": space,
        "addr": addr,
        "len": len_,
        "writes": writes,
        "userspace": userspace,
        "in_kernel": in_kernel,
        "writes_hz": writes * per_s,
        "userspace_hz": userspace * per_s,
        "in_kernel_hz": in_kernel * per_s,
        "in_kernel_share": in_kernel / writes if writes else None,
    }


def _busiest(items: list[dict]) -> list[dict]:
    return sorted(items, key=lambda o: (-o["writes"], o["space"], o["addr"]))[:TOP_OBSERVED]


def observed_per_tick(
    db: Session, vm_id: int, after: datetime, times: list[datetime]
) -> dict[datetime, list[dict]]:
    """For an owned VM's worker ticks `times`: the observer's figures per address in
    (previous tick, tick], rates over that span (the first tick's span starts at `after`)."""
    out: dict[datetime, list[dict]] = {t: [] for t in times}
    if not times:
        return out
    sums: dict[datetime, dict[tuple[str, int, int], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    bounds = sorted(times)
    for row in observed.rows_between(db, vm_id, after, bounds[-1]):
        tick = bounds[bisect_left(bounds, row.taken_at)]  # the first tick at or after it
        slot = sums[tick][(row.space, row.addr, row.len)]
        slot[0] += row.writes
        slot[1] += row.userspace
    previous = after
    for t in bounds:
        seconds = (t - previous).total_seconds()
        items = [figures(*key, w, u, seconds) for key, (w, u) in sums[t].items() if w]
        out[t] = _busiest(items)
        previous = t
    return out


def observed_ticks(db: Session, vm_id: int, after: datetime, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` observer ticks of an observed VM after `after`, as `rates` payloads: no
    registrations, its userspace exits as `exits`, every address's figures as `observed`."""
    times = observed.tick_times(db, vm_id, after, limit)
    if not times:
        return []
    ticks: dict[datetime, dict[str, Any]] = {
        t: {"vm_id": vm_id, "t": t.isoformat(), "interval_s": 0.0, "registrations": []}
        | {"exits": [], "observed": []}
        for t in times
    }
    for row in observed.rows_between(db, vm_id, after, times[-1]):
        tick = ticks[row.taken_at]
        tick["interval_s"] = max(tick["interval_s"], row.interval_s)
        if row.writes:
            tick["observed"].append(
                figures(row.space, row.addr, row.len, row.writes, row.userspace, row.interval_s)
            )
    out = []
    for t in times:
        tick = ticks[t]
        exiting = [o for o in tick["observed"] if o["userspace"]]
        tick["exits"] = [
            {
                "space": o["space"],
                "addr": o["addr"],
                "len": o["len"],
                "exits": o["userspace"],
                "rate_hz": o["userspace_hz"],
                "registered": None,  # another VMM's registrations are not known
            }
            for o in sorted(exiting, key=lambda o: -o["userspace"])[:TOP_EXITS]
        ]
        tick["observed"] = _busiest(tick["observed"])
        out.append({"id": epoch_ms(t), "data": tick})
    return out
