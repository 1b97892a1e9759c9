"""`iosignal observe`: watch every KVM VM on this host, read-only, into the shared database
and/or as a Prometheus target.

Threads: ticker (discovery + BPF counts each tick), writer (persist, rollups, retention; not
with --no-database) and, with --metrics-address, the HTTP server answering /metrics from the
counters each tick adds to (observer/metrics.py). The main thread waits for SIGTERM/SIGINT,
then the ticker's last collect is flushed and every program detached. The observer never opens
/dev/kvm and never touches another process's VM.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from contract.config import Settings, get_settings
from contract.db import make_engine
from daemon.retention import retention_hook
from daemon.signals import install_signal_handlers
from daemon.ticker import Ticker
from observer import retention
from observer.counter import CountReader, ValueReader
from observer.discovery import Discovery
from observer.exporter import MetricsServer, drop_counts
from observer.ioctls import CallLog
from observer.kvmstats import KvmDebugfs
from observer.latency import PROGRAMS as LATENCY_PROGRAMS
from observer.latency import LatencyProbe, open_latency_probe
from observer.latencyreader import LatencyReader
from observer.metrics import MAX_ADDRESSES, ObserverMetrics
from observer.preflight import ObserverUnavailable, open_probe
from observer.probe import KvmProbe
from observer.sampler import ObserverSampler, Tick
from observer.writer import ObservedWriter

log = logging.getLogger("iosignal.observer")


def observe(
    settings: Settings,
    probe: KvmProbe,
    engine: Engine | None,
    stop: threading.Event,
    metrics_address: str | None = None,
    max_addresses: int = MAX_ADDRESSES,
    latency: LatencyProbe | None = None,
) -> int:
    """Tick, write (unless `engine` is None) and serve /metrics (with `metrics_address`) until
    `stop`; the caller owns (and closes) the probes and engine."""
    host = settings.hostname or socket.gethostname()
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
        latency=LatencyReader(latency) if latency is not None else None,
    )
    if probe.ioctls is None and probe.registrations_asked:
        log.warning(
            "no raw_syscalls:sys_enter tracepoint (CONFIG_HAVE_SYSCALL_TRACEPOINTS): counting, "
            "but the VMMs' registrations stay unknown"
        )
    writer = _writer(settings, engine, host) if engine is not None else None
    sinks: list[Callable[[Tick], None]] = [writer.put] if writer is not None else []
    ticker = Ticker(sampler.collect, lambda tick: _each(sinks, tick), settings.sample_interval_s)
    events = probe.events() + (list(LATENCY_PROGRAMS) if latency is not None else [])
    server = None
    if metrics_address is not None:
        metrics = ObserverMetrics(
            host,
            events,
            max_addresses=max_addresses,
            drops=lambda: drop_counts(probe, sampler, writer),
            missed=lambda: ticker.missed,
        )
        sinks.append(metrics.add)
        try:
            server = MetricsServer(metrics_address, metrics)
        except OSError as e:
            log.error("cannot serve metrics on %s: %s", metrics_address, e.strerror or e)
            return 1
        log.info("metrics at http://%s/metrics", metrics_address)
    stop_ticker, stop_writer = threading.Event(), threading.Event()
    threads = [threading.Thread(target=ticker.run, args=(stop_ticker,), name="ticker", daemon=True)]
    if writer is not None:
        threads.append(
            threading.Thread(target=writer.run, args=(stop_writer,), name="writer", daemon=True)
        )
    for t in threads:
        t.start()
    log.info("observing every KVM VM on %s (programs on %s)", host, ", ".join(events))
    while not stop.wait(0.5):
        pass
    stop_ticker.set()  # its last collect reaches the writer before the writer's last flush
    threads[0].join(10)
    if server is not None:
        server.close()
    stop_writer.set()
    for t in threads[1:]:
        t.join(15)
    log.info(
        "stopped: %d ticks (%d missed), %d samples written, %d dropped, %d unattributed",
        ticker.ticks,
        ticker.missed,
        writer.written if writer else 0,
        writer.dropped if writer else 0,
        sampler.unattributed,
    )
    return 0


def _each(sinks: list[Callable[[Tick], None]], tick: Tick) -> None:
    for sink in sinks:  # the writer's put, the metrics' add: neither blocks the ticker
        sink(tick)


def _writer(settings: Settings, engine: Engine, host: str) -> ObservedWriter:
    prune = retention_hook(
        "observed retention",
        lambda newest: retention.run(
            engine, host, newest, settings.raw_retention_h, settings.rollup_retention_d
        ),
        log,
    )
    return ObservedWriter(engine, host, after_flush=prune)


def main(
    registrations: bool = True,
    database: bool = True,
    metrics_address: str | None = None,
    max_addresses: int = MAX_ADDRESSES,
    latency: bool = True,
) -> int:
    """Run the observer until SIGTERM/SIGINT; the exit code for `iosignal observe`.
    `registrations`: also hear the VMMs' registrations (where the kernel can); `database`:
    write into IOSIGNAL_DATABASE_URL; `metrics_address`: serve /metrics there; `latency`: also
    time each in-kernel doorbell's consumer and interrupt (scheduler tracepoints)."""
    settings = get_settings()
    stop = threading.Event()
    install_signal_handlers(stop, log)
    try:
        probe = open_probe(registrations=registrations)
    except ObserverUnavailable as exc:
        log.error("%s", exc)
        return 1
    timing = open_latency_probe() if latency else None
    engine = make_engine(settings.database_url) if database else None
    try:
        return observe(settings, probe, engine, stop, metrics_address, max_addresses, timing)
    finally:
        probe.close()
        if timing is not None:
            timing.close()
        if engine is not None:
            engine.dispose()
