"""`KvmProbe`: the maps and counting programs, attached to KVM's tracepoints as one unit.

Either everything attaches or nothing stays: a failure part-way closes what was made. Closing
the probe (or the process dying, even by SIGKILL) detaches every program and frees the maps.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
from typing import NamedTuple

from observer import programs as p
from observer.bpf import Link, Map, Program, read_format
from observer.bpf import syscall as sc
from observer.bpf.tracefs import TRACEFS, EventFormat
from observer.layout import (
    MAX_KEYS,
    MAX_THREADS,
    AccessCounts,
    AccessKey,
    Drops,
    PendingWrite,
)

REQUIRED = ("kvm_pio", "kvm_mmio", "kvm_userspace_exit", "kvm_entry")
OPTIONAL = ("kvm_fast_mmio",)


class Attached(NamedTuple):
    """One program on one tracepoint."""

    event: str
    program: Program
    link: Link


def _build(event: str, fmt: EventFormat, maps: p.Maps) -> bytes:
    if event == "kvm_pio":
        return p.pio_program(maps, p.fields_of(fmt, "rw", "port", "size", "count"))
    if event == "kvm_mmio":
        kinds = {k: fmt.symbol("type", k) for k in ("write", "read")}
        return p.mmio_program(maps, p.fields_of(fmt, "type", "len", "gpa"), kinds)
    if event == "kvm_userspace_exit":
        reasons = {k: fmt.symbol("reason", k) for k in ("KVM_EXIT_IO", "KVM_EXIT_MMIO")}
        return p.userspace_exit_program(maps, p.fields_of(fmt, "reason", "errno"), reasons)
    if event == "kvm_entry":
        return p.entry_program(maps)
    return p.fast_mmio_program(maps, p.fields_of(fmt, "gpa"))


class KvmProbe:
    """Counts every KVM guest's port and MMIO accesses per (VM, space, addr, len)."""

    def __init__(self, tracefs: str = TRACEFS) -> None:
        formats = {e: read_format("kvm", e, tracefs) for e in REQUIRED}
        for event in OPTIONAL:
            with contextlib.suppress(FileNotFoundError):
                formats[event] = read_format("kvm", event, tracefs)
        # Build every program before making anything, so a bad format leaves nothing behind.
        self.counts = self.pending = self.drops = None
        self.attached: list[Attached] = []
        try:
            self.counts = Map(
                sc.MAP_TYPE_PERCPU_HASH, AccessKey, AccessCounts, MAX_KEYS, "kvm_counts"
            )
            self.pending = Map(
                sc.MAP_TYPE_LRU_HASH, ctypes.c_uint64, PendingWrite, MAX_THREADS, "kvm_pending"
            )
            self.drops = Map(sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, Drops, 1, "kvm_drops")
            maps = p.Maps(self.counts.fd, self.pending.fd, self.drops.fd)
            code = {event: _build(event, fmt, maps) for event, fmt in formats.items()}
            for event, fmt in formats.items():
                prog = Program(sc.PROG_TYPE_TRACEPOINT, code[event], f"iosig_{event[4:]}")
                try:
                    link = Link.perf_tracepoint(prog, fmt.id)
                except BaseException:
                    prog.close()
                    raise
                self.attached.append(Attached(event, prog, link))
        except BaseException:
            self.close()
            raise

    def events(self) -> list[str]:
        """The tracepoints the programs are attached to."""
        return [a.event for a in self.attached]

    def close(self) -> None:
        """Detach every program and free the maps (idempotent)."""
        for a in reversed(self.attached):
            a.link.close()
            a.program.close()
        self.attached = []
        for m in (self.counts, self.pending, self.drops):
            if m is not None:
                m.close()

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
