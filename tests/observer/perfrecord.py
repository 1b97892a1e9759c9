"""The kernel's KVM tracepoints of one process, event by event: `perf record` and `perf script`.

perf stat counts; this keeps the order, which says what path a write took. The kernel traces
kvm_pio for a write before it dispatches it, and for a read once its data is there: at once
when a kernel device (or nothing) answered, after the userspace exit when the VMM did. So the
userspace exits between a write and the next kvm_pio of its thread are the write's own (0 or
1) plus, when that next one is a read, the read's (0 or 1).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import NamedTuple

EVENTS = ("kvm:kvm_pio", "kvm:kvm_mmio", "kvm:kvm_userspace_exit")
KVM_EXIT_IO = 2
_PIO = re.compile(
    r"pio_(?P<rw>read|write) at (?P<port>0x[0-9a-f]+) size (?P<size>\d+) count (?P<count>\d+)"
)
_EXIT = re.compile(r"reason \S+ \((?P<reason>-?\d+)\)")


class Event(NamedTuple):
    """One tracepoint hit: kind "pio" (rw, port, size), "mmio" or "exit" (reason in `port`)."""

    tid: int
    kind: str
    rw: str = ""
    port: int = 0
    size: int = 0
    count: int = 1  # items a string I/O hit moves (rep ins/outs)


def record_args(path: Path) -> list[str]:
    """The `perf record` prefix that records EVENTS of a command and every thread it makes."""
    events = [a for event in EVENTS for a in ("-e", event)]
    return ["perf", "record", "-q", "-m", "1024", "-o", str(path), *events, "--"]


def read_events(path: Path) -> list[Event]:
    """Every recorded hit in order; raise if perf lost any (the order would be a lie)."""
    out = subprocess.run(
        ["perf", "script", "-i", str(path), "-F", "tid,event,trace", "--show-lost-events"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    events = []
    for line in out.splitlines():
        if "LOST" in line:
            raise RuntimeError(f"perf lost events: {line.strip()}")
        tid, _, rest = line.strip().partition(" ")
        if (m := _PIO.search(rest)) is not None:
            pio = (m["rw"], int(m["port"], 16), int(m["size"]), int(m["count"]))
            events.append(Event(int(tid), "pio", *pio))
        elif (m := _EXIT.search(rest)) is not None:
            events.append(Event(int(tid), "exit", port=int(m["reason"])))
        elif "kvm_mmio" in rest:
            events.append(Event(int(tid), "mmio"))
    return events


def exits_after_writes(events: list[Event], port: int) -> list[tuple[int, Event | None]]:
    """For each write to `port`: the KVM_EXIT_IO exits of its thread before that thread's next
    kvm_pio or kvm_mmio, and that next event (None at the end)."""
    found = []
    for i, write in enumerate(events):
        if write.kind != "pio" or write.rw != "write" or write.port != port:
            continue
        exits, following = 0, None
        for later in events[i + 1 :]:
            if later.tid != write.tid:
                continue
            if later.kind != "exit":
                following = later
                break
            exits += later.port == KVM_EXIT_IO
        found.append((exits, following))
    return found
