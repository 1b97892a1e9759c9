"""The counting programs: what each KVM tracepoint adds to the maps of observer.layout.

kvm_pio / kvm_mmio (write)  recent.writes += count if this CPU's Recent slot holds the key
                            [VM, space, addr, len], else the slot hands its counts over to
                            counts[its key] and takes the new key; this CPU's pending
                            write is armed with that key, the thread and its migration count
kvm_pio (in) / kvm_mmio     counts[...].reads += count; reads disarm the pending write, so do
  (read, unsatisfied read)  an MMIO read about to exit and the guest entry below
kvm_userspace_exit          reason KVM_EXIT_IO/MMIO, no error: the armed pending write of the
                            same space, thread and migration count exited to userspace:
                            (recent or counts)[its key].userspace += count (a thread that
                            migrated since its write: drops.unmatched += 1, never another key)
kvm_entry                   the guest runs again: a write still armed was handled in the kernel
kvm_fast_mmio (if present)  a len-0 MMIO ioeventfd took the write in the kernel: writes += 1

Without kvm_entry a userspace PIO read (traced only when it completes) would be blamed on the
write before it. Fields are read where each event's tracefs format says they are.
"""

from __future__ import annotations

from observer.bpf import asm
from observer.bpf.asm import FP, R0, R1, R2, R3, R4, R6, R7, R8, R9, Asm
from observer.bpf.syscall import NOEXIST
from observer.bpf.tracefs import EventFormat
from observer.layout import (
    SPACE_MMIO,
    SPACE_PIO,
    AccessCounts,
    AccessKey,
    Drops,
    PendingWrite,
    Recent,
    offset,
)

# Stack layout below the frame pointer.
KEY_AT = -16  # AccessKey being counted
ZERO_AT = KEY_AT - 24  # a zeroed AccessCounts, to insert a new key
TID_AT = ZERO_AT - 4  # the thread id, key of `pending`
DROP_AT = TID_AT - 4  # key of `drops` and `pending` (0)
MIG_AT = DROP_AT - 8  # the thread's migration count
PEND_AT = MIG_AT - 40  # a PendingWrite being inserted (PER_THREAD)
FLUSH_AT = PEND_AT - 16  # the key a Recent slot hands over to `counts`
PARK_AT = FLUSH_AT - 8  # a count parked across helper calls (they clobber R1-R5)

Source = dict[str, tuple[int, int]]  # field -> (offset in the context, size)


TASK_BTF, TASK_PROBE, PER_THREAD = "btf", "probe", "thread"


class Maps:
    """The fds of the three maps, and how the programs tell a thread's migrations.

    `task`: TASK_BTF reads current->se.nr_migrations directly (a BTF-typed TRACING program),
    and the thread and process ids from the same task (`pid_at`, `tgid_at`), so a program
    makes one helper call, not two; TASK_PROBE reads the count through
    bpf_probe_read_kernel (~50 ns more per event, measured), both at `migrations_at`;
    PER_THREAD (no BTF to place it): `pending` is an LRU hash keyed by thread id instead of a
    per-CPU slot, so a thread's write is found wherever its exit runs.
    """

    def __init__(
        self,
        counts: int,
        pending: int,
        drops: int,
        recent: int,
        task: str,
        migrations_at: int = 0,
        pid_at: int = 0,
        tgid_at: int = 0,
    ) -> None:
        self.counts, self.pending, self.drops, self.recent = counts, pending, drops, recent
        self.task, self.migrations_at = task, migrations_at
        self.pid_at, self.tgid_at = pid_at, tgid_at


def fields_of(fmt: EventFormat, *names: str) -> Source:
    """Offsets and sizes of `names` in a classic tracepoint record, from its format file."""
    return {n: (fmt.field(n).offset, fmt.field(n).size) for n in names}


def _lookup(a: Asm, map_fd: int, key_at: int) -> None:
    a.load_map_fd(R1, map_fd)
    a.mov_reg(R2, FP)
    a.alu64("add", R2, key_at)
    a.call(asm.MAP_LOOKUP_ELEM)


