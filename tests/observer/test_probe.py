"""The counting programs on real KVM: separate VMM processes, exact in-kernel/userspace split,
each userspace exit counted by the address in the exiting vCPU's kvm_run."""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
import time
from collections.abc import Callable

import pytest
from support import ring_together

from observer.bpf import RunStats, prog_info
from observer.counter import CountReader, Counts, ValueReader
from observer.probe import KvmProbe

IOEVENTFD_PORT, USER_PORT, MMIO_GPA = 0x510, 0x520, 0xD000_0000


@pytest.fixture
def probe(tracefs: str):
    """The compiled programs, attached (tracefs: the fixture checks BPF and KVM are here)."""
    with KvmProbe() as p:
        yield p


def _unmatched(p: KvmProbe) -> int:
    assert p.drops is not None
    return sum(d.unmatched for d in p.drops.lookup(ctypes.c_uint32(0)) or [])


def _ring_both(rings: dict) -> None:
    ring_together(rings, IOEVENTFD_PORT, USER_PORT)


def _ring_both_while(rings: dict, background: Callable[[threading.Event], None]) -> None:
    """_ring_both while `background(stop)` runs on its own thread, until `stop` is set after."""
    stop = threading.Event()
    thread = threading.Thread(target=background, args=(stop,))
    thread.start()
    try:
        _ring_both(rings)
    finally:
        stop.set()
        thread.join()


def test_two_vmms_one_on_each_cpu_are_exact(probe, vmm) -> None:
    """Each CPU's recent slot serves whichever thread runs there: one VMM per CPU, then both
    swapped, counted exactly."""
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    cpus = sorted(os.sched_getaffinity(0))
    reader = CountReader(probe.counts, probe.recent)
    reader.deltas()
    for first, second in ((cpus[0], cpus[-1]), (cpus[-1], cpus[0])):
        for v, cpu in ((a, first), (b, second)):
            for tid in os.listdir(f"/proc/{v.pid}/task"):
                os.sched_setaffinity(int(tid), {cpu})
        rings = {a: (2000, 600), b: (900, 1300)}
        _ring_both(rings)
        got = reader.deltas()
        for v, (n, m) in rings.items():
            assert got[(v.pid, "pio", IOEVENTFD_PORT, 4)] == Counts(n, 0, 0)
            assert got[(v.pid, "pio", USER_PORT, 4)] == Counts(m, m, 0)


