"""Raw tracepoint arguments from the kernel's BTF, and clear errors when BTF lacks them."""

from __future__ import annotations

import os

import pytest
from support import need

from observer.bpf.btf import Btf, BtfError, kernel_btf, raw_tracepoint_args


@pytest.fixture(scope="module")
def btf() -> None:
    ok = os.path.exists("/sys/kernel/btf/vmlinux")
    need("kernel BTF", ok, "a kernel with CONFIG_DEBUG_INFO_BTF (else the probe uses classic)")


def test_kvm_pio_arguments_are_placed_in_tp_proto_order(btf) -> None:
    args = raw_tracepoint_args("kvm_pio", "rw", "port", "size", "count")
    assert [(a.offset, a.size) for a in args.values()] == [(0, 4), (8, 4), (16, 4), (24, 4)]
    assert raw_tracepoint_args("kvm_mmio", "gpa")["gpa"].size == 8


def test_a_missing_argument_or_tracepoint_is_named(btf) -> None:
    with pytest.raises(BtfError, match="kvm_pio has no argument nope"):
        raw_tracepoint_args("kvm_pio", "nope")
    with pytest.raises(BtfError, match="no BTF for tracepoint kvm_nothing"):
        raw_tracepoint_args("kvm_nothing")


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
    with pytest.raises(BtfError, match="task_struct has no member nope"):
        vmlinux.member_offset("task_struct", "nope")
    with pytest.raises(BtfError):
        vmlinux.typedef_id("btf_trace_kvm_nothing")
