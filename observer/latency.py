"""`LatencyProbe`: kvm_latency.bpf.c loaded and attached, and its maps read per doorbell.

What each doorbell's consumer is and how long each stage of its kicks takes (contract.latency
says what the stages time). Counts and histograms are totals since attach: `read()` returns
them whole, `Since` turns two readings into the interval between them.
"""

from __future__ import annotations

import ctypes
import logging
from typing import NamedTuple

from contract.latency import STAGES
from observer.bpf import Map
from observer.bpf import syscall as sc
from observer.bpf.btf import BtfError, kernel_btf
from observer.bpf.libbpf import BpfObject
from observer.latencylayout import DoorbellLatency, HistKey, LatencyDrops
from observer.layout import SPACES, AccessKey
from observer.probe import PROGS

log = logging.getLogger("iosignal.observer")

OBJECT = "kvm_latency.bpf.o"
# tracepoint -> program; kvm_userspace_exit un-counts kicks that went to the VMM after all
PROGRAMS = {
    "kvm_pio": "iosig_lat_pio",
    "kvm_mmio": "iosig_lat_mmio",
    "sched_waking": "iosig_lat_waking",
    "sched_switch": "iosig_lat_switch",
    "kvm_apic_accept_irq": "iosig_lat_irq",
    "kvm_vcpu_wakeup": "iosig_lat_wakeup",
    "kvm_userspace_exit": "iosig_lat_exit",
}
# the floor: the scheduler hooks alone, returning at once (what every thread pays for a hook)
FLOOR = {"sched_waking": "iosig_lfloor_wake", "sched_switch": "iosig_lfloor_sw"}


class Consumer(NamedTuple):
    """The thread a doorbell's kicks wake: its name, id, and its process's."""

    tid: int
    comm: str
    tgid: int
    process: str


class Doorbell(NamedTuple):
    """One in-kernel doorbell (a VM's ioeventfd) as the latency programs saw it."""

    tgid: int
    space: str
    addr: int
    len: int
    consumer: Consumer
    kicks: int  # guest writes that stayed in the kernel
    wakes: int  # of those, the ones that woke the consumer (the rest: it was running)
    coalesced: int  # kicks that met an unanswered one (one interrupt answers both)
    answered: int  # interrupts paired with a kick
    stale: int  # kicks no interrupt answered within a second
    vector: int
    vcpu_id: int
    hists: dict[str, dict[int, int]]  # stage -> {slot: count}


class Drops(NamedTuple):
    """What could not be paired or recorded, host-wide."""

    map_full: int
    irq_unpaired: int
    mixed: int
    no_storage: int


def _doorbell(k: AccessKey, d: DoorbellLatency, hists: dict[str, dict[int, int]]) -> Doorbell:
    name = d.comm.decode(errors="replace")
    process = d.process.decode(errors="replace")
    return Doorbell(
        k.tgid, SPACES[k.space], k.addr, k.len,
        Consumer(d.consumer_tid, name, d.consumer_tgid, process),
        kicks=d.kicks - d.exits, wakes=d.wakes, coalesced=d.coalesced, answered=d.answered,
        stale=d.stale, vector=d.vector, vcpu_id=d.vcpu_id, hists=hists,
    )  # fmt: skip


def missing_events() -> list[str]:
    """The tracepoints of PROGRAMS this kernel lacks (by their BTF names)."""
    out = []
    for event in PROGRAMS:
        try:
            kernel_btf().typedef_id(f"btf_trace_{event}")
        except BtfError:
            out.append(event)
    return out


class LatencyProbe:
    """The latency programs, attached (`empty`: only the floor's do-nothing scheduler hooks)."""

    def __init__(self, *, empty: bool = False) -> None:
        names = FLOOR if empty else PROGRAMS
        self.obj: BpfObject | None = BpfObject(str(PROGS / OBJECT), names.values())
        self.doorbells = self.hists = self.drops = None
        try:
            self.doorbells = self._map("doorbells", sc.MAP_TYPE_HASH, AccessKey, DoorbellLatency)
            self.hists = self._map("hists", sc.MAP_TYPE_HASH, HistKey, ctypes.c_uint64)
            self.drops = self._map(
                "latency_drops", sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, LatencyDrops
            )
        except BaseException:
            self.close()
            raise

    def _map(self, name: str, map_type: int, key: type, value: type) -> Map:
        assert self.obj is not None
        return Map.of_fd(self.obj.map_fd(name), map_type, key, value, name)

    def program_fds(self) -> dict[str, int]:
        """Each attached program's fd, by tracepoint (for the kernel's run-time statistics)."""
        assert self.obj is not None
        by_name = {v: k for names in (PROGRAMS, FLOOR) for k, v in names.items()}
        return {by_name[n]: self.obj.program_fd(n) for n in self.obj.attached()}

    def read(self) -> list[Doorbell]:
        """Every doorbell seen, with its totals since attach."""
        assert self.doorbells is not None and self.hists is not None
        hists: dict[tuple[int, int, int, int], dict[str, dict[int, int]]] = {}
        for hk, (n,) in self.hists.lookup_batch():
            k = hk.key
            per = hists.setdefault((k.tgid, k.space, k.addr, k.len), {})
            per.setdefault(STAGES[hk.stage], {})[hk.slot] = int(n.value)
        return [
            _doorbell(k, d, hists.get((k.tgid, k.space, k.addr, k.len), {}))
            for k, (d,) in self.doorbells.lookup_batch()
        ]

    def read_drops(self) -> Drops:
        """What could not be paired, summed over CPUs."""
        assert self.drops is not None
        per_cpu = self.drops.lookup(ctypes.c_uint32(0)) or []
        total = {f: sum(getattr(d, f) for d in per_cpu) for f in Drops._fields}
        return Drops(**total)

    def close(self) -> None:
        """Detach every program and free the maps (idempotent)."""
        for m in (self.doorbells, self.hists, self.drops):
            if m is not None:
                m.close()
        self.doorbells = self.hists = self.drops = None
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self) -> LatencyProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_latency_probe() -> LatencyProbe | None:
    """The latency programs, or None with a warning saying why not (the counts go on)."""
    missing = missing_events()
    if missing:
        log.warning("no doorbell latency: this kernel lacks the tracepoints %s", missing)
        return None
    try:
        return LatencyProbe()
    except OSError as e:
        log.warning("no doorbell latency: the programs did not load: %s", e)
        return None
