"""Every VMM's KVM_IOEVENTFD and KVM_IRQFD calls, heard on the syscall tracepoints: the struct
the caller passed and the kernel's answer, whoever the caller is."""

from __future__ import annotations

import os

import pytest

from observer.ioctls import CallLog
from observer.probe import KvmProbe
from worker.kvm import Kvm, Mmio, NoDatamatch, Pio


@pytest.fixture
def calls(tracefs: str):
    with KvmProbe() as probe:
        log = CallLog(probe)
        log.drain()
        yield log


def _ours(log: CallLog) -> list:
    return [c for c in log.drain() if c.tgid == os.getpid()]


def test_assign_deassign_and_a_refusal_are_heard_with_the_kernels_answer(calls, kvm_path) -> None:
    """This test process is the VMM: each call is seen as made, the EEXIST one too."""
    kvm = Kvm.open(kvm_path)
    vm = kvm.create_vm()
    efd = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        vm.register_ioevent(efd, Pio(0x510), 4, 0x1)
        with pytest.raises(FileExistsError):
            vm.register_ioevent(efd, Pio(0x510), 4, 0x1)
        vm.register_ioevent(efd, Mmio(0xD000_0000), 0, NoDatamatch)
        vm.unregister_ioevent(efd, Pio(0x510), 4, 0x1)
        got = _ours(calls)
    finally:
        os.close(efd)
        vm.close()
        kvm.close()
    summary = [
        (c.kind, c.deassign, c.space, c.addr, c.len, c.datamatch, c.eventfd, c.errno) for c in got
    ]
    assert summary == [
        ("ioeventfd", False, "pio", 0x510, 4, 0x1, efd, None),
        ("ioeventfd", False, "pio", 0x510, 4, 0x1, efd, "EEXIST"),
        ("ioeventfd", False, "mmio", 0xD000_0000, 0, None, efd, None),
        ("ioeventfd", True, "pio", 0x510, 4, 0x1, efd, None),
    ]
    assert all(c.at <= got[-1].at for c in got)


def test_a_vmm_process_registrations_are_heard(calls, vmm) -> None:
    v = vmm(0x510, 0x520, datamatch={0x520: 0x7})
    got = [c for c in calls.drain() if c.tgid == v.pid]
    assert [(c.space, c.addr, c.len, c.datamatch, c.errno) for c in got] == [
        ("pio", 0x510, 4, None, None),
        ("pio", 0x520, 4, 0x7, None),
    ]
