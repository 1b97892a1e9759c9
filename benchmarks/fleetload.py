"""`iosignal loadbench --hosts N`: N simulated observers x M VMs x K doorbells into one database.

Each host is what `iosignal observe` runs, minus BPF: the daemons' Ticker at `--interval`, the
observer's real ObservedWriter on its own thread (with the observer's rollup and retention pass),
its ticks made by benchmarks/fleetsim.py. Hosts are spread over `--processes` processes (one Python
process holds one core at most). A measurement command, not a test: it prints missed ticks
(skipped by the ticker, written later than one interval, dropped, or never written), database
rows/s and bytes/day, and the writer thread's CPU per host as a share of one core; with
`--steps 25,50,100` it runs each host count in turn and names the knee, the first count at
which ticks are missed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.fleetsim import FleetShape, SimHost, process_start
from contract.config import get_settings
from contract.migrate import upgrade
from daemon.retention import retention_hook
from daemon.ticker import Ticker
from observer import retention
from observer.writer import ObservedWriter

log = logging.getLogger("iosignal.fleetload")
# Connections a child process shares among its hosts' writers (an observer has its own; the
# server here allows 100 and other work uses some, so two processes share 70).
POOL_PER_PROCESS = 35
WARMUP = timedelta(seconds=10)  # ticks before it make every VM's row and series: counted apart


class TimedWriter(ObservedWriter):
    """The observer's writer, noting how long after its tick each tick was committed."""

    def __init__(self, *args: Any, interval_s: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.interval_s = interval_s
        self.warm_at = datetime.now(UTC) + WARMUP
        self.late = self.late_warming = 0
        self.lags: list[float] = []

    def _write(self, chunk: list[Any]) -> None:
        super()._write(chunk)
        now = datetime.now(UTC)
        for tick in chunk:
            lag = (now - tick.taken_at).total_seconds()
            if tick.taken_at < self.warm_at:  # its VMs' rows and series are made then
                self.late_warming += lag > self.interval_s
                continue
            self.lags.append(lag)
            self.late += lag > self.interval_s


def _pass(engine: Any, host: str, settings: Any) -> Any:
    """The observer's retention pass for one host (as observer/main.py hooks it)."""
    raw_h, rollup_d = settings.raw_retention_h, settings.rollup_retention_d
    return lambda newest: retention.run(engine, host, newest, raw_h, rollup_d)


def _collect(sim: SimHost, interval: float) -> Any:
    """The host's sampler: this tick's counts, as BPF would have counted them."""
    return lambda: sim.tick(datetime.now(UTC), interval)


def run_child(
    url: str, shape: FleetShape, hosts: list[int], seconds: float, interval: float
) -> dict:
    """Run `hosts` of the fleet for `seconds`; each host's figures."""
    settings = get_settings()
    # A writer waiting for a connection waits (its lag shows it) instead of failing after 30 s:
    # an observer of its own never shares its connection.
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=POOL_PER_PROCESS, max_overflow=0, pool_timeout=3600
    )
    started = process_start(60)
    sims = [SimHost(i, shape, started) for i in hosts]
    stop_tick, stop_write = threading.Event(), threading.Event()
    parts = []
    for sim in sims:
        prune = retention_hook("observed retention", _pass(engine, sim.name, settings), log)
        writer = TimedWriter(engine, sim.name, after_flush=prune, interval_s=interval)
        ticker = Ticker(_collect(sim, interval), writer.put, interval)
        threads = [
            threading.Thread(target=ticker.run, args=(stop_tick,), daemon=True),
            threading.Thread(target=writer.run, args=(stop_write,), daemon=True),
        ]
        parts.append((sim, ticker, writer, threads))
    for _, _, _, threads in parts:
        for t in threads:
            t.start()
    time.sleep(seconds)
    stop_tick.set()
    for _, _, _, threads in parts:
        threads[0].join(10)
    stop_write.set()
    for _, _, _, threads in parts:
        threads[1].join(30)
    engine.dispose()
    return {
        sim.name: {
            "ticks": ticker.ticks,
            "ticker_missed": ticker.missed,
            "late": writer.late,
            "late_warming": writer.late_warming,
            "unwritten": len(writer._queue),  # ticks still queued when it stopped
            "dropped": writer.dropped,
            "errors": writer.errors,
            "transactions": writer.transactions,
            "writer_cpu_s": writer.cpu_s,
            "ticker_cpu_s": ticker.cpu_s,  # the simulated BPF side: not the writer's
            "lag_max_s": max(writer.lags, default=0.0),
            "lags": [round(lag, 3) for lag in writer.lags],
        }
        for sim, ticker, writer, _ in parts
    }


