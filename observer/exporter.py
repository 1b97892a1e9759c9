"""`/metrics` of `iosignal observe --metrics-address`: the observer as a Prometheus target.

The collector turns the snapshot ObserverMetrics keeps (observer/metrics.py) into metric
families on each scrape; prometheus_client's own threaded HTTP server answers. Every series
carries `host` (the observer's host, also when Prometheus names the target by a pod address);
a VM's series carry `pid` and `start` (its process start, Unix seconds), which tell a reused
pid's new VM apart. What each family means: docs/observer.md.
"""

from __future__ import annotations

import ctypes
import ipaddress
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from observer.discovery import VmProcess
from observer.metrics import ObserverMetrics, Snapshot

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from observer.probe import KvmProbe
    from observer.sampler import ObserverSampler
    from observer.writer import ObservedWriter

VM = ["host", "pid", "start"]
# (family, help) of each counter a doorbell's series has, in Snapshot counts' order
GUEST = (
    ("iosignal_guest_writes", "guest writes to the doorbell, whoever handled them"),
    (
        "iosignal_guest_userspace_exits",
        "of those writes, the ones that exited to the VMM (in-kernel = writes - these)",
    ),
    ("iosignal_guest_reads", "guest reads of the address (port in, MMIO read)"),
    ("iosignal_guest_read_exits", "of those reads, the ones that exited to the VMM"),
)


def parse_address(text: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets: [::1]:9464) as (host, port); ValueError says why."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"metrics address {text!r} is not HOST:PORT with a port 1-65535 "
            "(e.g. 127.0.0.1:9464, 0.0.0.0:9464, [::]:9464)"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as e:
            raise ValueError(f"metrics address {text!r}: {e}") from None
    elif ":" in host:
        raise ValueError(f"metrics address {text!r}: an IPv6 host goes in brackets, [::1]:9464")
    return host, int(port)


def _vm_labels(host: str, vm: VmProcess) -> list[str]:
    return [host, str(vm.pid), f"{vm.started_at.timestamp():.2f}"]


class ObserverCollector(Collector):
    """The families of one observer's snapshot; nothing is read from the kernel here."""

    def __init__(self, metrics: ObserverMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """Yield every family (read from one snapshot, so they agree with each other)."""
        snap = self.metrics.snapshot()
        families = [
            CounterMetricFamily(n, h, labels=[*VM, "space", "addr", "len"]) for n, h in GUEST
        ]
        info = InfoMetricFamily(
            "iosignal_vm", "a VM the observer sees: its VMM's command and vCPUs", labels=VM
        )
        running = 0
        for vm, live, counts in snap.vms:
            labels = _vm_labels(snap.host, vm)
            info.add_metric(labels, {"comm": vm.comm, "vcpus": str(vm.vcpus)})
            running += live
            for series, values in sorted(counts.items()):
                for family, value in zip(families, values, strict=True):
                    family.add_metric([*labels, *series], float(value))
        yield from families
        yield info
        yield from self._health(snap.host, running, snap)

    @staticmethod
    def _health(host: str, running: int, snap: Snapshot) -> Iterator[Metric]:
        vms = GaugeMetricFamily("iosignal_observer_vms", "VMs running on the host", labels=["host"])
        vms.add_metric([host], float(running))
        ticks = CounterMetricFamily(
            "iosignal_observer_ticks", "ticks the observer collected", labels=["host"]
        )
        ticks.add_metric([host], float(snap.ticks))
        missed = CounterMetricFamily(
            "iosignal_observer_missed_ticks",
            "ticks skipped because a collect overran (the next one covers the gap)",
            labels=["host"],
        )
        missed.add_metric([host], float(snap.missed_ticks))
        last = GaugeMetricFamily(
            "iosignal_observer_last_tick_timestamp_seconds",
            "Unix time of the newest tick",
            labels=["host"],
        )
        if snap.last_tick_at is not None:
            last.add_metric([host], snap.last_tick_at)
        drops = CounterMetricFamily(
            "iosignal_observer_drops",
            "what the observer could not count or keep, by kind (docs/observer.md)",
            labels=["host", "kind"],
        )
        for kind, n in sorted(snap.drops.items()):
            drops.add_metric([host, kind], float(n))
        programs = GaugeMetricFamily(
            "iosignal_observer_programs_attached",
            "BPF programs attached, per tracepoint (1 each)",
            labels=["host", "tracepoint"],
        )
        for tracepoint in snap.programs:
            programs.add_metric([host, tracepoint], 1.0)
        yield from (vms, ticks, missed, last, drops, programs)


def drop_counts(
    probe: KvmProbe, sampler: ObserverSampler, writer: ObservedWriter | None
) -> dict[str, int]:
    """Every kind of drop since the observer started (read on the ticker's thread)."""
    out = {"map_full": 0, "unmatched": 0}
    if probe.drops is not None:
        for d in probe.drops.lookup(ctypes.c_uint32(0)) or []:
            out["map_full"] += d.map_full
            out["unmatched"] += d.unmatched
    out["registrations_lost"] = probe.registrations_lost()
    out["unattributed"] = sampler.unattributed
    out["unattributed_registrations"] = sampler.unattributed_calls
    if writer is not None:
        out["samples"] = writer.dropped
    return out


class MetricsServer:
    """prometheus_client's HTTP server on its own thread, answering /metrics from `metrics`."""

    def __init__(self, address: str, metrics: ObserverMetrics) -> None:
        host, port = parse_address(address)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ObserverCollector(metrics))
        ProcessCollector(registry=registry)  # the observer's own CPU and memory
        self.server: WSGIServer
        self.thread: threading.Thread
        self.server, self.thread = start_http_server(port, host, registry)
        self.address = address

    def close(self) -> None:
        """Stop answering and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
