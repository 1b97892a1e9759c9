"""`iosignal observe`: watch every KVM VM on this host, read-only, into the shared database.

Threads: ticker (discovery + BPF counts each tick) and writer (persist, rollups, retention). The
main thread waits for SIGTERM/SIGINT, then the ticker's last collect is flushed and every program
detached. The observer never opens /dev/kvm and never touches another process's VM.
"""

from __future__ import annotations

import logging
import socket
import threading

from sqlalchemy import Engine

from contract.config import Settings, get_settings
from contract.db import make_engine
from daemon.retention import retention_hook
from daemon.signals import install_signal_handlers
from daemon.ticker import Ticker
from observer import retention
from observer.counter import CountReader, ValueReader
from observer.discovery import Discovery
from observer.ioctls import CallLog
from observer.kvmstats import KvmDebugfs
from observer.preflight import ObserverUnavailable, open_probe
from observer.probe import KvmProbe
from observer.sampler import ObserverSampler
from observer.writer import ObservedWriter

log = logging.getLogger("iosignal.observer")


def observe(settings: Settings, probe: KvmProbe, engine: Engine, stop: threading.Event) -> int:
    """Tick and write until `stop`; the caller owns (and closes) probe and engine."""
    host = socket.gethostname()
    debugfs = KvmDebugfs()
    if debugfs.unavailable:
        log.warning("KVM per-VM totals unavailable: %s", debugfs.unavailable)
    discovery = Discovery(kvm_dir=debugfs.kvm if debugfs.present else None)
    assert probe.counts is not None and probe.values is not None  # else the probe raised
    sampler = ObserverSampler(
        CountReader(probe.counts, probe.recent),
        discovery,
        debugfs,
        values=ValueReader(probe.values, probe.value_slots),
        calls=CallLog(probe) if probe.ioctls is not None else None,
    )
    if probe.ioctls is None and probe.registrations_asked:
        log.warning(
            "no raw_syscalls:sys_enter tracepoint (CONFIG_HAVE_SYSCALL_TRACEPOINTS): counting, "
            "but the VMMs' registrations stay unknown"
        )
    prune = retention_hook(
        "observed retention",
        lambda newest: retention.run(
            engine, host, newest, settings.raw_retention_h, settings.rollup_retention_d
        ),
        log,
    )
    writer = ObservedWriter(engine, host, after_flush=prune)
    ticker = Ticker(sampler.collect, writer.put, settings.sample_interval_s)
    stop_ticker, stop_writer = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=ticker.run, args=(stop_ticker,), name="ticker", daemon=True),
        threading.Thread(target=writer.run, args=(stop_writer,), name="writer", daemon=True),
    ]
    for t in threads:
        t.start()
    log.info("observing every KVM VM on %s (programs on %s)", host, ", ".join(probe.events()))
    while not stop.wait(0.5):
        pass
    stop_ticker.set()  # its last collect reaches the writer before the writer's last flush
    threads[0].join(10)
    stop_writer.set()
    threads[1].join(15)
    log.info(
        "stopped: %d ticks (%d missed), %d samples written, %d dropped, %d unattributed",
        ticker.ticks,
        ticker.missed,
        writer.written,
        writer.dropped,
        sampler.unattributed,
    )
    return 0


def main(registrations: bool = True) -> int:
    """Run the observer until SIGTERM/SIGINT; the exit code for `iosignal observe`.
    `registrations`: also hear the VMMs' registrations (where the kernel can)."""
    settings = get_settings()
    stop = threading.Event()
    install_signal_handlers(stop, log)
    try:
        probe = open_probe(registrations=registrations)
    except ObserverUnavailable as exc:
        log.error("%s", exc)
        return 1
    engine = make_engine(settings.database_url)
    try:
        return observe(settings, probe, engine, stop)
    finally:
        probe.close()
        engine.dispose()
