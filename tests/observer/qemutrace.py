"""Ground truth from a QEMU run: its trace log (`-D`, the "log" trace backend Debian builds) and
`perf stat`'s count of the kernel's KVM tracepoints over the process's life.

A trace line is `TID@SECONDS.MICROS:EVENT ARGS` (with `-msg timestamp=on`); the TID tells the
paths apart: QEMU handles a notify on the vCPU thread when the write exited to userspace, on the
main loop thread when it came through an ioeventfd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# Legacy virtio-pci: the queue-notify register's offset in BAR0 (VIRTIO_PCI_QUEUE_NOTIFY).
LEGACY_QUEUE_NOTIFY = 0x10
# The tracepoints perf counts for `Kernel` (kvm_exit never fires under kvm_pvm, so not asked).
KERNEL_EVENTS = ("kvm:kvm_pio", "kvm:kvm_mmio", "kvm:kvm_userspace_exit")

_LINE = re.compile(r"^(?P<tid>\d+)@(?P<time>\d+\.\d+):(?P<event>\w+) ?(?P<args>.*)$")
_IOEVENTFD = re.compile(
    r"fd: (?P<fd>-?\d+) @(?P<addr>0x[0-9a-f]+) val=(?P<value>0x[0-9a-f]+) "
    r"assign: (?P<assign>[01]) size: (?P<width>\d+) match: (?P<match>[01])"
)
_BAR = re.compile(r"(?P<dev>\S+) \S+ (?P<bar>\d+),(?P<addr>0x[0-9a-f]+)\+(?P<size>0x[0-9a-f]+)")


@dataclass(frozen=True)
class TraceLine:
    """One trace event as QEMU logged it."""

    tid: int
    time: float
    event: str
    args: str


@dataclass(frozen=True)
class IoeventfdChange:
    """One KVM_IOEVENTFD call QEMU made (kvm_set_ioeventfd_pio/_mmio), as it printed it."""

    tid: int
    space: str  # "pio" or "mmio"
    addr: int
    width: int
    datamatch: bool
    value: int  # the datamatch value (QEMU prints it, 0, even when datamatch is off)
    assign: bool  # False: a deassign
    fd: int


@dataclass(frozen=True)
class BarMapping:
    """A BAR QEMU mapped (pci_update_mappings_add) when the firmware programmed it."""

    device: str
    bar: int
    addr: int
    size: int


class QemuTrace:
    """The parsed `-D` log of one QEMU run."""

    def __init__(self, text: str) -> None:
        self.lines = [_parse(line) for line in text.splitlines() if _LINE.match(line)]

    @classmethod
    def read(cls, path: Path) -> QemuTrace:
        """Parse the log file at `path` (empty if QEMU has not written it yet)."""
        return cls(path.read_text(errors="replace") if path.exists() else "")

    def events(self, name: str) -> list[TraceLine]:
        """Every line of trace event `name`, in order."""
        return [line for line in self.lines if line.event == name]

    def ioeventfds(self) -> list[IoeventfdChange]:
        """Every ioeventfd assign and deassign, PIO and MMIO, in the order QEMU made them."""
        changes = []
        for line in self.lines:
            if line.event in ("kvm_set_ioeventfd_pio", "kvm_set_ioeventfd_mmio"):
                m = _IOEVENTFD.search(line.args)
                if m is None:
                    raise ValueError(f"unexpected {line.event} arguments: {line.args!r}")
                changes.append(
                    IoeventfdChange(
                        tid=line.tid,
                        space=line.event.rsplit("_", 1)[1],
                        addr=int(m["addr"], 16),
                        width=int(m["width"]),
                        datamatch=m["match"] == "1",
                        value=int(m["value"], 16),
                        assign=m["assign"] == "1",
                        fd=int(m["fd"]),
                    )
                )
        return changes

    def bars(self, device: str = "virtio-blk-pci") -> list[BarMapping]:
        """The BARs of `device` that QEMU mapped, in order."""
        found = []
        for line in self.events("pci_update_mappings_add"):
            m = _BAR.match(line.args)
            if m is not None and m["dev"] == device:
                found.append(
                    BarMapping(device, int(m["bar"]), int(m["addr"], 16), int(m["size"], 16))
                )
        return found

    def notify_port(self) -> int:
        """The virtio-blk queue-notify port: legacy BAR0 (I/O space) + 0x10, as last mapped."""
        bar0 = [b for b in self.bars() if b.bar == 0]
        if not bar0:
            raise LookupError("the firmware has not mapped the virtio-blk device's BAR0 yet")
        return bar0[-1].addr + LEGACY_QUEUE_NOTIFY

    def notifies(self, tid: int | None = None) -> int:
        """virtio_queue_notify events (each one queue kick QEMU handled), of one thread or all."""
        return sum(1 for line in self.events("virtio_queue_notify") if tid in (None, line.tid))

    def reads(self) -> int:
        """virtio-blk read requests QEMU handled (virtio_blk_handle_read)."""
        return len(self.events("virtio_blk_handle_read"))


def _parse(line: str) -> TraceLine:
    m = _LINE.match(line)
    assert m is not None  # the caller matched it
    return TraceLine(int(m["tid"]), float(m["time"]), m["event"], m["args"])


def read_perf_counts(path: Path) -> list[int]:
    """The counts of a `perf stat -x,` output file, in the order of its events (one line each;
    a count perf could not read is -1)."""
    counts = []
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if line.startswith("#") or len(fields) < 3 or not fields[2]:
            continue
        counts.append(int(fields[0]) if fields[0].isdigit() else -1)
    return counts
