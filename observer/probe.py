"""`KvmProbe`: the compiled programs of observer/progs, loaded and attached as one unit.

Two objects: kvm_counts (KVM's access and exit tracepoints) and kvm_ioctls (the raw syscall
tracepoints, for every VMM's registrations), all BTF-typed raw tracepoints. libbpf places
every field by the running kernel's BTF (CO-RE), so one object runs on any kernel with BTF.
Either everything attaches or nothing stays: a failure part-way closes what was made. Closing
the probe (or the process dying, even by SIGKILL) detaches every program and frees the maps.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from pathlib import Path

from observer.bpf import Map, read_format
from observer.bpf import syscall as sc
from observer.bpf.btf import BtfError, kernel_btf
from observer.bpf.libbpf import BpfObject, RingBuffer
from observer.bpf.tracefs import TRACEFS
from observer.layout import (
    AccessCounts,
    AccessKey,
    Drops,
    IoctlGlobals,
    Recent,
    ValueKey,
    ValueSlot,
)

PROGS = Path(__file__).parent / "progs"
REQUIRED = ("kvm_pio", "kvm_mmio", "kvm_userspace_exit")
OPTIONAL = ("kvm_fast_mmio",)
# the tracepoint each program of kvm_counts.bpf.c is attached to, counting and floor
# (the kernel keeps 15 characters of a program's name: every one starts iosig_)
COUNTING = {
    "kvm_pio": "iosig_pio",
    "kvm_mmio": "iosig_mmio",
    "kvm_userspace_exit": "iosig_exit",
    "kvm_fast_mmio": "iosig_fast_mmio",
}
FLOOR = {
    "kvm_pio": "iosig_floor_pio",
    "kvm_mmio": "iosig_floor_mmio",
    "kvm_userspace_exit": "iosig_floor_exit",
    "kvm_fast_mmio": "iosig_floor_fast",
}
IOCTLS = {"sys_enter": "iosig_ioctl_in", "sys_exit": "iosig_ioctl_out"}
IOCTLS_FLOOR = {"sys_enter": "iosig_floor_in", "sys_exit": "iosig_floor_out"}


def present_events() -> list[str]:
    """The KVM tracepoints this kernel has (and its BTF names), of REQUIRED and OPTIONAL."""
    out = []
    for event in REQUIRED + OPTIONAL:
        try:
            kernel_btf().typedef_id(f"btf_trace_{event}")
        except BtfError:
            continue
        out.append(event)
    return out


class KvmProbe:
    """Counts every KVM guest's port and MMIO accesses and exits per (VM, space, addr, len),
    and hears every VMM's KVM_IOEVENTFD and KVM_IRQFD calls."""

    def __init__(self, *, empty: bool = False, registrations: bool = True) -> None:
        """`empty`: programs that return at once on the same tracepoints (the floor that
        `iosignal observe --bench` measures the counting programs against).
        `registrations`: attach the ioctl programs too."""
        self.registrations_asked = registrations  # (open_probe: asked, whether or not offered)
        events = present_events()
        self.events_attached = events + (list(IOCTLS) if registrations else [])
        names = FLOOR if empty else COUNTING
        self.kvm: BpfObject | None = None
        self.ioctls: BpfObject | None = None
        self.counts = self.recent = self.values = self.value_slots = self.drops = None
        self.ioctl_globals: Map | None = None
        try:
            self.kvm = BpfObject(str(PROGS / "kvm_counts.bpf.o"), [names[e] for e in events])
            if registrations:
                ioctl_names = IOCTLS_FLOOR if empty else IOCTLS
                self.ioctls = BpfObject(str(PROGS / "kvm_ioctls.bpf.o"), ioctl_names.values())
            self.counts = self._map("counts", sc.MAP_TYPE_PERCPU_HASH, AccessKey, AccessCounts)
            self.recent = self._map("recent", sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, Recent)
            self.values = self._map("exit_values", sc.MAP_TYPE_LRU_HASH, ValueKey, ctypes.c_uint64)
            self.value_slots = self._map(
                "value_slot", sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, ValueSlot
            )
            self.drops = self._map("drops", sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, Drops)
            if self.ioctls is not None:
                fd = self.ioctls.map_fd(".bss")
                self.ioctl_globals = Map.of_fd(
                    fd, sc.MAP_TYPE_ARRAY, ctypes.c_uint32, IoctlGlobals, "kvm_ioctls.bss"
                )
        except BaseException:
            self.close()
            raise

    def _map(self, name: str, map_type: int, key: type, value: type) -> Map:
        assert self.kvm is not None
        return Map.of_fd(self.kvm.map_fd(name), map_type, key, value, name)

    def events(self) -> list[str]:
        """The tracepoints the programs are attached to."""
        return list(self.events_attached)

    def program_fds(self) -> dict[str, int]:
        """Each attached program's fd, by tracepoint (for the kernel's run-time statistics)."""
        out = {}
        if self.kvm is not None:
            by_name = {v: k for names in (COUNTING, FLOOR) for k, v in names.items()}
            out.update({by_name[n]: self.kvm.program_fd(n) for n in self.kvm.attached()})
        if self.ioctls is not None:
            by_name = {v: k for names in (IOCTLS, IOCTLS_FLOOR) for k, v in names.items()}
            out.update({by_name[n]: self.ioctls.program_fd(n) for n in self.ioctls.attached()})
        return out

    def ioctl_events(self, on_record: Callable[[bytes], None]) -> RingBuffer:
        """A reader of the registration events (each record's bytes to `on_record`)."""
        if self.ioctls is None:
            raise OSError(errno.ENOENT, "the probe was made without its registration programs")
        return self.ioctls.ring_buffer("events", on_record)

    def registrations_lost(self) -> int:
        """Registration events the ring buffer had no room for (0 without those programs)."""
        if self.ioctl_globals is None:
            return 0
        (g,) = self.ioctl_globals.lookup(ctypes.c_uint32(0)) or [IoctlGlobals()]
        return int(g.lost)

    def close(self) -> None:
        """Detach every program and free the maps (idempotent)."""
        maps = (self.counts, self.recent, self.values, self.value_slots, self.drops)
        for m in (*maps, self.ioctl_globals):
            if m is not None:
                m.close()
        self.counts = self.recent = self.values = self.value_slots = self.drops = None
        self.ioctl_globals = None
        for obj in (self.ioctls, self.kvm):
            if obj is not None:
                obj.close()
        self.kvm = self.ioctls = None

    def __enter__(self) -> KvmProbe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def missing_tracepoints(tracefs: str = TRACEFS) -> list[str]:
    """The required kvm tracepoints this kernel lacks (empty when all are there)."""
    missing = []
    for event in REQUIRED:
        try:
            read_format("kvm", event, tracefs)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            missing.append(f"kvm:{event}")
    return missing


def objects_present() -> bool:
    """The compiled objects ship with the package (a source checkout builds them: make bpf)."""
    return all(os.path.exists(PROGS / f) for f in ("kvm_counts.bpf.o", "kvm_ioctls.bpf.o"))
