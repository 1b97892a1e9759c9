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

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import OperationalError

from contract.db import make_engine
from contract.migrate import upgrade
from contract.models import Ioeventfd, RegState, SignalSample
from worker import retention, store
from worker.handle import MachineHandle
from worker.ticker import Ticker
from worker.workload import Doorbell
from worker.writer import SampleWriter

PIO_BASE, MMIO_BASE = 0x1000, 0xE000_0000


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


def bytes_per_sample(engine: Engine) -> dict:
    """Stored bytes per raw signal sample (table + its indexes), and the row count."""
    with engine.connect() as conn:
        rows, signals = conn.execute(
            select(text("count(*)"), text("coalesce(sum(signals), 0)")).select_from(SignalSample)
        ).one()
        if engine.dialect.name == "sqlite":
            size = conn.execute(
                text("SELECT sum(pgsize) FROM dbstat WHERE name = 'signal_samples'")
            ).scalar()
        else:
            size = conn.execute(text("SELECT pg_total_relation_size('signal_samples')")).scalar()
    return {
        "rows": rows,
        "signals": int(signals),
        "bytes": size or 0,
        "bytes_per_sample": round((size or 0) / max(rows, 1), 1),
    }


def _reader(url: str, vm_id: int, duration_s: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "worker.storebench", url, str(vm_id), str(duration_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"IOSIGNAL_LOG_LEVEL": "warning"},
    )


def run_loadbench(
    database_url: str | None,
    registrations: int = 1000,
    duration_s: float = 600.0,
    interval_s: float = 1.0,
    kvm_path: str = "/dev/kvm",
    progress: Callable[[float], None] | None = None,
) -> dict:
    """Run the load for `duration_s`; returns the figures `iosignal loadbench` prints."""
    from worker.machine import Machine

    tmp = None
    if database_url is None:
        tmp = tempfile.TemporaryDirectory(prefix="iosignal-loadbench-")
        database_url = f"sqlite:///{Path(tmp.name) / 'load.db'}"
    upgrade(database_url)
    engine = make_engine(database_url)
    machine = Machine(kvm_path)
    machine.start()
    try:
        vm_id = _setup(engine, machine, registrations)
        writer = SampleWriter(engine, vm_id, after_flush=_retention(engine, vm_id))
        ticker = Ticker(machine.collect, writer.put, interval_s)
        reader = _reader(database_url, vm_id, duration_s)
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
        read = json.loads(reader.communicate(timeout=60)[0] or "{}")
        size = bytes_per_sample(engine)
        _cleanup(engine, vm_id)
        return {
            "database": engine.dialect.name,
            "registrations": registrations,
            "interval_s": ticker.interval_s,
            "duration_s": round(wall, 1),
            "cpu_percent_one_core": round(100 * (ticker.cpu_s + writer.cpu_s) / wall, 2),
            "ticker_cpu_s": round(ticker.cpu_s, 3),
            "writer_cpu_s": round(writer.cpu_s, 3),
            "ticks": ticker.ticks,
            "ticks_missed": ticker.missed,
            "samples_written": writer.written,
            "samples_dropped": writer.dropped,
            "transactions": writer.transactions,
            "write_errors": writer.errors,
            "lock_errors": writer.lock_errors + read.get("lock_errors", 0),
            "reader": read,
            "machine_state": machine.state,
            **size,
        }
    finally:
        machine.close()
        engine.dispose()
        if tmp is not None:
            tmp.cleanup()


def _cleanup(engine: Engine, vm_id: int) -> None:
    # Leave the database as we found it. Explicit deletes, time-first tables: one scan each
    # instead of a cascade probing signal_samples once per registration.
    regs = "SELECT id FROM ioeventfds WHERE vm_id = :vm"
    with engine.begin() as conn:
        for sql in (
            f"DELETE FROM signal_samples WHERE ioeventfd_id IN ({regs})",
            f"DELETE FROM signal_rollups WHERE ioeventfd_id IN ({regs})",
            "DELETE FROM exit_samples WHERE vm_id = :vm",
            "DELETE FROM exit_rollups WHERE vm_id = :vm",
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


def reader_main(url: str, vm_id: int, duration_s: float) -> None:
    """The app's side: each second read the newest tick's rates, every 5 s write a label."""
    engine = make_engine(url)
    newest = text(
        "SELECT s.ioeventfd_id, s.signals, s.interval_s FROM signal_samples s "
        "JOIN ioeventfds i ON i.id = s.ioeventfd_id WHERE i.vm_id = :vm AND "
        "s.taken_at = (SELECT max(taken_at) FROM signal_samples)"
    )
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
                conn.execute(newest, {"vm": vm_id}).all()
            stats["read_ms_max"] = max(stats["read_ms_max"], 1000 * (time.perf_counter() - t))
            stats["reads"] += 1
            if k % 5 == 0:
                with engine.begin() as conn:
                    conn.execute(label, {"vm": vm_id, "l": f"load {k}"})
                stats["writes"] += 1
        except OperationalError as exc:
            stats["lock_errors" if "locked" in str(exc.orig) else "errors"] += 1
        k += 1
        time.sleep(1.0)
    engine.dispose()
    print(json.dumps(stats))


if __name__ == "__main__":
    reader_main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))


def cli_loadbench(
    registrations: int,
    duration_s: float,
    interval_s: float,
    database_url: str | None,
    *,
    json_out: bool = False,
) -> int:
    """`iosignal loadbench`: run with a progress bar and print the figures; the exit code."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from contract.config import get_settings

    console = Console(stderr=json_out)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"{registrations} registrations", total=1.0)
        result = run_loadbench(
            database_url,
            registrations,
            duration_s,
            interval_s,
            get_settings().kvm_path,
            progress=lambda f: bar.update(task, completed=f),
        )
    if json_out:
        print(json.dumps(result))
        return 0
    table = Table(title=f"loadbench on {result['database']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "registrations",
        "interval_s",
        "duration_s",
        "cpu_percent_one_core",
        "ticker_cpu_s",
        "writer_cpu_s",
        "ticks",
        "ticks_missed",
        "samples_written",
        "samples_dropped",
        "transactions",
        "write_errors",
        "lock_errors",
        "rows",
        "bytes",
        "bytes_per_sample",
        "machine_state",
    ):
        value = result[key]
        table.add_row(key, f"{value:.3g}" if isinstance(value, float) else str(value))
    table.add_row("app-side reader", json.dumps(result["reader"]))
    console.print(table)
    return 0
