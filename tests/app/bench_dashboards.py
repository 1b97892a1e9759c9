"""Panel data at scale (issue 12): 1,000 registrations with 1 h of 1 s samples (3.6 M signal
samples), rolled up per minute as the worker does (every whole minute before the newest sample;
the last minute stays raw), and a dashboard of 8 panels x 24 series. The ranges read end at the
newest sample, so "-1h" reads exactly the hour stored however long the filling took.

Run: .venv/bin/python tests/app/bench_dashboards.py sqlite:////tmp/iosignal-dash.db
     (or the URL of an empty PostgreSQL database); run it again on the same database to measure
     without filling it again. Prints the latency of one `/data` request against the 300 ms
     target, and against the baseline of asking `/rates` once per series; asserts only that
     the values are the ones stored, nothing about speed.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta

from bench_api import fill

REGS, TICKS, EXIT_ADDRS = 1000, 3600, 24
PANELS, SERIES = 8, 24
TARGET_MS = 300.0


def dashboard(vm_id: int, ids: list[int]) -> dict:
    """6 signals panels (two summed) over 144 registrations spread across all, 2 exits panels."""
    stride = len(ids) // (6 * SERIES)
    panels = []
    for p in range(6):
        refs = [{"ioeventfd_id": ids[(p * SERIES + s) * stride]} for s in range(SERIES)]
        aggregate = "sum" if p in (2, 5) else "none"
        panels.append(
            {"title": f"signals {p}", "metric": "signals", "series": refs}
            | {"aggregate": aggregate}
        )
    exits = [
        {"vm_id": vm_id, "space": "pio", "addr": 0x7000 + j, "len": 2} for j in range(EXIT_ADDRS)
    ]
    panels.append({"title": "exits", "metric": "exits", "series": exits})
    panels.append({"title": "exits max", "metric": "exits", "series": exits, "aggregate": "max"})
    assert len(panels) == PANELS
    return {"name": "bench", "slug": "bench", "range": {"since": "-1h"}, "panels": panels}


def check_values(body: dict) -> None:
    """Every point is what was stored: 5 signals and 3 exits per 1-second tick."""
    for panel in body["panels"]:
        per_series = 5.0 * (SERIES if panel["title"] in ("signals 2", "signals 5") else 1)
        want = 3.0 if panel["metric"] == "exits" else per_series
        for series in panel["series"]:
            assert "missing" not in series and series["v"], series["name"]
            inner = series["v"][1:-1]  # the range's first and last buckets are partial
            assert all(abs(v - want) < 1e-6 for v in inner), (series["name"], inner[:5])


def timed(call, n: int) -> list[float]:
    """Milliseconds of `n` calls."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append(1000 * (time.perf_counter() - started))
    return out


def main(url: str) -> None:
    """Fill the database at `url`, roll it up, then time `/data` and the per-series baseline."""
    os.environ["IOSIGNAL_DATABASE_URL"] = url
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from app.main import create_app
    from contract.db import get_engine, get_sessionmaker
    from contract.migrate import upgrade
    from contract.models import Ioeventfd, Sample, Vm
    from worker.retention import roll_up

    upgrade(url)
    started = time.perf_counter()
    with get_sessionmaker()() as db:
        vm_id = db.scalar(select(Vm.id).where(Vm.name == "bench"))
    if vm_id is None:  # a database filled by an earlier run is measured again as it is
        vm_id, _ = fill(get_sessionmaker(), REGS, TICKS, EXIT_ADDRS)
    with get_sessionmaker()() as db:
        ids = list(
            db.scalars(select(Ioeventfd.id).where(Ioeventfd.vm_id == vm_id).order_by(Ioeventfd.id))
        )
        newest = db.scalar(select(func.max(Sample.taken_at)).where(Sample.vm_id == vm_id))
    roll_up(get_engine(), vm_id, newest)  # what the worker's writer does once a minute
    print(
        f"{get_engine().dialect.name}: {REGS:,} registrations x {TICKS:,} ticks stored and "
        f"rolled up in {time.perf_counter() - started:.0f} s"
    )
    client = TestClient(create_app())
    client.delete("/api/dashboards/bench")
    assert client.post("/api/dashboards", json=dashboard(vm_id, ids)).status_code == 201
    url_data = "/api/dashboards/bench/data"

    def span(minutes: int) -> dict:
        since = newest - timedelta(minutes=minutes)
        return {"since": since.isoformat(), "until": newest.isoformat()}

    for minutes in (60, 30, 15):
        body = client.get(url_data, params=span(minutes)).json()
        check_values(body)
        ms = timed(lambda m=minutes: client.get(url_data, params=span(m)), 7)
        points = sum(len(s["t"]) for p in body["panels"] for s in p["series"])
        print(
            f"/data over {minutes} min ({body['tier']} tier, step {body['step_s']:g} s, "
            f"{points:,} points): best "
            f"{min(ms):.0f} ms, median {statistics.median(ms):.0f} ms "
            f"({statistics.median(ms) / TARGET_MS:.2f} of the {TARGET_MS:.0f} ms target)"
        )
    refs = [r["ioeventfd_id"] for p in dashboard(vm_id, ids)["panels"][:6] for r in p["series"]]

    def per_series() -> None:
        for reg_id in refs:
            client.get(f"/api/vms/{vm_id}/ioeventfds/{reg_id}/rates", params=span(60))

    base = statistics.median(timed(per_series, 3))
    one = statistics.median(timed(lambda: client.get(url_data, params=span(60)), 7))
    print(
        f"baseline, /rates once per signals series ({len(refs)} requests, 60 min): {base:.0f} ms; "
        f"/data for all 8 panels: {one:.0f} ms ({base / one:.1f}x faster)"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:////tmp/iosignal-dash.db")
