"""Read-path figures of the API at scale: 1,000 registrations x 2,000 raw ticks (2 M samples).

Run: .venv/bin/python tests/app/bench_api.py sqlite:////tmp/iosignal-bench.db
     (or a URL of an empty PostgreSQL database). Prints timings; asserts nothing about speed.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta

REGS, TICKS = 1000, 2000


def fill(
    session_factory, regs: int = REGS, ticks: int = TICKS, exit_addrs: int = 5
) -> tuple[int, list[int]]:
    """One VM, `regs` active registrations, `ticks` one-second ticks of samples (signals of
    every registration, exits of `exit_addrs` PIO ports from 0x7000)."""
    from sqlalchemy import insert

    from contract.models import ExitSample, Ioeventfd, SignalSample, Vm, utcnow

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
        now = utcnow().replace(microsecond=0)
        for k in range(ticks):
            t = now - timedelta(seconds=ticks - k)
            db.execute(
                insert(SignalSample),
                [{"ioeventfd_id": i, "taken_at": t, "signals": 5, "interval_s": 1.0} for i in ids],
            )
            db.execute(
                insert(ExitSample),
                [
                    {
                        "vm_id": vm.id,
                        "space": "pio",
                        "addr": 0x7000 + j,
                        "len": 2,
                        "taken_at": t,
                        "exits": 3,
                        "interval_s": 1.0,
                    }
                    for j in range(exit_addrs)
                ],
            )
            if k % 200 == 199:
                db.commit()
        db.commit()
        return vm.id, ids


def main(url: str) -> None:
    """Fill the database at `url`, then time the read endpoints."""
    os.environ["IOSIGNAL_DATABASE_URL"] = url
    from fastapi.testclient import TestClient

    from app.main import create_app
    from contract.db import get_sessionmaker
    from contract.migrate import upgrade

    upgrade(url)
    started = time.perf_counter()
    vm_id, ids = fill(get_sessionmaker())
    print(f"inserted {REGS * TICKS:,} signal samples in {time.perf_counter() - started:.1f} s")
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