def test_threads_moved_between_cpus_are_counted_exactly(probe, vmm) -> None:
    """VMM threads thrown between CPUs while they ring: every write and every userspace exit
    is counted for its own address (an exit is read from its own kvm_run, so a migration
    between a write and its exit changes nothing), and none is unmatched."""
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    cpus = sorted(os.sched_getaffinity(0))
    reader = CountReader(probe.counts, probe.recent)
    reader.deltas()
    before = _unmatched(probe)

    def shuffle(stop: threading.Event) -> None:
        i = 0
        while not stop.is_set():
            for v in (a, b):
                for tid in os.listdir(f"/proc/{v.pid}/task"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(int(tid), {cpus[i % len(cpus)]})
                i += 1
            time.sleep(0.0005)

    rings = {a: (20000, 4000), b: (15000, 5000)}
    _ring_both_while(rings, shuffle)
    got = reader.deltas()
    for v, (n, m) in rings.items():
        assert got[(v.pid, "pio", IOEVENTFD_PORT, 4)] == Counts(n, 0, 0)
        assert got[(v.pid, "pio", USER_PORT, 4)] == Counts(m, m, 0)
    assert _unmatched(probe) == before


def test_writes_split_exactly_into_in_kernel_and_userspace(probe, vmm) -> None:
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    reader = CountReader(probe.counts, probe.recent)
    reader.deltas()  # whatever ran before
    rings = {a: (3000, 700, 200), b: (1100, 2500, 300)}

    def ring(v, n, m, k):
        v.ring("pio", IOEVENTFD_PORT, 4, n)
        v.ring("pio", USER_PORT, 4, m)
        v.ring("mmio", MMIO_GPA, 4, k)

    threads = [threading.Thread(target=ring, args=(v, *nmk)) for v, nmk in rings.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = reader.deltas()
    for v, (n, m, k) in rings.items():
        assert got[(v.pid, "pio", IOEVENTFD_PORT, 4)] == Counts(n, 0, 0)
        assert got[(v.pid, "pio", USER_PORT, 4)] == Counts(m, m, 0)
        assert got[(v.pid, "mmio", MMIO_GPA, 4)] == Counts(k, k, 0)
        assert got[(v.pid, "pio", IOEVENTFD_PORT, 4)].in_kernel == n
        own = v.counts()  # the VMM's own counters agree
        assert own["signals"][str(IOEVENTFD_PORT)] == n
        assert ["pio", USER_PORT, 4, m] in own["exits"]
    assert not any(key[0] in (a.pid, b.pid) for key in reader.deltas())  # nothing moved since


def test_forget_deletes_an_exited_vms_counters(probe, vmm) -> None:
    v, w = vmm(), vmm()
    reader = CountReader(probe.counts, probe.recent)
    v.ring("pio", USER_PORT, 4, 10)
    assert reader.deltas()[(v.pid, "pio", USER_PORT, 4)] == Counts(10, 10, 0)
    v.quit()
    reader.forget({v.pid})
    # Its key may wait in the slot of the CPU it last wrote on, counted once all the same;
    # another VM's writes on every CPU take the slots, and then the counters are gone.
    assert not any(key[0] == v.pid for key in reader.deltas())
    for cpu in sorted(os.sched_getaffinity(0)):
        for tid in os.listdir(f"/proc/{w.pid}/task"):
            os.sched_setaffinity(int(tid), {cpu})
        w.ring("pio", USER_PORT, 4, 1)
    assert not any(key[0] == v.pid for key in reader.deltas())
    assert not any(key[0] == v.pid for key in reader.totals())
    assert not any(k.tgid == v.pid for k, _ in probe.counts.lookup_batch())


def test_ticks_read_while_two_vmms_share_a_cpu_sum_to_the_exact_counts(probe, vmm) -> None:
    """Two VMMs on one CPU take turns in its slot (a hand-over at nearly every switch) while a
    reader ticks every millisecond: no tick is negative and the ticks sum to exact counts."""
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    cpu = min(os.sched_getaffinity(0))
    for v in (a, b):
        for tid in os.listdir(f"/proc/{v.pid}/task"):
            os.sched_setaffinity(int(tid), {cpu})
    reader = CountReader(probe.counts, probe.recent)
    reader.deltas()
    sums: dict = {}

    def tick(stop: threading.Event) -> None:
        while True:
            last = stop.is_set()
            for addr, c in reader.deltas().items():
                assert min(c) >= 0
                s = sums.get(addr, Counts(0, 0, 0))
                sums[addr] = Counts(*(x + y for x, y in zip(s, c, strict=True)))
            if last:
                return
            time.sleep(0.001)

    rings = {a: (30000, 3000), b: (25000, 4000)}
    _ring_both_while(rings, tick)
    for v, (n, m) in rings.items():
        assert sums[(v.pid, "pio", IOEVENTFD_PORT, 4)] == Counts(n, 0, 0)
        assert sums[(v.pid, "pio", USER_PORT, 4)] == Counts(m, m, 0)


def test_the_benchs_floor_probe_runs_on_every_access_and_counts_nothing(tracefs, vmm) -> None:
    """`observe --bench` measures the counting programs against programs that return at once
    on the same tracepoints: those run for every access (the kernel's own run count) and
    leave the maps untouched, so their cost is the hooks' alone."""
    v = vmm(IOEVENTFD_PORT)
    with KvmProbe() as counting:
        events = counting.events()
    with RunStats(), KvmProbe(empty=True) as floor:
        assert floor.events() == events
        v.ring("pio", IOEVENTFD_PORT, 4, 500)
        v.ring("pio", USER_PORT, 4, 300)
        runs = {event: prog_info(fd).run_cnt for event, fd in floor.program_fds().items()}
        assert floor.counts is not None and floor.recent is not None
        assert list(floor.counts.lookup_batch()) == []
        assert all(s.writes == 0 for s in floor.recent.lookup(ctypes.c_uint32(0)) or [])
    # other VMs on the host may add runs, never take them away
    assert runs["kvm_pio"] >= 500 + 300
    assert runs["kvm_userspace_exit"] >= 300


def test_values_of_writes_that_exit_are_counted_per_value(probe, vmm) -> None:
    """exit_values: how often each value was written in writes that exited to userspace (what
    a datamatch diagnosis names), through each CPU's value slot and its hand-overs; writes an
    ioeventfd took in the kernel leave no value."""
    v = vmm(IOEVENTFD_PORT)
    values = ValueReader(probe.values, probe.value_slots)
    values.deltas()
    v.ring("pio", USER_PORT, 4, 40, value=0x5)
    v.ring("pio", USER_PORT, 4, 30, value=0x7)  # the slot hands 0x5's count over
    v.ring("mmio", MMIO_GPA, 4, 25, value=0x3)
    v.ring("pio", USER_PORT, 2, 20, value=0x5)  # same port, another width: another series
    v.ring("pio", IOEVENTFD_PORT, 4, 30)
    got = {at: n for at, n in values.deltas().items() if at[0][0] == v.pid}
    assert got[((v.pid, "pio", USER_PORT, 4), 0x5)] == 40
    assert got[((v.pid, "pio", USER_PORT, 4), 0x7)] == 30
    assert got[((v.pid, "mmio", MMIO_GPA, 4), 0x3)] == 25
    assert got[((v.pid, "pio", USER_PORT, 2), 0x5)] == 20
    assert not any(at[0][2] == IOEVENTFD_PORT for at in got)
    v.ring("pio", USER_PORT, 4, 10, value=0x7)
    again = {at: n for at, n in values.deltas().items() if at[0][:3] == (v.pid, "pio", USER_PORT)}
    assert again == {((v.pid, "pio", USER_PORT, 4), 0x7): 10}  # (the pass-done port moves too)


def test_registrations_lost_is_read_from_the_ioctl_programs_globals(probe) -> None:
    """What /metrics reports as drops{kind="registrations_lost"}: the `lost` global of
    kvm_ioctls.bpf.c, read from its .bss map (set here, as the program would on a full ring)."""
    from observer.layout import IoctlGlobals

    assert probe.ioctl_globals is not None
    assert probe.registrations_lost() == 0
    (now,) = probe.ioctl_globals.lookup(ctypes.c_uint32(0))
    probe.ioctl_globals.update(ctypes.c_uint32(0), IoctlGlobals(now.inflight, 7, 0))
    assert probe.registrations_lost() == 7
