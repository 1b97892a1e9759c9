"""`iosignal loadbench`: N registrations sampled on a real VM, written to SQLite or PostgreSQL.

Runs the worker's own ticker and writer threads (with rollups/retention) against a real Machine
whose guest rings every registration, while a second process reads and writes the database the
way the app does. Prints CPU % of one core used by ticker + writer, ticks missed, lock errors and
bytes per stored sample. A measurement command, not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import OperationalError

from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Feed, Ioeventfd, RegState, Rollup, Sample, Series, Vm
from contract.samples import decode
from daemon.ticker import Ticker
from worker import retention, store
from worker.handle import MachineHandle
from worker.workload import Doorbell
from worker.writer import SampleWriter, batch_seconds

PIO_BASE, MMIO_BASE = 0x1000, 0xE000_0000


# Each VM's figures that a fleet run adds up (and the table prints in this order).
_SUMMED = (
    "ticker_cpu_s",
    "writer_cpu_s",
    "ticks",
    "ticks_missed",
    "samples_written",
    "samples_dropped",
    "transactions",
    "write_errors",
    "lock_errors",
)


def _addresses(n: int) -> list[tuple[str, int]]:
    # Half PIO, half MMIO: each KVM bus holds a limited number of devices (1,000 on many kernels).
    return [
        ("pio", PIO_BASE + i // 2) if i % 2 == 0 else ("mmio", MMIO_BASE + 4 * (i // 2))
        for i in range(n)
    ]


def _setup(engine: Engine, machine: MachineHandle, n: int) -> int:
    vm_id = store.claim_vm(engine, f"loadbench-{os.getpid()}", machine.info())
    rows = [
        {
            "vm_id": vm_id,
            "space": s,
            "addr": a,
            "len": 4 if s == "mmio" else 2,
            "state": RegState.ACTIVE.value,
            "label": f"load {i}",
        }
        for i, (s, a) in enumerate(_addresses(n))
    ]
    with engine.begin() as conn:
        conn.execute(insert(Ioeventfd), rows)
        ids = conn.execute(
            select(Ioeventfd.id, Ioeventfd.space, Ioeventfd.addr, Ioeventfd.len).where(
                Ioeventfd.vm_id == vm_id
            )
        ).all()
    for rid, space, addr, length in ids:
        machine.register(rid, space, addr, length, None)
    # Every registration rings at 1 Hz: each tick updates every signals_total (the worst case).
    machine.set_workload([Doorbell(s, a, ln, 1, 1.0) for _, s, a, ln in ids])
    return vm_id


def table_bytes(conn: Any, table: str) -> int:
    """Bytes of a table with its indexes (its primary key's too)."""
    if conn.dialect.name == "sqlite":
        sql = (
            "SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master"
            f" WHERE tbl_name = '{table}')"
        )
    else:  # heap, TOAST and every index
        sql = f"SELECT pg_total_relation_size('{table}')"
    return int(conn.execute(text(sql)).scalar() or 0)


def bytes_per_sample(engine: Engine) -> dict:
    """Stored bytes of the raw tier (table + index) per sample of the signals feed: per series
    and tick (every registration sampled, as the old layout stored them) and per busy sample;
    and of the rollups per series-minute."""
    series = series_ticks = busy = signals = minutes = 0
    with engine.connect() as conn:
        per_vm = dict(
            conn.execute(
                select(Series.vm_id, func.count())
                .where(Series.feed == int(Feed.SIGNALS))
                .group_by(Series.vm_id)
            ).all()
        )
        series = sum(per_vm.values())
        raw = select(Sample.vm_id, Sample.taken_at, Sample.counts).where(
            Sample.feed == int(Feed.SIGNALS)
        )
        for vm_id, at, value in conn.execute(raw):
            packed = decode(vm_id, Feed.SIGNALS, at, value)
            series_ticks += per_vm.get(vm_id, 0)
            busy += len(packed)
            signals += sum(packed.counts)
        rolled = select(Rollup.vm_id, Rollup.minute_at, Rollup.counts)
        for vm_id, at, value in conn.execute(rolled.where(Rollup.feed == int(Feed.SIGNALS))):
            minutes += len(decode(vm_id, Feed.SIGNALS, at, value))
        size, rollup_size = table_bytes(conn, "samples"), table_bytes(conn, "rollups")
    return {
        "series": series,
        "rows": series_ticks,
        "busy_samples": busy,
        "signals": signals,
        "bytes": size,
        "bytes_per_sample": round(size / max(series_ticks, 1), 2),
        "bytes_per_busy_sample": round(size / max(busy, 1), 2),
        "rollup_series_minutes": minutes,
        "rollup_bytes": rollup_size,
        "rollup_bytes_per_series_minute": round(rollup_size / minutes, 2) if minutes else None,
    }


def _reader(url: str, duration_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadbench", "reader", url, str(duration_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"IOSIGNAL_LOG_LEVEL": "warning"},
    )


def run_vm(
    database_url: str,
    registrations: int,
    duration_s: float,
    interval_s: float,
    kvm_path: str = "/dev/kvm",
    progress: Callable[[float], None] | None = None,
) -> dict:
    """One VM's worker side: a real VM ringing `registrations` doorbells, its ticker and writer
    (with rollups and retention) for `duration_s`; its figures, its rows left in place."""
    from worker.machine import Machine

    engine = make_engine(database_url)
    machine = Machine(kvm_path)
    machine.start()
    try:
        vm_id = _setup(engine, machine, registrations)
        writer = SampleWriter(
            engine,
            vm_id,
            after_flush=_retention(engine, vm_id),
            batch_s=batch_seconds(interval_s),
        )
        ticker = Ticker(machine.collect, writer.put, interval_s)
        stop_t, stop_w = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=ticker.run, args=(stop_t,)),
            threading.Thread(target=writer.run, args=(stop_w,)),
        ]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        while (elapsed := time.monotonic() - t0) < duration_s:
            if progress:
                progress(elapsed / duration_s)
            time.sleep(min(0.5, duration_s - elapsed))
        stop_t.set()
        threads[0].join()
        stop_w.set()
        threads[1].join()
        wall = time.monotonic() - t0
        return {
            "vm_id": vm_id,
            "interval_s": ticker.interval_s,
            "duration_s": round(wall, 1),
            "cpu_s": ticker.cpu_s + writer.cpu_s,
            "ticker_cpu_s": round(ticker.cpu_s, 3),
            "writer_cpu_s": round(writer.cpu_s, 3),
            "ticks": ticker.ticks,
            "ticks_missed": ticker.missed,
            "samples_written": writer.written,
            "samples_dropped": writer.dropped,
            "transactions": writer.transactions,
            "write_errors": writer.errors,
            "lock_errors": writer.lock_errors,
            "machine_state": machine.state,
        }
    finally:
        machine.close()
        engine.dispose()


