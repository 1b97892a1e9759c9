"""Raw tracepoint arguments from the kernel's BTF, and clear errors when BTF lacks them."""

from __future__ import annotations

import os

import pytest
from support import need

from observer.bpf.btf import Btf, BtfError, raw_tracepoint_args


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
