"""The observer's part of /api/stream's `rates` events: per address, what `iosignal observe`
counted since the tick before (writes, userspace exits, in-kernel, their rates, the share).

An observed VM's ticks are the observer's own; an owned VM's ticks stay its worker's, each
carrying the observer's rows that fell in (previous tick, tick], so its exits chart keeps one
clock. The reads are app/api/samples/observed.py's.

A live stream reads the observer's rows by commit order, not by tick time: the observer stamps
`vms.observer_seen_at` in the transaction of its tick, so every row taken by that mark has
committed. The stream holds an owned VM's worker ticks until the observer's mark reaches them
(for OBSERVER_GRACE at most) and keeps its own mark of the rows sent; a row committed after its
tick went out goes with the next tick instead of being lost.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.samples import observed
from contract.models import Vm, VmKind
from contract.timeparse import epoch_ms

TOP_OBSERVED = 24  # addresses per tick, most written first (the live chart draws 24 lines)
TOP_EXITS = 10
# How long an owned VM's live ticks wait for the observer's rows (its writer commits once a
# second at fast ticks); an observer further behind has its rows sent with later ticks.
OBSERVER_GRACE = timedelta(seconds=2)


@dataclass
class ObservedCursor:
    """A live stream's mark in an owned VM's observer rows: every row taken by `through` was
    sent (with the tick at or after it, or the first tick after that); it never passes the
    observer's own mark, so a row still uncommitted is taken later, not skipped."""

    through: datetime


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


def observer_seen_at(db: Session, vm_id: int) -> datetime | None:
    """The observer's newest committed tick that saw the VM (read it before the rows)."""
    return db.scalar(select(Vm.observer_seen_at).where(Vm.id == vm_id))


def caught_up(times: list[datetime], seen: datetime | None, now: datetime) -> list[datetime]:
    """The worker's ticks `times` the observer has reported up to, while its mark `seen` is at
    most OBSERVER_GRACE behind both the newest tick and `now`; all of them when it is further
    behind (lagging, stopped) or absent, so no tick waits longer than that."""
    if seen is None or not times or max(times[-1], now) - seen > OBSERVER_GRACE:
        return times
    return [t for t in times if t <= seen]


def observed_per_tick(
    db: Session, vm_id: int, after: datetime, times: list[datetime], cursor: ObservedCursor | None
) -> dict[datetime, list[dict]]:
    """For an owned VM's worker ticks `times`: the observer's figures per address, each row with
    the first tick at or after it, rates over (previous tick, tick] (the first from `after`).
    Without a cursor the rows are those taken in (after, last tick]; with one, those taken after
    the cursor and by the observer's mark (read first), rows taken earlier going to the first."""
    out: dict[datetime, list[dict]] = {t: [] for t in times}
    if not times:
        return out
    bounds = sorted(times)
    since, upto = after, bounds[-1]
    if cursor is not None:  # rows taken by the observer's mark have committed; later may not
        seen = observer_seen_at(db, vm_id)
        since = cursor.through
        upto = max(since, min(upto, seen or since))
        cursor.through = upto
    sums: dict[datetime, dict[tuple[str, int, int], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for row in observed.rows_between(db, vm_id, since, upto):
        tick = bounds[bisect_left(bounds, row.taken_at)]  # the first tick at or after it
        slot = sums[tick][(row.space, row.addr, row.len)]
        slot[0] += row.writes
        slot[1] += row.userspace
    previous = after
    for t in bounds:
        seconds = (t - previous).total_seconds()
        out[t] = [figures(*key, w, u, seconds) for key, (w, u) in sums[t].items() if w]
        previous = t
    return out


def _address(row: dict) -> tuple[str, int, int]:
    return row["space"], row["addr"], row["len"]


def paired(exits: list[dict], observed: list[dict]) -> tuple[list[dict], list[dict]]:
    """A tick's top TOP_EXITS exits and TOP_OBSERVED observed addresses, each list with the
    other's addresses added: an address the tick lists has both sides' counts (or neither), so
    the page compares them on the same ticks however many addresses exit."""
    ranked_exits = sorted(exits, key=lambda e: -e["exits"])
    ranked_observed = sorted(observed, key=lambda o: (-o["writes"], o["space"], o["addr"]))
    listed = {_address(e) for e in ranked_exits[:TOP_EXITS]}
    listed |= {_address(o) for o in ranked_observed[:TOP_OBSERVED]}
    return (
        [e for e in ranked_exits if _address(e) in listed],
        [o for o in ranked_observed if _address(o) in listed],
    )


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
