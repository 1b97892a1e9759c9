"""The compiled objects against their sources and the Python reader: every struct the programs
and observer/layout.py share has the same size and offsets in the objects' own BTF."""

from __future__ import annotations

import ctypes
import struct
import subprocess

import pytest

from observer import latencylayout, layout
from observer.bpf.btf import Btf
from observer.probe import PROGS

SHARED = {  # each object's structs that observer/layout.py mirrors
    "kvm_counts.bpf.o": {
        "access_key": layout.AccessKey,
        "access_counts": layout.AccessCounts,
        "recent": layout.Recent,
        "value_key": layout.ValueKey,
        "value_slot": layout.ValueSlot,
        "drops": layout.Drops,
    },
    "kvm_ioctls.bpf.o": {"ioctl_event": layout.IoctlEvent},
    "kvm_latency.bpf.o": {
        "access_key": layout.AccessKey,
        "doorbell_latency": latencylayout.DoorbellLatency,
        "hist_key": latencylayout.HistKey,
        "latency_drops": latencylayout.LatencyDrops,
    },
}


def _btf_section(path) -> bytes:
    """The .BTF section of an ELF64 little-endian object."""
    data = path.read_bytes()
    shoff, shentsize, shnum, shstrndx = (
        struct.unpack_from("<Q", data, 0x28)[0],
        *struct.unpack_from("<HHH", data, 0x3A),
    )
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx]
    for name_off, _type, _flags, _addr, offset, size in headers:
        start = names[4] + name_off
        if data[start : data.index(b"\0", start)] == b".BTF":
            return data[offset : offset + size]
    raise AssertionError(f"{path} has no .BTF section")


@pytest.mark.parametrize("obj", sorted(SHARED))
def test_layout_matches_the_objects_btf(obj: str) -> None:
    btf = Btf(_btf_section(PROGS / obj))
    for c_name, py in SHARED[obj].items():
        assert btf.size(btf.struct_id(c_name)) == ctypes.sizeof(py), c_name
        for field, *_ in py._fields_:
            assert btf.member_offset(c_name, field) == getattr(py, field).offset, (c_name, field)


def _section_symbols(path, section: bytes) -> dict[str, tuple[int, int]]:
    """name -> (offset, size) of an ELF64 object's symbols in `section` (its .symtab), where
    libbpf places a program's globals (clang leaves their BTF offsets 0 for libbpf to fill)."""
    data = path.read_bytes()
    shoff, shentsize, shnum, shstrndx = (
        struct.unpack_from("<Q", data, 0x28)[0],
        *struct.unpack_from("<HHH", data, 0x3A),
    )
    headers = [struct.unpack_from("<IIQQQQI", data, shoff + i * shentsize) for i in range(shnum)]

    def text(table: int, off: int) -> bytes:
        start = headers[table][4] + off
        return data[start : data.index(b"\0", start)]

    wanted = [i for i, h in enumerate(headers) if text(shstrndx, h[0]) == section]
    symtab = next(h for h in headers if h[1] == 2)  # SHT_SYMTAB; its names in section sh_link
    out = {}
    for at in range(symtab[4], symtab[4] + symtab[5], 24):
        name, _info, _other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, at)
        if shndx in wanted:
            out[text(symtab[6], name).decode()] = (value, size)
    return out


def test_the_ioctl_globals_match_the_objects_bss() -> None:
    """The reader's IoctlGlobals is kvm_ioctls' .bss byte for byte (the map's one value)."""
    bss = _section_symbols(PROGS / "kvm_ioctls.bpf.o", b".bss")
    py = layout.IoctlGlobals
    assert bss == {f: (getattr(py, f).offset, getattr(py, f).size) for f, _ in py._fields_}


def test_the_objects_are_what_their_sources_compile_to() -> None:
    """make bpf-check (CI runs it in make test too): clang rebuilds each, byte for byte."""
    done = subprocess.run(["make", "-s", "bpf-check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "match their sources" in done.stdout
