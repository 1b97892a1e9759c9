"""`KvmProbe`: the maps and counting programs, attached to KVM's tracepoints as one unit.

Raw tracepoints by default: measured here, a classic (perf) tracepoint adds ~190 ns to every
guest write for building the event record, a raw one nothing measurable. Their arguments are
placed by the kernel's BTF; classic tracepoints (fields placed by the tracefs format) remain for
kernels without BTF. Both read symbolic values (MMIO kinds, exit reasons) from the formats.
Either everything attaches or nothing stays: a failure part-way closes what was made. Closing
the probe (or the process dying, even by SIGKILL) detaches every program and frees the maps.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from typing import NamedTuple

from observer import programs as p
from observer.bpf import Link, Map, Program, read_format
from observer.bpf import syscall as sc
from observer.bpf.btf import BTF_DIR, BtfError, kernel_btf, raw_tracepoint_args
from observer.bpf.tracefs import TRACEFS, EventFormat
from observer.layout import (
    MAX_KEYS,
    MAX_THREADS,
    AccessCounts,
    AccessKey,
    Drops,
    PendingWrite,
    Recent,
)

REQUIRED = ("kvm_pio", "kvm_mmio", "kvm_userspace_exit", "kvm_entry")
OPTIONAL = ("kvm_fast_mmio",)
BTF, RAW, CLASSIC = "btf", "raw", "classic"


class Attached(NamedTuple):
    """One program on one tracepoint."""

    event: str
    program: Program
    link: Link


FIELDS = {  # what each program reads, by the names tracefs formats and BTF both use
    "kvm_pio": ("rw", "port", "size", "count"),
    "kvm_mmio": ("type", "len", "gpa"),
    "kvm_userspace_exit": ("reason", "errno"),
    "kvm_entry": (),
    "kvm_fast_mmio": ("gpa",),
}


def _source(event: str, fmt: EventFormat, mode: str) -> p.Source:
    if mode in (BTF, RAW):
        args = raw_tracepoint_args(event, *FIELDS[event])
        return {name: (a.offset, a.size) for name, a in args.items()}
    return p.fields_of(fmt, *FIELDS[event])


def _build(event: str, fmt: EventFormat, ctx: p.Source, maps: p.Maps) -> bytes:
    if event == "kvm_pio":
        return p.pio_program(maps, ctx)
    if event == "kvm_mmio":
        return p.mmio_program(maps, ctx, {k: fmt.symbol("type", k) for k in ("write", "read")})
    if event == "kvm_userspace_exit":
        reasons = {k: fmt.symbol("reason", k) for k in ("KVM_EXIT_IO", "KVM_EXIT_MMIO")}
        return p.userspace_exit_program(maps, ctx, reasons)
    if event == "kvm_entry":
        return p.entry_program(maps)
    return p.fast_mmio_program(maps, ctx)


def _attach(mode: str, event: str, fmt: EventFormat, code: bytes) -> Attached:
    name = f"iosig_{event[4:]}"
    if mode == BTF:
        prog = Program(
            sc.PROG_TYPE_TRACING,
            code,
            name,
            attach_type=sc.ATTACH_TRACE_RAW_TP,
            attach_btf_id=kernel_btf().typedef_id(f"btf_trace_{event}"),
        )
    else:
        prog_type = sc.PROG_TYPE_RAW_TRACEPOINT if mode == RAW else sc.PROG_TYPE_TRACEPOINT
        prog = Program(prog_type, code, name)
    try:
        if mode in (BTF, RAW):
            link = Link.raw_tracepoint(prog, event, by_btf=mode == BTF)
        else:
            link = Link.perf_tracepoint(prog, fmt.id)
    except BaseException:
        prog.close()
        raise
    return Attached(event, prog, link)


def _task_access(mode: str) -> tuple[str, int]:
    """How the programs read a thread's migration count: (Maps.task, its offset)."""
    try:
        at = kernel_btf().member_offset("task_struct", "se", "nr_migrations")
    except (OSError, BtfError):
        return p.PER_THREAD, 0
    return (p.TASK_BTF if mode == BTF else p.TASK_PROBE), at


def default_mode() -> str:
    """BTF-typed raw tracepoint programs where the kernel has BTF to place their arguments
    and name their tracepoints, else classic tracepoints."""
    if not os.path.exists(os.path.join(BTF_DIR, "vmlinux")):
        return CLASSIC
    try:
        for event in REQUIRED:
            kernel_btf().typedef_id(f"btf_trace_{event}")
    except BtfError:
        return RAW  # the tracepoints live in a module's BTF: not named from vmlinux's
    return BTF


class KvmProbe:
    """Counts every KVM guest's port and MMIO accesses per (VM, space, addr, len)."""

    def __init__(
        self, tracefs: str = TRACEFS, mode: str | None = None, *, empty: bool = False
    ) -> None:
        """`empty`: attach programs that do nothing, with the same maps, tracepoints and mode
        (the floor `iosignal observe --bench` measures the counting programs against)."""
        self.mode = mode or default_mode()
        formats = {e: read_format("kvm", e, tracefs) for e in REQUIRED}
        for event in OPTIONAL:
            with contextlib.suppress(FileNotFoundError):
                formats[event] = read_format("kvm", event, tracefs)
        # Where each program reads its fields, before anything is made: an unusable format or
        # BTF leaves nothing behind. Unasked, a BTF without the probes means classic.
        try:
            ctx = {e: _source(e, fmt, self.mode) for e, fmt in formats.items()}
        except BtfError:
            if mode is not None:
                raise
            self.mode = CLASSIC
            ctx = {e: _source(e, fmt, self.mode) for e, fmt in formats.items()}
        self.counts = self.pending = self.drops = self.recent = None
        self.attached: list[Attached] = []
        try:
            self.counts = Map(
                sc.MAP_TYPE_PERCPU_HASH, AccessKey, AccessCounts, MAX_KEYS, "kvm_counts"
            )
            task, migrations_at = _task_access(self.mode)
            if task == p.PER_THREAD:
                pending_type, slots = sc.MAP_TYPE_LRU_HASH, MAX_THREADS
            else:
                pending_type, slots = sc.MAP_TYPE_PERCPU_ARRAY, 1
            self.pending = Map(pending_type, ctypes.c_uint32, PendingWrite, slots, "kvm_pending")
            self.drops = Map(sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, Drops, 1, "kvm_drops")
            self.recent = Map(sc.MAP_TYPE_PERCPU_ARRAY, ctypes.c_uint32, Recent, 1, "kvm_recent")
            ids_at = {}
            if task == p.TASK_BTF:
                ids_at = {n: kernel_btf().member_offset("task_struct", n) for n in ("pid", "tgid")}
            maps = p.Maps(
                self.counts.fd,
                self.pending.fd,
                self.drops.fd,
                self.recent.fd,
                task,
                migrations_at,
                ids_at.get("pid", 0),
                ids_at.get("tgid", 0),
            )
            code = {
                e: p.empty_program() if empty else _build(e, fmt, ctx[e], maps)
                for e, fmt in formats.items()
            }
            for event, fmt in formats.items():
                self.attached.append(_attach(self.mode, event, fmt, code[event]))
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
        for m in (self.counts, self.pending, self.drops, self.recent):
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
