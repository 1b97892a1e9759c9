"""The kernel's BTF read in Python: tracepoint typedefs and struct layouts, clear errors."""

from __future__ import annotations

import os

import pytest
from support import need

from observer.bpf.btf import Btf, BtfError, kernel_btf


@pytest.fixture(scope="module")
def btf() -> None:
    ok = os.path.exists("/sys/kernel/btf/vmlinux")
    need("kernel BTF", ok, "a kernel with CONFIG_DEBUG_INFO_BTF (the programs are placed by it)")


def test_bytes_that_are_not_btf_are_refused() -> None:
    with pytest.raises(BtfError, match="bad magic"):
        Btf(bytes(64))


def test_struct_members_and_tracepoint_typedefs_are_found(btf) -> None:
    vmlinux = kernel_btf()
    assert vmlinux.member_offset("list_head", "next") == 0
    assert vmlinux.member_offset("list_head", "prev") == 8
    nested = vmlinux.member_offset("task_struct", "se", "nr_migrations")
    parts = vmlinux.member_offset("task_struct", "se")
    assert nested == parts + vmlinux.member_offset("sched_entity", "nr_migrations")
    assert vmlinux.typedef_id("btf_trace_kvm_pio") > 0  # what a tp_btf program attaches to
    run = vmlinux.struct_id("kvm_run")  # what the exit program reads: uapi, so fixed
    assert vmlinux.member_offset("kvm_run", "exit_reason") == 8
    assert vmlinux.size(run) >= 32 + 256
    with pytest.raises(BtfError, match="task_struct has no member nope"):
        vmlinux.member_offset("task_struct", "nope")
    with pytest.raises(BtfError):
        vmlinux.typedef_id("btf_trace_kvm_nothing")