def _fleet(
    url: str, vms: int, registrations: int, duration_s: float, interval_s: float, kvm_path: str
) -> list[dict]:
    """`vms` worker processes at once, each one `run_vm`; their figures."""
    args = [url, str(registrations), str(duration_s), str(interval_s), kvm_path]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadbench", "vm", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"IOSIGNAL_LOG_LEVEL": "warning"},
        )
        for _ in range(vms)
    ]
    out = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=duration_s + 300)
        if proc.returncode != 0:
            raise RuntimeError(f"a loadbench VM process failed (exit {proc.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def run_loadbench(
    database_url: str | None,
    registrations: int = 1000,
    duration_s: float = 600.0,
    interval_s: float = 1.0,
    kvm_path: str = "/dev/kvm",
    progress: Callable[[float], None] | None = None,
    vms: int = 1,
) -> dict:
    """Run the load for `duration_s` (`vms` VMs' workers at once, one process each when more
    than one); returns the figures `iosignal loadbench` prints."""
    tmp = None
    if database_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="iosignal-loadbench-")
        database_url = f"sqlite:///{Path(tmp.name) / 'load.db'}"
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        reader = _reader(database_url, duration_s)
        t0 = time.monotonic()
        if vms == 1:
            each = [run_vm(database_url, registrations, duration_s, interval_s, kvm_path, progress)]
        else:
            each = _fleet(database_url, vms, registrations, duration_s, interval_s, kvm_path)
        wall = time.monotonic() - t0
        read = json.loads(reader.communicate(timeout=60)[0] or "{}")
        size = bytes_per_sample(engine)
        for vm in each:
            _cleanup(engine, vm["vm_id"])
        cpu_s = sum(vm["cpu_s"] for vm in each)
        summed = {key: sum(vm[key] for vm in each) for key in _SUMMED}
        return {
            "database": engine.dialect.name,
            "vms": vms,
            "registrations": registrations,
            "interval_s": each[0]["interval_s"],
            "duration_s": round(max(vm["duration_s"] for vm in each), 1),
            "cpu_percent_one_core": round(100 * cpu_s / max(wall, 1e-9), 2),
            **summed,
            "lock_errors": summed["lock_errors"] + read.get("lock_errors", 0),
            "reader": read,
            "machine_state": ",".join(sorted({str(vm["machine_state"]) for vm in each})),
            **size,
        }
    finally:
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()


