"""The BPF layer against the real kernel: maps, program loads, links, errno and verifier log."""

from __future__ import annotations

import ctypes
import errno

import pytest

from observer.bpf import Asm, Link, Map, Program, VerifierError, loaded_programs, read_format
from observer.bpf import syscall as sc
from observer.bpf.asm import R0, R5
from observer.layout import AccessCounts, AccessKey, PendingWrite


def test_struct_sizes_match_the_kernel_headers() -> None:
    # include/uapi/linux/bpf.h and perf_event.h (PERF_ATTR_SIZE_VER5 = 112)
    assert ctypes.sizeof(sc.MapElemAttr) == 32
    assert ctypes.sizeof(sc.MapBatchAttr) == 56
    assert ctypes.sizeof(sc.ProgLoadAttr) == 120  # through attach_btf_obj_fd, padded
    assert sc.ProgLoadAttr.attach_btf_id.offset == 108
    assert ctypes.sizeof(sc.LinkCreateAttr) == 24
    assert ctypes.sizeof(sc.PerfEventAttr) == 112
    assert sc.ProgInfo.name.offset == 64
    assert (sc.ProgInfo.run_time_ns.offset, sc.ProgInfo.run_cnt.offset) == (192, 200)
    assert (ctypes.sizeof(AccessKey), ctypes.sizeof(AccessCounts)) == (16, 24)
    assert ctypes.sizeof(PendingWrite) == 40


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


def test_a_refused_program_carries_the_verifier_log(bpf: None) -> None:
    a = Asm()
    a.mov_reg(R0, R5)  # R5 was never written
    a.exit()
    with pytest.raises(VerifierError) as e:
        Program(sc.PROG_TYPE_TRACEPOINT, a.assemble(), "t_bad")
    assert e.value.errno == errno.EACCES
    assert "R5 !read_ok" in str(e.value)


def test_a_jump_to_an_undefined_label_is_refused_before_the_kernel() -> None:
    a = Asm()
    a.goto("nowhere")
    with pytest.raises(ValueError, match="nowhere"):
        a.assemble()


def _ours() -> set[str]:
    return {name for _, name in loaded_programs() if name == "t_attach"}


def test_link_attaches_to_a_tracepoint_and_closing_detaches(tracefs: str) -> None:
    a = Asm()
    a.mov(R0, 0)
    a.exit()
    prog = Program(sc.PROG_TYPE_TRACEPOINT, a.assemble(), "t_attach")
    assert prog.info().type == sc.PROG_TYPE_TRACEPOINT
    link = Link.perf_tracepoint(prog, read_format("kvm", "kvm_pio").id)
    prog.close()  # the link keeps the program alive
    assert _ours() == {"t_attach"}
    link.close()
    assert _ours() == set()


def test_the_bench_asks_the_kernel_for_cheaper_hooks_and_leaves_nothing_loaded(
    tracefs: str,
) -> None:
    """`observe --bench` says whether an fexit program on kvm_io_bus_write loads (by loading
    one, not by reading a config) and whether kprobes exist; the trial program is unloaded."""
    from observer.bench import cheaper_hooks

    fexit, kprobes = cheaper_hooks(tracefs)
    assert fexit == "fexit on kvm_io_bus_write: loads" or fexit.startswith(
        "fexit on kvm_io_bus_write: refused at BPF_PROG_LOAD: E"
    )
    assert kprobes.startswith("kprobes: ")
    assert "iosig_fexit" not in {name for _, name in loaded_programs()}
