"""The host view at fleet scale (issue 19): /api/hosts over 100 hosts x 50 VMs x 20 doorbells.

Fills the database through the observer's real writer (benchmarks/fleetsim.py: every simulated host
an ObservedWriter, its registrations and rollups too), then times each query shape of the Host
view through the app, p50 and p95 of `--repeat` requests, on windows that end at the newest tick
(a database filled earlier is measured as it is). An observed VM's Live page reads (its row,
/exits, the stream's replay) are timed on the first host alone before the rest is written, and
again on the full fleet: the ratio is the fleet's cost to one VM's page.

Run: .venv/bin/python tests/app/bench_hosts.py postgresql+psycopg://postgres@127.0.0.1:54329/hosts
     (an empty database, or one an earlier run filled), or sqlite:////tmp/hosts.db
Prints timings; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import datetime, timedelta

TARGET_MS = 300


def fill(url: str, hosts: range, shape, seconds: int, end: datetime) -> None:
    """`seconds` of 1 s ticks of each host in `hosts`, written by its own ObservedWriter, then
    rolled up as the observer's retention pass would."""
    from benchmarks.fleetsim import SimHost, history
    from contract.db import make_engine
    from observer.retention import roll_up
    from observer.writer import ObservedWriter

    engine = make_engine(url)
    started = end - timedelta(seconds=seconds + 60)
    t = time.perf_counter()
    for i in hosts:
        host = SimHost(i, shape, started)
        writer = ObservedWriter(engine, host.name, started_at=started + timedelta(seconds=30))
        for n, tick in enumerate(history(host, seconds, end), 1):
            writer.put(tick)
            if n % 50 == 0:
                assert writer.flush()
        assert writer.flush()
        roll_up(engine, host.name, end)
        if i % 10 == 9:
            print(f"  {i + 1} hosts written, {time.perf_counter() - t:.0f} s", flush=True)
    engine.dispose()


def timed(client, path: str, params: dict, repeat: int) -> tuple[float, float]:
    """p50 and p95 in ms of `repeat` GETs (after one unmeasured request)."""
    client.get(path, params=params)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        response = client.get(path, params=params)
        times.append(1000 * (time.perf_counter() - t))
        assert response.status_code == 200, response.text
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]


def live_page(client, vm_id: int, window: dict, repeat: int) -> dict[str, tuple[float, float]]:
    """An observed VM's Live page reads: its row, /exits over 10 s and 1 min, the stream."""
    ten_s = window(timedelta(seconds=10))
    return {
        "vm row": timed(client, f"/api/vms/{vm_id}", {}, repeat),
        "/exits over 10 s": timed(client, f"/api/vms/{vm_id}/exits", ten_s, repeat),
        "/exits over 1 min": timed(
            client, f"/api/vms/{vm_id}/exits", window(timedelta(minutes=1)), repeat
        ),
        "stream replay, 60 ticks": timed(
            client, "/api/stream", {"vm_id": vm_id, "last_event_id": 0, "max_events": 60}, repeat
        ),
    }