def _whoami(a: Asm, m: Maps) -> None:
    """One helper call per program: the thread id at TID_AT, the process id in the key and,
    with BTF, the thread's migration count at MIG_AT. A helper call and its return cost
    ~10-20 ns on a host with return-thunk mitigations (SRSO safe RET, measured), so with BTF
    the ids are read from the task, not asked of bpf_get_current_pid_tgid."""
    if m.task == TASK_BTF:
        a.call(asm.GET_CURRENT_TASK_BTF)
        a.load(4, R1, R0, m.pid_at)  # the thread (task->pid), as bpf_get_current_pid_tgid
        a.store(4, FP, TID_AT, R1)
        a.load(4, R1, R0, m.tgid_at)  # the process (task->tgid): the VM
        a.store(4, FP, KEY_AT + offset(AccessKey, "tgid"), R1)
        a.load(8, R1, R0, m.migrations_at)  # checked direct loads (BPF_PROBE_MEM)
        a.store(8, FP, MIG_AT, R1)
        return
    a.call(asm.GET_CURRENT_PID_TGID)
    a.store(4, FP, TID_AT, R0)  # low half: the thread
    a.alu64("rsh", R0, 32)
    a.store(4, FP, KEY_AT + offset(AccessKey, "tgid"), R0)  # high half: the process (the VM)


def _key_prologue(a: Asm, ctx: Source, space: int, addr: str, width: str) -> None:
    """Complete the AccessKey at KEY_AT (tgid is there): `space`, ctx[addr], ctx[width]."""
    a.store_imm(4, FP, KEY_AT + offset(AccessKey, "space"), space)  # space, len, pad = 0
    a.load(ctx[width][1], R1, R6, ctx[width][0])
    a.store(1, FP, KEY_AT + offset(AccessKey, "len"), R1)
    a.load(ctx[addr][1], R1, R6, ctx[addr][0])
    a.store(8, FP, KEY_AT + offset(AccessKey, "addr"), R1)


def _bump(a: Asm, m: Maps, field: str, amount: int, tag: str) -> None:
    """counts[key at KEY_AT].field += amount register (a key not yet there is inserted)."""
    _bump_fields(a, m, [(field, amount)], tag, KEY_AT)


def _bump_fields(a: Asm, m: Maps, adds: list[tuple[str, int]], tag: str, key_at: int) -> None:
    """counts[key at key_at].field += register, for each (field, register) of `adds`."""
    _lookup(a, m.counts, key_at)
    a.jump("jne", R0, 0, f"{tag}_add")
    for i in range(0, 24, 8):
        a.store_imm(8, FP, ZERO_AT + i, 0)
    a.load_map_fd(R1, m.counts)
    a.mov_reg(R2, FP)
    a.alu64("add", R2, key_at)
    a.mov_reg(R3, FP)
    a.alu64("add", R3, ZERO_AT)
    a.mov(R4, NOEXIST)  # another CPU may have inserted it meanwhile: then just look it up
    a.call(asm.MAP_UPDATE_ELEM)
    _lookup(a, m.counts, key_at)
    a.jump("jne", R0, 0, f"{tag}_add")
    _drop(a, m, "map_full", tag)  # the map is full: count the loss instead
    a.goto(f"{tag}_end")
    a.label(f"{tag}_add")
    # A plain add, not a locked one: the value is this CPU's copy and the programs run with
    # preemption off, so nothing else writes it meanwhile (measured ~10 ns less per event).
    for field, amount in adds:
        at = offset(AccessCounts, field)
        _add(a, R0, at, amount)
    a.label(f"{tag}_end")


def _add(a: Asm, base: int, at: int, amount: int) -> None:
    """*(u64 *)(base + at) += amount register (through R1)."""
    a.load(8, R1, base, at)
    a.alu64("add", R1, amount, reg=True)
    a.store(8, base, at, R1)


def _recent(a: Asm, m: Maps) -> None:
    """R8 = this CPU's Recent slot (0 never happens for a one-slot array; the verifier asks)."""
    a.store_imm(4, FP, DROP_AT, 0)
    _lookup(a, m.recent, DROP_AT)
    a.mov_reg(R8, R0)


