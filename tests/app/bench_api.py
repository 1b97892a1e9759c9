"""Read-path figures of the API at scale: 1,000 registrations with 24 h of raw 1 s ticks
(86.4 M samples) and 30 days of per-minute rollups before them (43 M series-minutes).

Run: .venv/bin/python tests/app/bench_api.py sqlite:////tmp/iosignal-bench.db
     (or a URL of an empty PostgreSQL database); run it again on the same database to measure
     without filling it again. Prints timings; asserts nothing about speed.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta

REGS, TICKS, ROLLUP_DAYS = 1000, 86_400, 30.0


def fill(
    session_factory,
    regs: int = REGS,
    ticks: int = TICKS,
    exit_addrs: int = 5,
    rollup_days: float = 0.0,
) -> tuple[int, list[int]]:
    """One VM, `regs` active registrations, `ticks` one-second ticks of samples (signals of
    every registration, exits of `exit_addrs` PIO ports from 0x7000), written as the worker
    writes them (one packed row per tick and feed); then per-minute rollups of `rollup_days`
    before the raw ticks and of the raw ticks' own minutes, marked rolled up to the newest."""
    from sqlalchemy import insert, update

    from contract.models import Feed, Ioeventfd, Rollup, Sample, Series, Vm, utcnow
    from contract.packed import pack
    from contract.samples import SeriesIndex

    with session_factory() as db:
        vm = Vm(name="bench", state="running", heartbeat_at=utcnow())
        db.add(vm)
        db.commit()
        rows = [
            Ioeventfd(vm_id=vm.id, space="mmio", addr=0xD0000000 + 8 * i, len=4, state="active")
            for i in range(regs)
        ]
        db.add_all(rows)
        db.commit()
        ids = [r.id for r in rows]
        conn = db.connection()
        index = SeriesIndex()
        sig = index.indexes(conn, vm.id, Feed.SIGNALS, ids)
        exits = index.indexes(
            conn, vm.id, Feed.EXITS, [("pio", 0x7000 + j, 2) for j in range(exit_addrs)]
        )
        # every tick counts the same: pack once (decoding costs the same as varied counts)
        signals_value = pack([(i, (5,)) for i in sig.values()])
        exits_value = pack([(i, (3,)) for i in exits.values()])
        now = utcnow().replace(microsecond=0)
        first = now - timedelta(seconds=ticks)
        batch = []
        for k in range(ticks):
            t = first + timedelta(seconds=k)
            for feed, value in ((Feed.SIGNALS, signals_value), (Feed.EXITS, exits_value)):
                batch.append(
                    {"vm_id": vm.id, "feed": int(feed), "taken_at": t}
                    | {"interval_us": 1_000_000, "counts": value}
                )
            if len(batch) >= 2000:
                db.execute(insert(Sample), batch)
                batch.clear()
        if batch:
            db.execute(insert(Sample), batch)
        # The worker rolls up every minute and keeps raw ticks 24 h: rollups cover the days
        # before the raw ticks and the raw ticks' own minutes, up to the newest minute.
        mark = now.replace(second=0)
        minutes = (
            int(rollup_days * 1440) + (mark - first).seconds // 60 + (mark - first).days * 1440
        )
        if rollup_days:
            sig_minute = pack([(i, (300,)) for i in sig.values()])
            exit_minute = pack([(i, (180,)) for i in exits.values()])
            batch = []
            for m in range(minutes):
                at = mark - timedelta(minutes=minutes - m)
                for feed, value in ((Feed.SIGNALS, sig_minute), (Feed.EXITS, exit_minute)):
                    batch.append(
                        {"vm_id": vm.id, "feed": int(feed), "minute_at": at}
                        | {"interval_us": 60_000_000, "counts": value}
                    )
                if len(batch) >= 2000:
                    db.execute(insert(Rollup), batch)
                    batch.clear()
            if batch:
                db.execute(insert(Rollup), batch)
            for feed, per_minute in ((Feed.SIGNALS, 300), (Feed.EXITS, 180)):
                db.execute(
                    update(Series)
                    .where(Series.vm_id == vm.id, Series.feed == int(feed))
                    .values(rolled_total=per_minute * minutes)
                )
            db.execute(update(Vm).where(Vm.id == vm.id).values(rolled_up_until=mark))
        db.commit()
        return vm.id, ids


def main(url: str) -> None:
    """Fill the database at `url`, then time the read endpoints."""
    os.environ["IOSIGNAL_DATABASE_URL"] = url
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from app.main import create_app
    from contract.db import get_sessionmaker
    from contract.migrate import upgrade
    from contract.models import Ioeventfd, Vm

    upgrade(url)
    started = time.perf_counter()
    with get_sessionmaker()() as db:  # a database filled by an earlier run is measured as it is
        vm_id = db.scalar(select(Vm.id).where(Vm.name == "bench"))
        ids = list(db.scalars(select(Ioeventfd.id).where(Ioeventfd.vm_id == vm_id)))
    if vm_id is None:
        vm_id, ids = fill(get_sessionmaker(), rollup_days=ROLLUP_DAYS)
        print(
            f"stored {REGS * TICKS:,} raw signal samples and {ROLLUP_DAYS:g} days of rollups "
            f"in {time.perf_counter() - started:.1f} s"
        )
    client = TestClient(create_app())

    def timed(what: str, path: str, params: dict | None = None, n: int = 5) -> None:
        best = float("inf")
        for _ in range(n):
            t = time.perf_counter()
            response = client.get(path, params=params)
            best = min(best, time.perf_counter() - t)
            assert response.status_code == 200, response.text
        print(f"{what}: {1000 * best:.0f} ms (best of {n})")

    rates = f"/api/vms/{vm_id}/ioeventfds/{ids[REGS // 2]}/rates"
    timed("rates since=-30m (raw tier, 1 of 1,000 registrations)", rates, {"since": "-30m"})
    timed("rates since=-5m", rates, {"since": "-5m"})
    timed("rates since=-7d (minute tier: rollups + raw tail)", rates, {"since": "-7d"})
    timed("rates since=-30d", rates, {"since": "-30d"})
    timed("exits since=-1m", f"/api/vms/{vm_id}/exits", {"since": "-1m"})
    timed("exits since=-30m", f"/api/vms/{vm_id}/exits", {"since": "-30m"})
    timed("/metrics", "/metrics")
    t = time.perf_counter()
    params = {"vm_id": vm_id, "last_event_id": 0, "max_events": 500}
    body = client.get("/api/stream", params=params).content
    print(
        f"stream replay, 500 ticks x {REGS} registrations: "
        f"{1000 * (time.perf_counter() - t):.0f} ms, {len(body) / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:////tmp/iosignal-bench.db")