def _cleanup(engine: Engine, vm_id: int) -> None:
    # Leave the database as we found it (explicit deletes: no cascade probing per row).
    with engine.begin() as conn:
        for sql in (
            "DELETE FROM samples WHERE vm_id = :vm",
            "DELETE FROM rollups WHERE vm_id = :vm",
            "DELETE FROM series WHERE vm_id = :vm",
            "DELETE FROM ioeventfds WHERE vm_id = :vm",
            "DELETE FROM vms WHERE id = :vm",
        ):
            conn.execute(text(sql), {"vm": vm_id})


def _retention(engine: Engine, vm_id: int) -> Callable:
    last = {"at": time.monotonic()}

    def hook(newest: datetime) -> None:
        if time.monotonic() - last["at"] >= 60:
            last["at"] = time.monotonic()
            retention.run(engine, vm_id, newest, 24.0, 30.0)

    return hook


def reader_main(url: str, duration_s: float) -> None:
    """The app's side: each second read the newest tick of the first load VM (decoded), every
    5 s write a label."""
    engine = make_engine(url)
    first_vm = select(func.min(Vm.id)).where(Vm.name.like("loadbench-%"))
    label = text(
        "UPDATE ioeventfds SET label = :l WHERE id = (SELECT min(id) FROM ioeventfds "
        "WHERE vm_id = :vm)"
    )
    stats = {"reads": 0, "writes": 0, "lock_errors": 0, "errors": 0, "read_ms_max": 0.0}
    end, k = time.monotonic() + duration_s, 0
    while time.monotonic() < end:
        try:
            t = time.perf_counter()
            with engine.connect() as conn:
                vm_id = conn.execute(first_vm).scalar()
                newest = conn.execute(
                    select(Sample.taken_at, Sample.counts)
                    .where(Sample.vm_id == vm_id, Sample.feed == int(Feed.SIGNALS))
                    .order_by(Sample.taken_at.desc())
                    .limit(1)
                ).first()
                if newest is not None:
                    decode(vm_id or 0, Feed.SIGNALS, newest[0], newest[1])
            stats["read_ms_max"] = max(stats["read_ms_max"], 1000 * (time.perf_counter() - t))
            stats["reads"] += 1
            if k % 5 == 0 and vm_id is not None:
                with engine.begin() as conn:
                    conn.execute(label, {"vm": vm_id, "l": f"load {k}"})
                stats["writes"] += 1
        except OperationalError as exc:
            stats["lock_errors" if "locked" in str(exc.orig) else "errors"] += 1
        k += 1
        time.sleep(1.0)
    engine.dispose()
    print(json.dumps(stats))


def cli_loadbench(
    registrations: int,
    duration_s: float,
    interval_s: float,
    database_url: str | None,
    *,
    json_out: bool = False,
    vms: int = 1,
) -> int:
    """`iosignal loadbench`: run with a progress bar and print the figures; the exit code."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from contract.config import get_settings

    console = Console(stderr=json_out)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{vms} x {registrations} registrations", total=1.0)
        result = run_loadbench(
            database_url,
            registrations,
            duration_s,
            interval_s,
            get_settings().kvm_path,
            progress=lambda f: bar.update(task, completed=f),
            vms=vms,
        )
    if json_out:
        print(json.dumps(result))
        return 0
    table = Table(title=f"loadbench on {result['database']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "vms",
        "registrations",
        "interval_s",
        "duration_s",
        "cpu_percent_one_core",
        *_SUMMED,
        "series",
        "rows",
        "busy_samples",
        "bytes",
        "bytes_per_sample",
        "bytes_per_busy_sample",
        "rollup_series_minutes",
        "rollup_bytes_per_series_minute",
        "machine_state",
    ):
        value = result[key]
        table.add_row(key, f"{value:.3g}" if isinstance(value, float) else str(value))
    table.add_row("app-side reader", json.dumps(result["reader"]))
    console.print(table)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "reader":
        reader_main(sys.argv[2], float(sys.argv[3]))
    else:  # "vm": one VM of a fleet (`--vms N`), its figures as one JSON line
        url, regs, dur, interval, kvm = sys.argv[2:7]
        print(json.dumps(run_vm(url, int(regs), float(dur), float(interval), kvm), default=str))
