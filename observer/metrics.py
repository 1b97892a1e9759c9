"""The observer's own counters for Prometheus: every tick added up, per VM and doorbell.

`ObserverMetrics.add` is the ticker's second sink (beside the database writer, or alone with
`--no-database`): it adds each tick's differences to counters that only grow for the life of the
observer, and `snapshot()` hands a copy to the scrape (observer/exporter.py), so a scrape never
reads the BPF maps and never races a tick.

A VM's series are keyed by (pid, process start): a reused pid is a new VM with new series, never
a counter that goes back. The label set is bounded: a VM's first `max_addresses` doorbells get
series of their own (when more arrive in one tick than there are places, the busiest first),
every later one adds to its space's `addr="other"`. The places are never given back, so no
series ever moves between an address and "other" and every counter stays monotonic. An exited
VM's series stay `keep_ended_s` so that Prometheus scrapes their last counts, then go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, Tick

MAX_ADDRESSES = 50  # doorbells with series of their own, per VM (--metrics-max-addresses)
KEEP_ENDED_S = 300.0  # an exited VM's last counts stay this long: several scrape intervals
OTHER = "other"


class Series(NamedTuple):
    """One doorbell's labels: space, address ("0x510", or "other") and width ("" for other)."""

    space: str
    addr: str
    len: str


@dataclass
class VmCounters:
    """One VM: its identity as last seen, and per doorbell [writes, userspace, reads,
    read_exits] since the observer first saw it."""

    vm: VmProcess
    counts: dict[Series, list[int]] = field(default_factory=dict)
    own: set[tuple[str, int, int]] = field(default_factory=set)  # doorbells with own series
    ended_at: float | None = None  # monotonic time its exit was seen

    def add(self, samples: list[AddressSample], max_addresses: int) -> None:
        """Add one tick's samples, giving free places to new doorbells, busiest first."""
        new = [s for s in samples if (s.space, s.addr, s.len) not in self.own]
        new.sort(key=lambda s: (-s.writes, -s.reads, s.space, s.addr, s.len))
        for s in new[: max(0, max_addresses - len(self.own))]:
            self.own.add((s.space, s.addr, s.len))
        for s in samples:
            doorbell = (s.space, s.addr, s.len)
            label = (
                Series(s.space, f"0x{s.addr:x}", str(s.len))
                if doorbell in self.own
                else Series(s.space, OTHER, "")
            )
            c = self.counts.setdefault(label, [0, 0, 0, 0])
            for i, n in enumerate((s.writes, s.userspace, s.reads, s.read_exits)):
                c[i] += n


class Snapshot(NamedTuple):
    """What a scrape reads: copies, safe to use while the next tick is added."""

    host: str
    vms: list[tuple[VmProcess, bool, dict[Series, tuple[int, ...]]]]  # (vm, running, counts)
    ticks: int
    missed_ticks: int
    last_tick_at: float | None  # Unix time of the newest tick
    drops: dict[str, int]
    programs: list[str]


class ObserverMetrics:
    """Counters summed from the observer's ticks; `add` from the ticker, `snapshot` from scrapes.

    `drops()` is called once a tick, on the ticker's thread (it may read the BPF drops map:
    the probe stays open while ticks run), and `missed()` at each scrape (a plain int read)."""

    def __init__(
        self,
        host: str,
        programs: list[str],
        *,
        max_addresses: int = MAX_ADDRESSES,
        keep_ended_s: float = KEEP_ENDED_S,
        drops: Callable[[], dict[str, int]] = dict,
        missed: Callable[[], int] = lambda: 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_addresses < 1:
            raise ValueError(f"max_addresses must be at least 1, got {max_addresses}")
        self.host, self.programs = host, list(programs)
        self.max_addresses, self.keep_ended_s = max_addresses, keep_ended_s
        self.drops, self.missed, self.clock = drops, missed, clock
        self._lock = threading.Lock()
        self._vms: dict[VmKey, VmCounters] = {}
        self._ticks = 0
        self._last_tick_at: float | None = None
        self._drops: dict[str, int] = {}

    def add(self, tick: Tick) -> None:
        """Add one tick (the ticker's sink): identities, counts, exits, the health counters."""
        drops = self.drops()
        by_vm: dict[VmKey, list[AddressSample]] = {}
        for s in tick.samples:
            by_vm.setdefault(s.vm, []).append(s)
        now = self.clock()
        with self._lock:
            for key, vm in tick.live.items():
                known = self._vms.get(key)
                if known is None:
                    self._vms[key] = VmCounters(vm)
                else:
                    known.vm = vm  # vCPUs may have been added since
            for key, samples in by_vm.items():
                if key in self._vms:  # (the sampler gives counts only to VMs it listed)
                    self._vms[key].add(samples, self.max_addresses)
            for key in tick.ended:
                if key in self._vms:
                    self._vms[key].ended_at = now
            for key, c in list(self._vms.items()):
                if c.ended_at is not None and now - c.ended_at > self.keep_ended_s:
                    del self._vms[key]
            self._ticks += 1
            self._last_tick_at = tick.taken_at.timestamp()
            self._drops = drops

    def snapshot(self) -> Snapshot:
        """A consistent copy of every counter, as of the last tick added."""
        with self._lock:
            vms = [
                (c.vm, c.ended_at is None, {k: tuple(v) for k, v in c.counts.items()})
                for c in self._vms.values()
            ]
            ticks, last, drops = self._ticks, self._last_tick_at, dict(self._drops)
        return Snapshot(self.host, vms, ticks, self.missed(), last, drops, list(self.programs))
