"""Discovery on the real host: a VMM process appears, is described, and is gone once it exits."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from observer.discovery import Discovery
from observer.kvmstats import KvmDebugfs


def test_a_vmm_is_found_described_and_gone_after_it_exits(vmm) -> None:
    debugfs = KvmDebugfs()
    for discovery in (Discovery(), Discovery(kvm_dir=debugfs.kvm if debugfs.present else None)):
        v = vmm(0x510)
        found = {vm.pid: vm for vm in discovery.scan().values()}
        vm = found[v.pid]
        assert vm.key.pid == v.pid and vm.vcpus == 1 and "vmm.py" in vm.cmdline
        assert abs(vm.started_at - datetime.now(UTC)) < timedelta(minutes=2)
        assert os.getpid() not in found  # this test process holds no VM
        if debugfs.present:
            assert debugfs.vcpu_threads(vm), "KVM's debugfs names the vCPU thread"
        v.quit()
        assert v.pid not in {vm.pid for vm in discovery.scan().values()}


def test_unchanged_kvm_entries_reuse_the_last_pass_until_a_full_one_is_due(tmp_path) -> None:
    (tmp_path / "123-4").mkdir()  # stands in for KVM's debugfs folder: one entry per VM
    discovery = Discovery(kvm_dir=str(tmp_path), full_every=3)
    first = discovery.scan()
    assert [discovery.scan() for _ in range(3)] == [first] * 3
    assert discovery.full_scans == 1  # entries unchanged: no /proc pass
    discovery.scan()
    assert discovery.full_scans == 2  # full_every reached
    (tmp_path / "124-5").mkdir()  # a VM was created: only new processes are looked at
    discovery.scan()
    assert discovery.full_scans == 2


def test_between_full_passes_only_new_processes_fds_are_read(vmm) -> None:
    discovery = Discovery(full_every=1000, young_ticks=2)
    discovery.scan()
    processes = sum(n.isdigit() for n in os.listdir("/proc"))
    v = vmm(0x510)  # a new process: read every tick while young, so its VM is found at once
    assert v.pid in {vm.pid for vm in discovery.scan().values()}
    for _ in range(3):
        discovery.scan()
    before = discovery.fd_scans
    assert v.pid in {vm.pid for vm in discovery.scan().values()}  # alive: same start time
    assert discovery.fd_scans - before < processes // 2  # old processes are skipped
    v.quit()
    assert v.pid not in {vm.pid for vm in discovery.scan().values()}  # gone within one tick
    assert discovery.full_scans == 1
