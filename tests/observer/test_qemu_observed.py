"""The observer against a real VMM: Debian's QEMU with KVM, SeaBIOS driving a legacy virtio-blk
disk with its own driver. Ground truth from outside the observer: QEMU's own trace
(kvm_set_ioeventfd_pio, virtio_queue_notify) and perf's counts of the kernel's tracepoints over
QEMU's whole life. With ioeventfd=on QEMU registers the queue-notify port and the firmware reads
a port QEMU serves in userspace after every kick: the observer must put the kicks in the kernel
and the reads' exits on the read's own port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from perfrecord import Event
from qemu import NOTIFY_PORT, Qemu

from observer.counter import CountReader, Counts
from observer.ioctls import Call, CallLog
from observer.probe import KvmProbe

pytestmark = [pytest.mark.kvm]

REQUESTS = 40
NOTIFY = ("pio", NOTIFY_PORT, 2)


class Watched:
    """One QEMU run watched from before its start to after its end."""

    def __init__(self, qemu: Qemu, counts: dict, calls: list[Call]) -> None:
        self.qemu, self.counts, self.calls = qemu, counts, calls
        self.kernel = qemu.kernel_counts()
        self.events = qemu.kernel_events()
        self.trace = qemu.trace()

    def at(self, space: str, addr: int, length: int) -> Counts:
        return self.counts.get((self.qemu.pid, space, addr, length), Counts(0, 0, 0, 0))


def _watch(workdir: Path, ioeventfd: bool) -> Watched:
    with KvmProbe() as probe:
        reader, log = CountReader(probe.counts, probe.recent), CallLog(probe)
        reader.deltas()
        log.drain()
        qemu = Qemu(workdir, REQUESTS, ioeventfd=ioeventfd, perf=True, perf_record=True)
        with qemu:
            qemu.wait_done(120)
        totals = {a: c for a, c in reader.totals().items() if a[0] == qemu.pid}
        calls = [c for c in log.drain() if c.tgid == qemu.pid]
    before = reader._prev
    assert not any(a[0] == qemu.pid for a in before)
    return Watched(qemu, totals, calls)


@pytest.fixture(scope="module")
def with_ioeventfd(kvm_path: str, tracefs: str, tmp_path_factory) -> Iterator[Watched]:
    yield _watch(tmp_path_factory.mktemp("qemu-on"), ioeventfd=True)


@pytest.fixture(scope="module")
def without_ioeventfd(kvm_path: str, tracefs: str, tmp_path_factory) -> Iterator[Watched]:
    yield _watch(tmp_path_factory.mktemp("qemu-off"), ioeventfd=False)


def test_with_ioeventfd_the_kicks_stay_in_the_kernel(with_ioeventfd: Watched) -> None:
    w = with_ioeventfd
    notify = w.at(*NOTIFY)
    assert notify.writes == w.kernel[f"kvm:kvm_pio@{NOTIFY_PORT:#x}"] >= REQUESTS
    assert notify.in_kernel >= 0.99 * notify.writes, notify
    # the firmware's ISR read after each kick exits, counted on its own port as a read's exit
    isr = w.at("pio", NOTIFY_PORT + 3, 1)
    assert isr.read_exits >= REQUESTS and isr.writes == 0


def test_without_ioeventfd_every_kick_exits(without_ioeventfd: Watched) -> None:
    w = without_ioeventfd
    notify = w.at(*NOTIFY)
    assert notify.writes == w.kernel[f"kvm:kvm_pio@{NOTIFY_PORT:#x}"] >= REQUESTS
    assert notify.userspace >= 0.99 * notify.writes, notify
    assert w.trace.notifies() == notify.userspace  # QEMU handled each one in userspace


@pytest.mark.parametrize("run", ["with_ioeventfd", "without_ioeventfd"])
def test_totals_equal_the_kernels_counts_over_the_vms_life(run: str, request) -> None:
    """Every port access and every access exit of QEMU's life, as the kernel's tracepoints saw
    them (perf): each port's writes and reads, item by item (a string I/O hit moves `count`),
    and the userspace exits for port or MMIO accesses, the observer's exits of writes and of
    reads."""
    w: Watched = request.getfixturevalue(run)
    kernel: dict[tuple[str, int, int], int] = {}
    for e in w.events:
        if e.kind == "pio":
            key = ("pio" if e.rw == "write" else "pio-in", e.port, e.size)
            kernel[key] = kernel.get(key, 0) + e.count
    ours = {}
    for (_, space, addr, length), c in w.counts.items():
        if space == "pio":
            ours.update(
                {
                    k: n
                    for k, n in (
                        (("pio", addr, length), c.writes),
                        (("pio-in", addr, length), c.reads),
                    )
                    if n
                }
            )
    assert ours == kernel
    assert sum(kernel.values()) >= w.kernel["kvm:kvm_pio"]  # hits: fewer than items, or equal
    exits = sum(c.userspace + c.read_exits for c in w.counts.values())
    assert exits == _exit_items(w.events)
    assert (
        len([e for e in w.events if e.kind == "exit" and e.port in (2, 6)])
        == (
            w.kernel["kvm:kvm_userspace_exit@io"]  # perf record and perf stat agree
        )
    )


def _exit_items(events: list[Event]) -> int:
    """Items moved by the kernel's access exits: a port write's exit follows its kvm_pio hit on
    the same thread, a port read's exit comes before its hit (traced when it completes); a
    string I/O hit moves `count` items in one exit, an MMIO exit one."""
    items, last = 0, {}
    for i, e in enumerate(events):
        if e.kind != "exit" or e.port not in (2, 6):
            last[e.tid] = e
            continue
        before = last.pop(e.tid, None)
        if e.port == 6:
            items += 1
        elif before is not None and before.kind == "pio" and before.rw == "write":
            items += before.count
        else:  # a read: its hit is the thread's next one
            hit = next(x for x in events[i + 1 :] if x.tid == e.tid and x.kind == "pio")
            items += hit.count
    return items


def test_registrations_equal_qemus_own_trace(with_ioeventfd: Watched) -> None:
    """Every KVM_IOEVENTFD QEMU made over its life (the start-up probe of seven datamatch values
    and its undoing, the notify port at DRIVER_OK, its deassign at exit), as QEMU traced them."""
    w = with_ioeventfd
    seen = [
        (
            c.space,
            c.addr,
            c.len,
            c.datamatch is not None,
            c.datamatch or 0,
            not c.deassign,
            c.eventfd,
        )
        for c in w.calls
        if c.kind == "ioeventfd"
    ]
    traced = [
        (t.space, t.addr, t.width, t.datamatch, t.value if t.datamatch else 0, t.assign, t.fd)
        for t in w.trace.ioeventfds()
    ]
    assert seen == traced
    assert ("pio", NOTIFY_PORT, 2, True, 0, True) in {s[:6] for s in seen}
    assert all(c.errno is None for c in w.calls)
