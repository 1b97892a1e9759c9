"""The counting programs on real KVM: separate VMM processes, exact in-kernel/userspace split."""

from __future__ import annotations

import threading

import pytest

from observer.counter import CountReader, Counts
from observer.probe import KvmProbe

IOEVENTFD_PORT, USER_PORT, MMIO_GPA = 0x510, 0x520, 0xD000_0000


@pytest.fixture(params=["raw", "classic"])
def probe(tracefs: str, request):
    """The probe in each mode: raw tracepoints (BTF places arguments), classic (tracefs)."""
    with KvmProbe(tracefs, mode=request.param) as p:
        assert p.mode == request.param
        yield p


def test_writes_split_exactly_into_in_kernel_and_userspace(probe, vmm) -> None:
    a, b = vmm(IOEVENTFD_PORT), vmm(IOEVENTFD_PORT)
    reader = CountReader(probe.counts)
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
    v = vmm()
    reader = CountReader(probe.counts)
    v.ring("pio", USER_PORT, 4, 10)
    assert reader.deltas()[(v.pid, "pio", USER_PORT, 4)] == Counts(10, 10, 0)
    v.quit()
    reader.forget({v.pid})
    assert not any(key[0] == v.pid for key in reader.totals())