SHAPES = {
    "by host, page 1": {},
    "by host, page 60": {"page": 60},
    "one host": {"host": "fleet-0007"},
    "by writes/s": {"sort": "writes"},
    "by userspace exits/s, page 30": {"sort": "userspace", "page": 30},
    "by in-kernel share, asc": {"sort": "share", "order": "asc"},
    "search host": {"q": "fleet-0042"},
    "search comm, by writes/s": {"q": "firecracker", "sort": "writes"},
    "search pid": {"q": "10025"},
    "search address": {"q": "0xfe003000", "sort": "userspace"},
    "observed only, 200 a page": {"kind": "observed", "per_page": 200},
}
WINDOWS = {"10 s": timedelta(seconds=10), "1 min": timedelta(minutes=1)}
LONG = {"5 min (raw)": timedelta(minutes=5), "1 h (minute tier)": timedelta(hours=1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--vms", type=int, default=50)
    parser.add_argument("--doorbells", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=120, help="history written per host")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ["IOSIGNAL_DATABASE_URL"] = args.url
    from fastapi.testclient import TestClient
    from sqlalchemy import func, select

    from app.main import create_app
    from benchmarks.fleetsim import FleetShape
    from contract.db import get_sessionmaker
    from contract.migrate import upgrade
    from contract.models import Feed, Sample, Vm, utcnow

    upgrade(args.url)
    shape = FleetShape(args.hosts, args.vms, args.doorbells)
    client = TestClient(create_app())
    sessions = get_sessionmaker()

    def newest() -> datetime | None:
        with sessions() as db:
            return db.scalar(
                select(func.max(Sample.taken_at)).where(Sample.feed == int(Feed.OBSERVED))
            )

    def window_ending(at: datetime):
        return lambda span: {"since": (at - span).isoformat(), "until": at.isoformat()}

    def first_vm() -> int:
        with sessions() as db:
            return db.scalar(select(func.min(Vm.id)).where(Vm.host == "fleet-0000"))

    baseline = None
    if newest() is None:
        end = utcnow().replace(microsecond=0)
        print(
            f"filling: {shape.hosts} hosts x {shape.vms} VMs x {shape.doorbells} doorbells, "
            f"{args.seconds} s of 1 s ticks each, through the observer's writer"
        )
        t = time.perf_counter()
        fill(args.url, range(1), shape, args.seconds, end)
        baseline = live_page(client, first_vm(), window_ending(end), args.repeat)
        fill(args.url, range(1, shape.hosts), shape, args.seconds, end)
        print(f"filled in {time.perf_counter() - t:.0f} s")
    at = newest()
    assert at is not None
    window = window_ending(at)
    with sessions() as db:
        rows = db.scalar(select(func.count()).select_from(Sample))
        vms = db.scalar(select(func.count()).select_from(Vm))
    print(
        f"{vms:,} VMs, {rows:,} sample rows; load average {os.getloadavg()[0]:.1f}; "
        f"p50 / p95 of {args.repeat} requests, ms (target p95 <= {TARGET_MS})"
    )
    print(f"{'GET /api/hosts':44} {'p50':>7} {'p95':>7}")
    worst = 0.0
    for wname, span in WINDOWS.items():
        for name, params in SHAPES.items():
            p50, p95 = timed(client, "/api/hosts", window(span) | params, args.repeat)
            worst = max(worst, p95)
            print(f"{name + ', ' + wname:44} {p50:7.0f} {p95:7.0f}", flush=True)
    for wname, span in LONG.items():
        p50, p95 = timed(client, "/api/hosts", window(span) | {"sort": "writes"}, args.repeat)
        print(f"{'by writes/s, ' + wname:44} {p50:7.0f} {p95:7.0f}", flush=True)
    print(f"worst p95 over 10 s and 1 min windows: {worst:.0f} ms")
    # The baseline, in the same run: every VM and its doorbells in one answer, as /api/hosts
    # answered before it had pages (read here with this change's batched reads: a lower bound).
    from app.api.hosts import listing
    from app.api.samples.window import window_for

    ten_s = window(WINDOWS["10 s"])
    with sessions() as db:
        t = time.perf_counter()
        every = listing.page(
            db,
            window_for(ten_s["since"], ten_s["until"]),
            shown_after=at - timedelta(hours=1),
            host=None,
            kind=None,
            q=None,
            sort="host",
            order="asc",
            number=1,
            per_page=10**6,
        )
        whole = 1000 * (time.perf_counter() - t)
    page_one = timed(client, "/api/hosts", ten_s, args.repeat)[0]
    print(
        f"every VM in one answer (the unpaged shape), 10 s: {whole:.0f} ms for "
        f"{len(every.vms):,} VMs; page 1 by host: {page_one:.0f} ms, {whole / page_one:.0f}x less"
    )
    print("an observed VM's Live page reads, ms   p50 / p95 fleet   p50 / p95 one host   ratio")
    for name, (p50, p95) in live_page(client, first_vm(), window, args.repeat).items():
        base = baseline[name] if baseline else None
        one = (
            f"{base[0]:7.1f} {base[1]:7.1f}   {p50 / base[0]:5.2f}x"
            if base
            else "  (filled earlier)"
        )
        print(f"{name:38} {p50:7.1f} {p95:7.1f}   {one}")


if __name__ == "__main__":
    main()