def _same_key(a: Asm, other: str) -> None:
    """Jump to `other` unless the key at KEY_AT is the Recent slot's (R8)."""
    for i in (0, 8):
        a.load(8, R1, FP, KEY_AT + i)
        a.load(8, R2, R8, offset(Recent, "key") + i)
        a.jump("jne", R1, R2, other, reg=True)


def _count_write(a: Asm, m: Maps, amount: int, tag: str) -> None:
    """Recent.writes += amount register, for the key at KEY_AT (clobbers R8, and R9 when the
    slot changes key: its counts go to `counts` first, under the reader's generation check)."""
    _recent(a, m)
    a.jump("jeq", R8, 0, f"{tag}_hash")
    _same_key(a, f"{tag}_change")
    a.goto(f"{tag}_add")
    a.label(f"{tag}_change")
    a.load(8, R1, R8, offset(Recent, "writes"))
    a.load(8, R2, R8, offset(Recent, "userspace"))
    a.alu64("or", R1, R2, reg=True)
    a.jump("jeq", R1, 0, f"{tag}_take")  # nothing to hand over (a fresh slot)
    for i in (0, 8):
        a.load(8, R1, R8, offset(Recent, "key") + i)
        a.store(8, FP, FLUSH_AT + i, R1)
    a.load(8, R9, R8, offset(Recent, "writes"))
    a.load(8, R1, R8, offset(Recent, "userspace"))
    a.store(8, FP, PARK_AT, R1)
    # counts[slot key] += the slot's counts: userspace parked on the stack, writes in R9
    _bump_fields(a, m, [("writes", R9)], f"{tag}_fw", FLUSH_AT)
    a.load(8, R9, FP, PARK_AT)
    _bump_fields(a, m, [("userspace", R9)], f"{tag}_fu", FLUSH_AT)
    a.label(f"{tag}_take")
    # gen_b first and gen_a last: a reader copying the slot forward sees them equal only if
    # no change overlapped its copy
    a.load(8, R1, R8, offset(Recent, "gen_a"))
    a.alu64("add", R1, 1)
    a.store(8, R8, offset(Recent, "gen_b"), R1)
    for i in (0, 8):
        a.load(8, R2, FP, KEY_AT + i)
        a.store(8, R8, offset(Recent, "key") + i, R2)
    a.store_imm(8, R8, offset(Recent, "writes"), 0)
    a.store_imm(8, R8, offset(Recent, "userspace"), 0)
    a.store(8, R8, offset(Recent, "gen_a"), R1)
    a.label(f"{tag}_add")
    _add(a, R8, offset(Recent, "writes"), amount)
    a.goto(f"{tag}_done")
    a.label(f"{tag}_hash")
    _bump(a, m, "writes", amount, f"{tag}_h")
    a.label(f"{tag}_done")


def _count_userspace(a: Asm, m: Maps, amount: int, tag: str) -> None:
    """userspace += amount register for the key at KEY_AT: in the Recent slot if it holds
    that key, else in `counts`."""
    _recent(a, m)
    a.jump("jeq", R8, 0, f"{tag}_hash")
    _same_key(a, f"{tag}_hash")
    _add(a, R8, offset(Recent, "userspace"), amount)
    a.goto(f"{tag}_done")
    a.label(f"{tag}_hash")
    _bump(a, m, "userspace", amount, f"{tag}_h")
    a.label(f"{tag}_done")


def _drop(a: Asm, m: Maps, field: str, tag: str) -> None:
    """drops[0].field += 1 (clobbers R0-R5)."""
    a.store_imm(4, FP, DROP_AT, 0)
    _lookup(a, m.drops, DROP_AT)
    a.jump("jeq", R0, 0, f"{tag}_dropped")
    a.mov(R1, 1)
    a.atomic_add(8, R0, offset(Drops, field), R1)
    a.label(f"{tag}_dropped")


def _migrations(a: Asm, m: Maps) -> None:
    """The current thread's migration count at MIG_AT (0 if unreadable or per-thread; with
    BTF, _whoami put it there)."""
    if m.task == TASK_BTF:
        return
    if m.task == PER_THREAD:
        a.store_imm(8, FP, MIG_AT, 0)
        return
    a.call(asm.GET_CURRENT_TASK)
    a.mov_reg(R3, R0)
    a.alu64("add", R3, m.migrations_at)
    a.mov_reg(R1, FP)
    a.alu64("add", R1, MIG_AT)
    a.mov(R2, 8)
    a.call(asm.PROBE_READ_KERNEL)  # zeroes MIG_AT if it fails


