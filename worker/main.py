"""`iosignal worker`: own one KVM VM and keep it equal to what the database asks for.

Threads: control (reconcile on NOTIFY/poll, heartbeat, benchmarks), ticker (collect samples),
writer (persist them, rollups, retention). The main thread only waits for SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from contract.config import Settings, get_settings
from contract.db import make_engine
from contract.models import VmState, WorkerHealth
from daemon.dberrors import reason
from daemon.retention import retention_hook
from daemon.signals import install_signal_handlers
from daemon.ticker import Ticker
from worker import hostinfo, retention, store
from worker.control import Control, until_db
from worker.handle import MachineHandle
from worker.writer import SampleWriter, batch_seconds

log = logging.getLogger("iosignal.worker")


def _start(
    name: str, target: Callable[[threading.Event], None], ev: threading.Event
) -> threading.Thread:
    thread = threading.Thread(target=target, args=(ev,), name=name, daemon=True)
    thread.start()
    return thread


def worker_health(ticker: Ticker, writer: SampleWriter) -> WorkerHealth:
    """The counters the heartbeat stores: ticks skipped, samples dropped, SQLite lock errors."""
    return WorkerHealth(
        missed_ticks=ticker.missed, dropped_samples=writer.dropped, lock_errors=writer.lock_errors
    )


def serve(settings: Settings, machine: MachineHandle, engine: Engine, stop: threading.Event) -> int:
    """Claim the VM row, apply everything, then run the threads until `stop`."""
    info = {**machine.info(), **hostinfo.flavour()}
    claim = partial(store.claim_vm, engine, settings.vm_name, info, settings.heartbeat_timeout_s)
    try:
        vm_id = until_db(stop, "claim VM row", claim)
    except store.VmInUse as exc:
        log.error("%s", exc)
        return 1
    if vm_id is None:
        return 0
    writer = SampleWriter(
        engine,
        vm_id,
        after_flush=retention_hook(
            "retention",
            lambda newest: retention.run(
                engine, vm_id, newest, settings.raw_retention_h, settings.rollup_retention_d
            ),
            log,
        ),
        batch_s=batch_seconds(settings.sample_interval_s),
    )
    ticker = Ticker(machine.collect, writer.put, settings.sample_interval_s)
    health = partial(worker_health, ticker, writer)
    control = Control(settings, engine, machine, vm_id, health)
    if until_db(stop, "apply desired state", control.reconciler.apply_all) is None:
        return 0
    log.info("VM %r (id %d) running, pid %d", settings.vm_name, vm_id, os.getpid())
    stop_ticker, stop_writer = threading.Event(), threading.Event()
    threads = [
        _start("control", control.run, stop),
        _start("ticker", ticker.run, stop_ticker),
        _start("writer", writer.run, stop_writer),
    ]
    while not stop.wait(0.5):
        pass
    threads[0].join(10)
    stop_ticker.set()  # its last collect goes to the writer before the writer's last flush
    threads[1].join(10)
    stop_writer.set()
    threads[2].join(15)
    control.jobs.join(0)
    try:
        store.heartbeat(engine, vm_id, VmState.STOPPED, health=health())
        store.worker_event(engine, vm_id, "stop")
    except SQLAlchemyError as exc:
        log.error("could not mark the VM stopped: %s", reason(exc))
    log.info(
        "stopped: %d ticks (%d missed), %d samples written, %d dropped",
        ticker.ticks,
        ticker.missed,
        writer.written,
        writer.dropped,
    )
    return 0


def _report_failed_start(settings: Settings, error: str) -> None:
    # One attempt: the dashboard then says why this VM is down instead of only "no heartbeat".
    engine = make_engine(settings.database_url)
    try:
        vm_id = store.claim_vm(engine, settings.vm_name, {}, settings.heartbeat_timeout_s)
        store.heartbeat(engine, vm_id, VmState.FAILED, error)
        store.worker_event(engine, vm_id, "failed")
    except (SQLAlchemyError, store.VmInUse):
        pass  # unreachable, or the name belongs to a live worker: leave its row alone
    finally:
        engine.dispose()


def main() -> int:
    """Run the worker until SIGTERM/SIGINT; the exit code for `iosignal worker`."""
    from worker.machine import Machine

    settings = get_settings()
    stop = threading.Event()
    install_signal_handlers(stop, log)
    machine = Machine(settings.kvm_path)
    try:
        machine.start()
    except (OSError, RuntimeError) as exc:
        log.error("cannot start the VM: %s", exc)
        _report_failed_start(settings, str(exc))
        return 1
    engine = make_engine(settings.database_url)
    try:
        return serve(settings, machine, engine, stop)
    finally:
        machine.close()
        engine.dispose()