def _pg_figures(url: str) -> dict[str, float]:
    """Rows inserted and updated and the database's bytes: before and after a run (the WAL is
    the server's, shared with every other database, so it is not counted)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        ins, upd = conn.execute(
            text("SELECT sum(n_tup_ins), sum(n_tup_upd) FROM pg_stat_user_tables")
        ).one()
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return {"ins": float(ins or 0), "upd": float(upd or 0), "size": float(size)}


def _machine_busy() -> tuple[float, float]:
    with open("/proc/stat") as f:
        cpu = [float(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + cpu[4]
    return sum(cpu) - idle, sum(cpu)


def run_step(url: str, shape: FleetShape, seconds: float, interval: float, processes: int) -> dict:
    """One run of `shape` for `seconds`: every host's figures and the database's, summed."""
    before, busy0 = _pg_figures(url), _machine_busy()
    children = []
    for k in range(processes):
        mine = list(range(k, shape.hosts, processes))
        args = {"url": url, "shape": vars(shape), "hosts": mine, "seconds": seconds}
        command = [
            sys.executable,
            "-m",
            "benchmarks.fleetload",
            "--child",
            json.dumps(args | {"interval": interval}),
        ]
        children.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    hosts: dict[str, dict] = {}
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a fleet process failed (exit {child.returncode})")
        hosts.update(json.loads(out))
    after, busy1 = _pg_figures(url), _machine_busy()
    busy = (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1])
    return {"hosts": hosts, "db": {k: after[k] - before[k] for k in after}, "machine_busy": busy}


def summarize(shape: FleetShape, seconds: float, interval: float, step: dict) -> dict[str, Any]:
    """The run's figures: missed ticks, rows/s, bytes/day, writer CPU per host."""
    hosts = step["hosts"].values()
    total = lambda k: sum(h[k] for h in hosts)  # noqa: E731
    cpu = sorted(h["writer_cpu_s"] / seconds for h in hosts)
    missed = total("ticker_missed") + total("late") + total("dropped") + total("unwritten")
    lags = sorted(lag for h in hosts for lag in h["lags"])
    db = step["db"]
    return {
        "hosts": shape.hosts,
        "vms": shape.hosts * shape.vms,
        "doorbells": shape.hosts * shape.vms * shape.doorbells,
        "seconds": seconds,
        "ticks": total("ticks"),
        "expected_ticks": round(shape.hosts * seconds / interval),
        "missed": missed,
        "ticker_missed": total("ticker_missed"),
        "late": total("late"),
        "late_warming": total("late_warming"),
        "dropped": total("dropped"),
        "unwritten": total("unwritten"),
        "errors": total("errors"),
        "lag_max_s": max((h["lag_max_s"] for h in hosts), default=0.0),
        "lag_p99_s": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
        "rows_inserted_per_s": db["ins"] / seconds,
        "rows_updated_per_s": db["upd"] / seconds,
        "bytes_per_day": db["size"] / seconds * 86400,
        "writer_cpu_per_host_pct": 100 * sum(cpu) / len(cpu),
        "writer_cpu_per_host_max_pct": 100 * cpu[-1],
        "simulator_cpu_pct": 100 * total("ticker_cpu_s") / seconds,
        "machine_busy_pct": 100 * step["machine_busy"],
    }


def _print(s: dict[str, Any]) -> None:
    print(
        f"{s['hosts']:>5} hosts {s['vms']:>6} VMs {s['doorbells']:>8} doorbells, "
        f"{s['seconds']:.0f} s: "
        f"{s['missed']} of {s['expected_ticks']} ticks missed (ticker {s['ticker_missed']}, "
        f"written late "
        f"{s['late']}, dropped {s['dropped']}, unwritten {s['unwritten']}); late in the first 10 s "
        f"{s['late_warming']}; commit lag p99 "
        f"{s['lag_p99_s']:.2f} s, max {s['lag_max_s']:.2f} s\n"
        f"      rows/s inserted {s['rows_inserted_per_s']:,.0f}, updated "
        f"{s['rows_updated_per_s']:,.0f}; database +{s['bytes_per_day'] / 1e9:,.1f} GB/day; "
        f"writer CPU per host "
        f"{s['writer_cpu_per_host_pct']:.2f}% of a core "
        f"(max {s['writer_cpu_per_host_max_pct']:.2f}%); "
        f"simulated samplers {s['simulator_cpu_pct']:.0f}% of a core; "
        f"machine {s['machine_busy_pct']:.0f}% busy, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )


def cli_fleetload(
    url: str | None,
    shape: FleetShape,
    seconds: float,
    interval: float,
    steps: list[int],
    processes: int,
    json_out: bool,
) -> int:
    """The command: one run, or one per step of host counts; prints each and the knee."""
    if not url or not url.startswith("postgresql"):
        print(
            "loadbench --hosts needs --database-url of a PostgreSQL database (the fleet's "
            "central store); SQLite takes one writer at a time",
            file=sys.stderr,
        )
        return 2
    upgrade(url)
    runs = []
    for hosts in steps or [shape.hosts]:
        step_shape = FleetShape(hosts, shape.vms, shape.doorbells)
        step = run_step(url, step_shape, seconds, interval, min(processes, hosts))
        runs.append(summarize(step_shape, seconds, interval, step))
        if not json_out:
            _print(runs[-1])
    knee = next((r["hosts"] for r in runs if r["missed"]), None)
    if json_out:
        print(json.dumps({"runs": runs, "knee_hosts": knee}))
    elif len(runs) > 1:
        found = f"ticks missed from {knee} hosts on" if knee else "none: no tick missed at any step"
        print(f"knee: {found}")
    return 0


def _child() -> None:
    args = json.loads(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    shape = FleetShape(**args["shape"])
    out = run_child(args["url"], shape, args["hosts"], args["seconds"], args["interval"])
    print(json.dumps(out))


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    _child()