def _pending(a: Asm, m: Maps) -> None:
    """R0 = this CPU's PendingWrite (or this thread's, PER_THREAD: the tid is at TID_AT), or 0."""
    if m.task == PER_THREAD:
        _lookup(a, m.pending, TID_AT)
        return
    a.store_imm(4, FP, DROP_AT, 0)
    _lookup(a, m.pending, DROP_AT)


def _disarm(a: Asm, m: Maps, tag: str) -> None:
    """Disarm the pending write if it is this thread's (the thread id is at TID_AT)."""
    _pending(a, m)
    a.jump("jeq", R0, 0, f"{tag}_none")
    a.load(4, R1, R0, offset(PendingWrite, "tid"))
    a.load(4, R2, FP, TID_AT)
    a.jump("jne", R1, R2, f"{tag}_none", reg=True)
    a.store_imm(4, R0, offset(PendingWrite, "armed"), 0)
    a.label(f"{tag}_none")


def _arm(a: Asm, m: Maps, count: int, tag: str) -> None:
    """The pending write = the key at KEY_AT, `count` register writes, this thread, armed."""
    _migrations(a, m)
    _pending(a, m)
    if m.task == PER_THREAD:  # the thread's first write: insert its slot
        a.jump("jne", R0, 0, f"{tag}_set")
        for i in range(0, 40, 8):
            a.store_imm(8, FP, PEND_AT + i, 0)
        a.load_map_fd(R1, m.pending)
        a.mov_reg(R2, FP)
        a.alu64("add", R2, TID_AT)
        a.mov_reg(R3, FP)
        a.alu64("add", R3, PEND_AT)
        a.mov(R4, 0)
        a.call(asm.MAP_UPDATE_ELEM)
        _lookup(a, m.pending, TID_AT)
    a.jump("jeq", R0, 0, f"{tag}_end")
    a.label(f"{tag}_set")
    for i in (0, 8):
        a.load(8, R1, FP, KEY_AT + i)
        a.store(8, R0, offset(PendingWrite, "key") + i, R1)
    a.store(4, R0, offset(PendingWrite, "count"), count)
    a.store_imm(4, R0, offset(PendingWrite, "armed"), 1)
    a.load(4, R1, FP, TID_AT)
    a.store(4, R0, offset(PendingWrite, "tid"), R1)
    a.load(8, R1, FP, MIG_AT)
    a.store(8, R0, offset(PendingWrite, "migrations"), R1)
    a.label(f"{tag}_end")


def _done(a: Asm) -> bytes:
    a.label("out")
    a.mov(R0, 0)
    a.exit()
    return a.assemble()


def pio_program(m: Maps, ctx: Source) -> bytes:
    """kvm_pio: count a port write (arming it) or read, `count` times for string I/O."""
    a = Asm()
    a.mov_reg(R6, R1)
    _whoami(a, m)
    _key_prologue(a, ctx, SPACE_PIO, "port", "size")
    a.load(ctx["count"][1], R7, R6, ctx["count"][0])
    a.load(ctx["rw"][1], R8, R6, ctx["rw"][0])
    a.jump("jeq", R8, 0, "read")  # the format prints rw ? "write" : "read"
    _count_write(a, m, R7, "w")
    _arm(a, m, R7, "arm")
    a.goto("out")
    a.label("read")
    _bump(a, m, "reads", R7, "r")
    _disarm(a, m, "dis")
    return _done(a)


def mmio_program(m: Maps, ctx: Source, kinds: dict[str, int]) -> bytes:
    """kvm_mmio: count a write (arming it) or a completed read; an unsatisfied read disarms."""
    a = Asm()
    a.mov_reg(R6, R1)
    _whoami(a, m)
    a.load(ctx["type"][1], R8, R6, ctx["type"][0])
    a.jump("jeq", R8, kinds["write"], "write")
    a.jump("jeq", R8, kinds["read"], "read")
    _disarm(a, m, "unsat")  # an unsatisfied read: the exit that follows is the read's
    a.goto("out")
    a.label("write")
    _key_prologue(a, ctx, SPACE_MMIO, "gpa", "len")
    a.mov(R7, 1)
    _count_write(a, m, R7, "w")
    a.mov(R9, 1)
    _arm(a, m, R9, "arm")
    a.goto("out")
    a.label("read")
    _key_prologue(a, ctx, SPACE_MMIO, "gpa", "len")
    a.mov(R7, 1)
    _bump(a, m, "reads", R7, "r")
    _disarm(a, m, "dis")
    return _done(a)


