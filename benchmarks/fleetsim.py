"""A simulated fleet: N hosts x M VMs x K doorbells, each host's ticks as its observer's sampler
would hand them to the observer's real writer (observer/writer.py).

Used by `iosignal loadbench --hosts` (benchmarks/fleetload.py: live, at 1 Hz) and by the host view's
benchmark (tests/app/bench_hosts.py: history written as fast as the database takes it). Only
the BPF side is simulated: rows, transactions, series, heartbeats, registrations and rollups
are the observer's own code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, Registration, Tick

PIO_BASE, MMIO_BASE = 0x6000, 0xFE00_0000
COMMS = ("qemu-system-x86", "firecracker", "cloud-hypervisor", "crosvm")


@dataclass(frozen=True)
class FleetShape:
    """How big the simulated fleet is."""

    hosts: int
    vms: int  # per host
    doorbells: int  # per VM


def host_name(i: int) -> str:
    """The i-th simulated host's name (sorts in host order)."""
    return f"fleet-{i:04d}"


def doorbell(d: int) -> tuple[str, int, int]:
    """The d-th doorbell of a VM: alternately a PIO port and an MMIO address."""
    if d % 2 == 0:
        return ("pio", PIO_BASE + 2 * (d // 2), 2)
    return ("mmio", MMIO_BASE + 0x1000 * (d // 2), 4)


def _mix(*parts: int) -> int:
    """A cheap, deterministic hash: the same VM and doorbell count the same on every run."""
    h = 0x9E3779B1
    for p in parts:
        h = ((h ^ p) * 0x85EBCA6B) & 0xFFFFFFFF
        h ^= h >> 13
    return h


class SimHost:
    """One host's VMs and their doorbells: what its observer would count each tick.

    A doorbell writes 1..2,000 times a second; a third of them are registered (all in-kernel),
    a third exit for every write, the rest exit for a quarter, so VMs differ in writes/s,
    userspace exits/s and in-kernel share (what the host view sorts by)."""

    def __init__(self, index: int, shape: FleetShape, started_at: datetime) -> None:
        self.index, self.shape = index, shape
        self.name = host_name(index)
        ticks = int(started_at.timestamp() * 100) % 10**9  # a new run's VMs are new processes
        self.vms = [
            VmProcess(
                VmKey(10_000 + v, ticks + v),
                started_at,
                COMMS[_mix(index, v) % len(COMMS)],
                f"{COMMS[_mix(index, v) % len(COMMS)]} -name vm{v}",
                2,
                (9,),
            )
            for v in range(shape.vms)
        ]
        self.rates = {
            (vm.key, d): (1 + _mix(index, v, d) % 2000, _mix(d, v, index) % 3)
            for v, vm in enumerate(self.vms)
            for d in range(shape.doorbells)
        }
        self.first = True

    def _registrations(self, at: datetime) -> list[Registration]:
        """The ioeventfds the VMMs registered (kind 0 doorbells), heard once."""
        calls = []
        for (key, d), (_rate, kind) in self.rates.items():
            if kind == 0:
                space, addr, len_ = doorbell(d)
                calls.append(
                    Registration(
                        key, at, "ioeventfd", False, space, addr, len_, None, 20 + d, None, 0, None
                    )
                )
        return calls

    def tick(self, at: datetime, interval_s: float) -> Tick:
        """What the observer's sampler would hand its writer for this tick."""
        samples = []
        for (key, d), (rate, kind) in self.rates.items():
            writes = max(1, round(rate * interval_s))
            userspace = 0 if kind == 0 else writes if kind == 1 else writes // 4
            samples.append(AddressSample(key, *doorbell(d), writes, userspace, 0))
        live = {vm.key: vm for vm in self.vms}
        first, self.first = self.first, False
        tids = {vm.key: [vm.pid + 1, vm.pid + 2] for vm in self.vms} if first else {}
        regs = self._registrations(at) if first else []
        return Tick(at, interval_s, live, [], samples, tids, {}, [], regs)


def history(host: SimHost, seconds: int, end: datetime) -> Iterator[Tick]:
    """`seconds` one-second ticks of `host` ending at `end`, oldest first."""
    for s in range(seconds, 0, -1):
        yield host.tick(end - timedelta(seconds=s - 1), 1.0)


def process_start(seconds_ago: float) -> datetime:
    """The simulated VMMs' process start: before their first tick."""
    return datetime.now(UTC) - timedelta(seconds=seconds_ago)
