"""The BPF layer on the real kernel: maps by bpf(2), objects by libbpf, errno, verifier log."""

from __future__ import annotations

import ctypes
import errno
import subprocess
import time

import pytest

from observer.bpf import Map, loaded_programs
from observer.bpf import syscall as sc
from observer.bpf.libbpf import BpfObject, VerifierError
from observer.layout import AccessCounts, AccessKey, IoctlEvent
from observer.probe import PROGS


def test_struct_sizes_match_the_kernel_headers() -> None:
    # include/uapi/linux/bpf.h and perf_event.h (PERF_ATTR_SIZE_VER5 = 112)
    assert ctypes.sizeof(sc.MapElemAttr) == 32
    assert ctypes.sizeof(sc.MapBatchAttr) == 56
    assert sc.ProgInfo.name.offset == 64
    assert (sc.ProgInfo.run_time_ns.offset, sc.ProgInfo.run_cnt.offset) == (192, 200)
    assert (ctypes.sizeof(AccessKey), ctypes.sizeof(AccessCounts)) == (16, 32)
    assert ctypes.sizeof(IoctlEvent) == 96  # observer/progs/iosignal.h (test_progs: its BTF)


def test_hash_map_update_lookup_delete_and_walk(bpf: None) -> None:
    with Map(sc.MAP_TYPE_HASH, ctypes.c_uint32, ctypes.c_uint64, 8, "t_hash") as m:
        for k in (1, 2, 3):
            m.update(ctypes.c_uint32(k), ctypes.c_uint64(k * 10))
        assert [v.value for v in m.lookup(ctypes.c_uint32(2))] == [20]
        with pytest.raises(FileExistsError):
            m.update(ctypes.c_uint32(2), ctypes.c_uint64(0), sc.NOEXIST)
        m.delete(ctypes.c_uint32(2))
        assert m.lookup(ctypes.c_uint32(2)) is None
        assert sorted(k.value for k in m.iter_keys()) == [1, 3]
        got = {k.value: [v.value for v in vals] for k, vals in m.lookup_batch(chunk=1)}
        assert got == {1: [10], 3: [30]}
        with pytest.raises(FileNotFoundError):
            m.delete(ctypes.c_uint32(2))


def test_percpu_map_has_one_value_per_possible_cpu(bpf: None) -> None:
    key = AccessKey(tgid=7, space=1, len=4, addr=0xD000_0000)
    with Map(sc.MAP_TYPE_PERCPU_HASH, AccessKey, AccessCounts, 4, "t_percpu") as m:
        m.update(key, AccessCounts(writes=5, userspace=2))
        values = m.lookup(key)
        assert len(values) == sc.possible_cpus()
        assert {(v.writes, v.userspace, v.reads) for v in values} == {(5, 2, 0)}
        [(k, vals)] = m.lookup_batch()
        assert (k.tgid, k.space, k.len, k.addr) == (7, 1, 4, 0xD000_0000)
        assert sum(v.writes for v in vals) == 5 * sc.possible_cpus()


def test_a_map_on_a_bad_fd_raises_ebadf_from_every_call(bpf: None) -> None:
    m = Map(sc.MAP_TYPE_HASH, ctypes.c_uint32, ctypes.c_uint64, 1, "t_bad")
    m.close()
    m.fd = 10_000  # not open
    calls = [
        lambda: m.lookup(ctypes.c_uint32(1)),
        lambda: m.update(ctypes.c_uint32(1), ctypes.c_uint64(1)),
        lambda: m.delete(ctypes.c_uint32(1)),
        lambda: m.get_next_key(None),
        lambda: m.lookup_batch(),
    ]
    for call in calls:
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EBADF
    m.fd = -1


def _ours() -> set[tuple[int, str]]:
    """(id, name) of iosignal's programs on the host (other processes may load some too)."""
    return {(i, name) for i, name in loaded_programs() if name.startswith("iosig_")}


def test_an_object_loads_attaches_and_closing_detaches(tracefs: str) -> None:
    before = _ours()
    obj = BpfObject(str(PROGS / "kvm_counts.bpf.o"), ["iosig_floor_pio"])
    assert obj.attached() == ["iosig_floor_pio"]
    mine = {(i, n) for i, n in _ours() - before if i == obj.program_fd_id("iosig_floor_pio")}
    assert [n for _, n in mine] == ["iosig_floor_pio"]
    obj.close()
    # the kernel frees a detached program after an RCU grace period: gone within seconds
    deadline = time.monotonic() + 10
    while mine & _ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not mine & _ours()


BAD = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
SEC("tp_btf/kvm_pio") int iosig_bad(void *ctx) { volatile int *p = 0; return *p; }
"""


def test_a_refused_program_carries_the_verifiers_log(tracefs: str, tmp_path) -> None:
    """A program the verifier refuses (compiled here by clang, as make bpf does): EACCES, the
    verifier's own words in the error, nothing left loaded."""
    src = tmp_path / "bad.bpf.c"
    src.write_text(BAD)
    obj = tmp_path / "bad.bpf.o"
    cmd = ["clang", "-g", "-O2", "-target", "bpf", f"-I{PROGS}", "-c", str(src), "-o", str(obj)]
    subprocess.run(cmd, check=True)
    with pytest.raises(VerifierError) as e:
        BpfObject(str(obj), ["iosig_bad"])
    assert e.value.errno == errno.EACCES
    assert "invalid mem access" in e.value.log
    assert not {n for _, n in _ours()} & {"iosig_bad"}


def test_asking_for_a_program_the_object_lacks_names_it(tracefs: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"no program.*iosig_nothing"):
        BpfObject(str(PROGS / "kvm_counts.bpf.o"), ["iosig_nothing"])


def test_the_bench_asks_the_kernel_for_cheaper_hooks_and_leaves_nothing_loaded(
    tracefs: str,
) -> None:
    """`observe --bench` says whether an fexit program on kvm_io_bus_write loads (by loading
    one, not by reading a config) and whether kprobes exist; the trial program is unloaded."""
    from benchmarks.observebench import cheaper_hooks

    fexit, kprobes = cheaper_hooks(tracefs)
    assert fexit == "fexit on kvm_io_bus_write: loads" or fexit.startswith(
        "fexit on kvm_io_bus_write: refused at BPF_PROG_LOAD: E"
    )
    assert kprobes.startswith("kprobes: ")
    assert "iosig_fexit" not in {name for _, name in loaded_programs()}