def userspace_exit_program(m: Maps, ctx: Source, reasons: dict[str, int]) -> bytes:
    """kvm_userspace_exit: an I/O exit is the armed pending write's; count it, disarm."""
    a = Asm()
    a.mov_reg(R6, R1)
    a.load(ctx["errno"][1], R1, R6, ctx["errno"][0])
    a.jump("jne", R1, 0, "out")  # KVM_RUN failed (e.g. EINTR): no access exited
    a.load(ctx["reason"][1], R8, R6, ctx["reason"][0])
    a.mov(R9, SPACE_PIO)
    a.jump("jeq", R8, reasons["KVM_EXIT_IO"], "io")
    a.mov(R9, SPACE_MMIO)
    a.jump("jne", R8, reasons["KVM_EXIT_MMIO"], "out")
    a.label("io")
    if m.task == PER_THREAD:
        _whoami(a, m)  # the thread id keys its pending write
    _pending(a, m)
    a.jump("jeq", R0, 0, "out")
    a.load(4, R1, R0, offset(PendingWrite, "armed"))
    a.jump("jeq", R1, 0, "out")  # no write waiting on this CPU (a read, or taken already)
    a.mov_reg(R7, R0)  # R7 = the slot (callee-saved across the helpers below)
    if m.task != PER_THREAD:
        _whoami(a, m)  # only now: an exit with nothing armed costs no helper call
    a.load(4, R1, R7, offset(PendingWrite, "tid"))
    a.load(4, R2, FP, TID_AT)
    a.jump("jne", R1, R2, "unmatched", reg=True)  # another thread's write: left armed for it
    a.store_imm(4, R7, offset(PendingWrite, "armed"), 0)
    a.load(1, R1, R7, offset(PendingWrite, "key") + offset(AccessKey, "space"))
    a.jump("jne", R1, R9, "out", reg=True)  # a write of the other space: not this exit's
    _migrations(a, m)
    a.load(8, R1, R7, offset(PendingWrite, "migrations"))
    a.load(8, R2, FP, MIG_AT)
    a.jump("jne", R1, R2, "unmatched", reg=True)  # the thread moved: its write may be elsewhere
    for i in (0, 8):
        a.load(8, R1, R7, offset(PendingWrite, "key") + i)
        a.store(8, FP, KEY_AT + i, R1)
    a.load(4, R7, R7, offset(PendingWrite, "count"))
    _count_userspace(a, m, R7, "u")
    a.goto("out")
    a.label("unmatched")
    _drop(a, m, "unmatched", "u_unmatched")
    return _done(a)


def entry_program(m: Maps) -> bytes:
    """kvm_entry: the guest runs again, so a write still armed did not exit to userspace."""
    a = Asm()
    _whoami(a, m)
    _disarm(a, m, "dis")
    return _done(a)


def empty_program() -> bytes:
    """Returns at once: attached in the counting programs' place, it measures what the
    tracepoint's hook alone costs a guest access (the floor under any program there)."""
    return _done(Asm())


def fast_mmio_program(m: Maps, ctx: Source) -> bytes:
    """kvm_fast_mmio: a len-0 ioeventfd took an MMIO write without decoding it (len 0)."""
    a = Asm()
    a.mov_reg(R6, R1)
    _whoami(a, m)
    a.store_imm(4, FP, KEY_AT + 4, SPACE_MMIO)
    a.load(ctx["gpa"][1], R1, R6, ctx["gpa"][0])
    a.store(8, FP, KEY_AT + 8, R1)
    a.mov(R7, 1)
    _count_write(a, m, R7, "w")
    _disarm(a, m, "dis")
    return _done(a)
