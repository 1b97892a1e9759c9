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
MIN = timedelta(minutes=1)


def fill(
    session_factory,
    regs: int = REGS,
    ticks: int = TICKS,
    exit_addrs: int = 5,
    rollup_days: float = 0.0,
    varied: bool = False,
) -> tuple[int, list[int]]:
    """One VM, `regs` active registrations, `ticks` one-second ticks of samples (signals of
    every registration, exits of `exit_addrs` PIO ports from 0x7000), written as the worker
    writes them (one packed row per tick and feed); then per-minute rollups of `rollup_days`
    before the raw ticks and of the raw ticks' own minutes, marked rolled up to the newest.
    Counts are 5 signals and 3 exits a tick (300 and 180 a minute), or with `varied` every
    series busy with 1..1,000 a tick (a minute's sum of 60 such), so that the stored bytes
    are those of real, incompressible counts."""
    import random

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
        rng = random.Random(11)

        def values(per: int, n: int) -> list[tuple[bytes, int]]:
            """`n` packed ticks of signals (count, total per series) to cycle through."""
            if not varied:
                return [(pack([(i, (per,)) for i in sig.values()]), per)]
            out = []
            for _ in range(n):
                counts = [sum(rng.randint(1, 1000) for _ in range(per)) for _ in sig]
                out.append((pack(zip(sig.values(), ((c,) for c in counts), strict=True)), 0))
            return out

        signals_values = values(1, 97) if varied else values(5, 1)
        signals_value = signals_values[0][0]
        exits_value = pack([(i, (3,)) for i in exits.values()])
        now = utcnow().replace(microsecond=0)
        first = now - timedelta(seconds=ticks)
        batch = []
        for k in range(ticks):
            t = first + timedelta(seconds=k)
            signals_value = signals_values[k % len(signals_values)][0]
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
            sig_minutes = values(60, 31) if varied else values(300, 1)
            exit_minute = pack([(i, (180,)) for i in exits.values()])
            batch = []
            for m in range(minutes):
                at = mark - timedelta(minutes=minutes - m)
                sig_minute = sig_minutes[m % len(sig_minutes)][0]
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
                if feed is Feed.SIGNALS and varied:
                    continue  # /metrics reads signals from ioeventfds, not from here
                db.execute(
                    update(Series)
                    .where(Series.vm_id == vm.id, Series.feed == int(feed))
                    .values(rolled_total=per_minute * minutes)
                )
            db.execute(update(Vm).where(Vm.id == vm.id).values(rolled_up_until=mark))
        db.commit()
        return vm.id, ids


def print_sizes(session_factory) -> None:
    """Stored bytes (table + index) per raw sample and per rolled-up series-minute."""
    from sqlalchemy import func, select

    from benchmarks.loadbench import table_bytes
    from contract.models import Rollup, Sample, Series

    with session_factory() as db:
        conn = db.connection()
        series = db.scalar(select(func.count()).select_from(Series))
        ticks = db.scalar(select(func.count()).select_from(Sample)) // 2  # signals, exits
        minutes = db.scalar(select(func.count()).select_from(Rollup)) // 2
        raw, rolled = table_bytes(conn, "samples"), table_bytes(conn, "rollups")
    print(
        f"{conn.dialect.name}: {raw / (series * ticks):.2f} bytes per raw sample "
        f"({series:,} series x {ticks:,} ticks, all busy), "
        f"{rolled / (series * minutes):.2f} bytes per rolled-up series-minute"
    )


def main(url: str) -> None:
    """Fill the database at `url`, then time the read endpoints."""
    os.environ["IOSIGNAL_DATABASE_URL"] = url
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from app.main import create_app
    from contract.db import get_sessionmaker
    from contract.migrate import upgrade
    from contract.models import Ioeventfd, Sample, Vm

    upgrade(url)
    started = time.perf_counter()
    with get_sessionmaker()() as db:  # a database filled by an earlier run is measured as it is
        vm_id = db.scalar(select(Vm.id).where(Vm.name == "bench"))
        ids = list(db.scalars(select(Ioeventfd.id).where(Ioeventfd.vm_id == vm_id)))
    if vm_id is None:
        vm_id, ids = fill(get_sessionmaker(), rollup_days=ROLLUP_DAYS, varied=True)
        print(
            f"stored {REGS * TICKS:,} raw signal samples and {ROLLUP_DAYS:g} days of rollups "
            f"in {time.perf_counter() - started:.1f} s"
        )
    print_sizes(get_sessionmaker())
    client = TestClient(create_app())

    def timed(what: str, path: str, params: dict | None = None, n: int = 5) -> None:
        best = float("inf")
        for _ in range(n):
            t = time.perf_counter()
            response = client.get(path, params=params)
            best = min(best, time.perf_counter() - t)
            assert response.status_code == 200, response.text
        print(f"{what}: {1000 * best:.0f} ms (best of {n})")

    with get_sessionmaker()() as db:  # ranges end at the newest tick, however old it is
        newest = db.scalar(select(func.max(Sample.taken_at)).where(Sample.vm_id == vm_id))

    def back(span: timedelta) -> dict:
        return {"since": (newest - span).isoformat(), "until": newest.isoformat()}

    rates = f"/api/vms/{vm_id}/ioeventfds/{ids[REGS // 2]}/rates"
    timed("rates over 30 min (raw tier, 1 of 1,000 registrations)", rates, back(MIN * 30))
    timed("rates over 5 min", rates, back(MIN * 5))
    timed("rates over 7 days (minute tier: rollups + raw tail)", rates, back(MIN * 60 * 24 * 7))
    timed("rates over 30 days", rates, back(MIN * 60 * 24 * 30))
    timed("exits over 1 min", f"/api/vms/{vm_id}/exits", back(MIN))
    timed("exits over 30 min", f"/api/vms/{vm_id}/exits", back(MIN * 30))
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
