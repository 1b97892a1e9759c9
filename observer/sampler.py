"""One observer tick: which VMs live, which ended, and what each address of each VM counted.

Discovery runs before the counts are read, so a VM that exited mid-tick is already known as
ended while its last counts (all made before its threads died) are still attributed to it; only
then are its counters deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from observer.counter import CountReader, ValueReader
from observer.discovery import Discovery, VmKey, VmProcess
from observer.ioctls import Call, CallLog
from observer.kvmstats import KvmDebugfs
from observer.latencyreader import LatencyDelta, LatencyReader

log = logging.getLogger("iosignal.observer")


class AddressSample(NamedTuple):
    """One address of one VM in one tick."""

    vm: VmKey
    space: str
    addr: int
    len: int
    writes: int
    userspace: int
    reads: int
    read_exits: int = 0  # reads that exited to the VMM (counted apart from `reads`)


class ExitValue(NamedTuple):
    """A value the guest wrote to an address in writes that exited to userspace, this tick."""

    vm: VmKey
    space: str
    addr: int
    len: int
    value: int
    count: int  # type: ignore[assignment]  # a field, shadowing tuple.count on purpose


class Registration(NamedTuple):
    """One KVM_IOEVENTFD or KVM_IRQFD call a VMM made, with the kernel's answer.

    ioeventfd: space, addr, len, datamatch (None: any value) and the eventfd; irqfd: the
    eventfd and gsi (space, addr, len None). `errno` is None when the kernel said yes."""

    vm: VmKey
    at: datetime
    kind: str  # "ioeventfd" or "irqfd"
    deassign: bool
    space: str | None
    addr: int | None
    len: int | None
    datamatch: int | None
    eventfd: int
    gsi: int | None
    flags: int  # as the caller passed them
    errno: str | None  # e.g. "EEXIST"; None = assigned (or deassigned)


class Tick(NamedTuple):
    """What one collect saw; the writer turns it into rows."""

    taken_at: datetime
    interval_s: float
    live: dict[VmKey, VmProcess]
    ended: list[VmKey]
    samples: list[AddressSample]
    vcpu_tids: dict[VmKey, list[int]]  # for VMs new this tick or whose vCPUs changed
    kvm_stats: dict[VmKey, dict[str, int]]  # KVM's totals, where debugfs answers
    exit_values: list[ExitValue] = []  # a NamedTuple default, never mutated
    registrations: list[Registration] = []  # in the order the calls returned
    latency: list[tuple[VmKey, LatencyDelta]] = []  # in-kernel doorbells' consumers and stages


class ObserverSampler:
    """Collects ticks from discovery, the BPF counts and debugfs; `collect()` is one tick."""

    def __init__(
        self,
        reader: CountReader,
        discovery: Discovery,
        debugfs: KvmDebugfs | None = None,
        clock: Callable[[], float] = time.monotonic,
        values: ValueReader | None = None,
        calls: CallLog | None = None,
        latency: LatencyReader | None = None,
    ) -> None:
        self.reader, self.discovery, self.debugfs, self.clock = reader, discovery, debugfs, clock
        self.values, self.calls, self.latency = values, calls, latency
        self.known: dict[VmKey, VmProcess] = {}
        self.unattributed = 0  # accesses of processes gone before discovery saw them
        self.unattributed_calls = 0  # registrations of processes gone before discovery
        self._last = clock()

    def _vcpu_tids(self, live: dict[VmKey, VmProcess]) -> dict[VmKey, list[int]]:
        changed = [
            vm
            for key, vm in live.items()
            if key not in self.known or self.known[key].vcpus != vm.vcpus
        ]
        if self.debugfs is None:
            return {vm.key: [] for vm in changed}
        return {vm.key: self.debugfs.vcpu_threads(vm) for vm in changed}

    def _owner(self, tgid: int, by_pid: dict[int, VmProcess]) -> VmProcess | None:
        vm = by_pid.get(tgid)
        if vm is None:  # appeared and did I/O since the scan: look once more
            vm = self.discovery.describe(tgid)
            if vm is not None:
                by_pid[tgid] = vm
        return vm

    def collect(self) -> Tick:
        """Scan, read the counts' differences, attribute them, forget exited VMs' counters."""
        live = self.discovery.scan()
        deltas = self.reader.deltas()
        values = self.values.deltas() if self.values is not None else {}
        calls = self.calls.drain() if self.calls is not None else []
        latency = self.latency.deltas() if self.latency is not None else []
        now, taken_at = self.clock(), datetime.now(UTC)
        interval, self._last = now - self._last, now
        ended = [key for key in self.known if key not in live]
        by_pid = {vm.pid: vm for vm in self.known.values() if vm.key in ended}
        by_pid.update({vm.pid: vm for vm in live.values()})
        samples = []
        for (tgid, space, addr, length), c in deltas.items():
            vm = self._owner(tgid, by_pid)
            if vm is None:
                self.unattributed += c.writes + c.reads
                continue
            if vm.key not in ended:
                live.setdefault(vm.key, vm)
            samples.append(AddressSample(vm.key, space, addr, length, *c))
        exit_values = []
        for ((tgid, space, addr, length), value), n in values.items():
            vm = self._owner(tgid, by_pid)
            if vm is not None:
                exit_values.append(ExitValue(vm.key, space, addr, length, value, n))
        registrations = self._registrations(calls, by_pid)
        heard = [(vm.key, d) for d in latency if (vm := self._owner(d.tgid, by_pid)) is not None]
        live_pids = {vm.pid for vm in live.values()}
        gone = {key.pid for key in ended if key.pid not in live_pids}
        gone |= {tgid for (tgid, *_) in deltas if tgid not in by_pid}
        self.reader.forget(gone)
        if self.values is not None:
            self.values.forget(gone)
        if self.latency is not None:
            self.latency.forget(gone | {d.tgid for d in latency if d.tgid not in by_pid})
        tids = self._vcpu_tids(live)
        stats = {}
        if self.debugfs is not None and self.debugfs.unavailable is None:
            for key, vm in live.items():
                totals = self.debugfs.totals(vm)
                if totals is not None:
                    stats[key] = totals
        self.known = live
        return Tick(
            taken_at, interval, live, ended, samples, tids, stats, exit_values, registrations,
            heard,
        )  # fmt: skip

    def _registrations(self, calls: list[Call], by_pid: dict[int, VmProcess]) -> list[Registration]:
        """The calls of processes known as VMs (a KVM_IOEVENTFD on a VM fd makes its process
        one: it is looked up at once); calls of others are counted in `unattributed_calls`."""
        out = []
        for c in calls:
            vm = self._owner(c.tgid, by_pid)
            if vm is None:
                self.unattributed_calls += 1
                continue
            out.append(Registration(vm.key, *c[1:]))
        return out
