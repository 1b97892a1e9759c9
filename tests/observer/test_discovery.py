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
    (tmp_path / "124-5").mkdir()  # a VM was created
    discovery.scan()
    assert discovery.full_scans == 3
