"""Tracepoint formats: offsets and symbols from tracefs, and clear errors for bad ones."""

from __future__ import annotations

import errno

import pytest

from observer.bpf.tracefs import FormatError, parse_format, read_format

PIO = """name: kvm_pio
ID: 110
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:unsigned int rw;\toffset:8;\tsize:4;\tsigned:0;
\tfield:unsigned int port;\toffset:12;\tsize:4;\tsigned:0;
\tfield:char name[16];\toffset:16;\tsize:16;\tsigned:0;

print fmt: "x", __print_symbolic(REC->rw, { 0, "KVM_" "IN" }, { 1, "out" })
"""


def test_fields_and_symbols_are_parsed() -> None:
    fmt = parse_format("kvm", PIO)
    assert (fmt.name, fmt.id) == ("kvm_pio", 110)
    assert fmt.field("port").offset == 12
    assert fmt.fields["common_pid"].signed
    assert fmt.fields["name"].size == 16
    assert fmt.symbol("rw", "KVM_IN") == 0  # adjacent C strings are joined
    assert fmt.symbol("rw", "out") == 1


def test_a_missing_field_or_symbol_is_named() -> None:
    fmt = parse_format("kvm", PIO)
    with pytest.raises(FormatError, match="kvm:kvm_pio has no field 'count'"):
        fmt.field("count")
    with pytest.raises(FormatError, match="16 bytes"):
        fmt.field("name")
    with pytest.raises(FormatError, match="names no 'write'"):
        fmt.symbol("rw", "write")


def test_text_that_is_not_a_format_is_refused() -> None:
    with pytest.raises(FormatError, match="not a tracepoint format"):
        parse_format("kvm", "hello\n")


def test_a_missing_tracepoint_says_which(tracefs: str) -> None:
    with pytest.raises(FileNotFoundError) as e:
        read_format("kvm", "kvm_no_such_event", tracefs)
    assert e.value.errno == errno.ENOENT
    assert "no tracepoint kvm:kvm_no_such_event" in str(e.value)


def test_this_kernels_kvm_formats_have_what_the_programs_read(tracefs: str) -> None:
    pio = read_format("kvm", "kvm_pio", tracefs)
    assert {"rw", "port", "size", "count"} <= set(pio.fields)
    mmio = read_format("kvm", "kvm_mmio", tracefs)
    assert set(mmio.symbols["type"]) >= {"read", "write"}
    exit_ = read_format("kvm", "kvm_userspace_exit", tracefs)
    assert exit_.symbol("reason", "KVM_EXIT_IO") != exit_.symbol("reason", "KVM_EXIT_MMIO")
