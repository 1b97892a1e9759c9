"""Helpers shared by tests in every folder (tests/ is on sys.path via pytest's pythonpath)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(part: str, ok: bool, how: str) -> None:
    """Fail (in CI) or skip (elsewhere) unless the real `part` is available."""
    if ok:
        return
    message = f"{part} is not available: {how}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, every: float = 0.05):
    """Poll `check` until it returns something truthy and return that; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def put_sample(db, vm_id: int, feed, when, key, *counts: int, interval_s=None, rollup=False):
    """Add one series' counts to a stored tick (or, `rollup=True`, a rolled-up minute) of a VM
    feed, merging with what it holds: how tests write samples series by series. `key` is a
    registration id or (space, addr, len); the interval defaults to 1 s (60 s for a rollup)."""
    from sqlalchemy import insert, select, update

    from contract.models import Feed, Rollup, Sample, Series
    from contract.packed import pack, unpack
    from contract.samples import SeriesIndex

    feed = Feed(feed)
    db.flush()  # rows the test added through the ORM (its VM, its registrations) come first
    conn = db.connection()
    idx = SeriesIndex().indexes(conn, vm_id, feed, [key])[key]
    table, at = (Rollup, Rollup.minute_at) if rollup else (Sample, Sample.taken_at)
    interval_us = round((interval_s if interval_s is not None else 60.0 if rollup else 1.0) * 1e6)
    where = (table.vm_id == vm_id, table.feed == int(feed), at == when)
    old = conn.execute(select(table.counts).where(*where)).scalar()
    busy = dict(unpack(old, feed.fields).items()) if old is not None else {}
    busy[idx] = tuple(a + b for a, b in zip(busy.get(idx, (0,) * feed.fields), counts, strict=True))
    value = pack(busy.items(), feed.fields)
    if old is None:
        row = {"vm_id": vm_id, "feed": int(feed), at.key: when, "interval_us": interval_us}
        conn.execute(insert(table).values(**row, counts=value))
    else:
        conn.execute(update(table).where(*where).values(counts=value, interval_us=interval_us))
    if rollup:  # as the rollup pass does: the series' lifetime total grows with its minutes
        conn.execute(
            update(Series)
            .where(Series.vm_id == vm_id, Series.feed == int(feed), Series.idx == idx)
            .values(
                rolled_total=Series.rolled_total + counts[0],
                rolled_second=Series.rolled_second + (counts[1] if len(counts) > 1 else 0),
            )
        )


def add_exit(db, vm_id: int, when, exits: int, *, space="pio", addr=0x6000, length=4, **kw):
    """An exit sample as the worker writes it; `rollup=True` for a per-minute rollup."""
    from contract.models import Feed

    put_sample(db, vm_id, Feed.EXITS, when, (space, addr, length), exits, **kw)


def add_signal(db, ioeventfd_id, taken_at=None, signals=0, interval_s=None, minute_at=None):
    """A registration's signal sample (or, with `minute_at`, its rollup), as the worker writes."""
    from contract.models import Feed, Ioeventfd

    db.flush()
    vm_id = db.get(Ioeventfd, ioeventfd_id).vm_id
    when, rollup = (minute_at, True) if minute_at is not None else (taken_at, False)
    put_sample(
        db, vm_id, Feed.SIGNALS, when, ioeventfd_id, signals, interval_s=interval_s, rollup=rollup
    )


def add_observed(
    db,
    vm_id,
    space,
    addr,
    len,
    writes=0,
    userspace=0,
    reads=0,
    taken_at=None,
    minute_at=None,
    interval_s=None,
):
    """What the observer counted at one address in one tick (or, `minute_at`, a rollup)."""
    from contract.models import Feed

    when, rollup = (minute_at, True) if minute_at is not None else (taken_at, False)
    put_sample(
        db,
        vm_id,
        Feed.OBSERVED,
        when,
        (space, addr, len),
        writes,
        userspace,
        reads,
        interval_s=interval_s,
        rollup=rollup,
    )


def stored(conn, vm_id: int, feed, *, rollups: bool = False) -> dict:
    """{(series key, time): counts} of a VM feed's raw ticks (or rollups), decoded."""
    from sqlalchemy import select

    from contract.models import Feed, Rollup, Sample
    from contract.samples import decode, series_of

    feed = Feed(feed)
    table, at = (Rollup, Rollup.minute_at) if rollups else (Sample, Sample.taken_at)
    keys = series_of(conn, vm_id, feed)
    rows = conn.execute(
        select(at, table.counts).where(table.vm_id == vm_id, table.feed == int(feed))
    )
    return {(keys[i], t): c for t, value in rows for i, c in decode(vm_id, feed, t, value).items()}


class FakeTime:
    """A monotonic clock that only moves when waited on (or told to), and a stop Event twin."""

    def __init__(self, waits: int) -> None:
        self.now, self.waits, self.slept = 100.0, waits, []

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float) -> bool:
        self.slept.append(round(timeout, 6))
        self.now += timeout
        self.waits -= 1
        return self.waits < 0  # "stop is set" after the allowed number of waits


def ring_together(rings: dict[Any, tuple[int, int]], in_kernel_port: int, user_port: int) -> None:
    """Test VMMs (tests/observer's `vmm`) ringing at once, each on its own thread: `n` PIO writes
    to `in_kernel_port`, then `m` to `user_port`, for each VMM's (n, m)."""

    def ring(v: Any, n: int, m: int) -> None:
        v.ring("pio", in_kernel_port, 4, n)
        v.ring("pio", user_port, 4, m)

    threads = [threading.Thread(target=ring, args=(v, *nm)) for v, nm in rings.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
