"""`Program` and `Link`: a loaded BPF program and its attachment, each owning its fd.

A refused load raises `VerifierError` carrying the verifier's log. Closing a link's fd (or the
process dying, even by SIGKILL) detaches the program.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator

from observer.bpf import syscall as sc
from observer.bpf.fd import FdObject

LICENSE = b"Dual MIT/GPL"  # GPL-compatible, as the kernel asks of tracing programs


class VerifierError(OSError):
    """The kernel refused a program; the message ends with the verifier's log."""


class Program(FdObject):
    """A loaded BPF program."""

    def __init__(
        self,
        prog_type: int,
        insns: bytes,
        name: str,
        log_size: int = 1 << 20,
        *,
        attach_type: int = 0,
        attach_btf_id: int = 0,
    ):
        self.name = name
        code = ctypes.create_string_buffer(insns, len(insns))
        lic = ctypes.create_string_buffer(LICENSE)
        attr = sc.ProgLoadAttr(
            prog_type=prog_type,
            insn_cnt=len(insns) // 8,
            insns=ctypes.addressof(code),
            license=ctypes.addressof(lic),
            prog_name=name.encode()[: sc.OBJ_NAME_LEN - 1],
            expected_attach_type=attach_type,
            attach_btf_id=attach_btf_id,
        )
        try:
            self.fd = sc.bpf(sc.PROG_LOAD, attr, f"load program {name}")
        except OSError as first:
            # Load again with the log on: the verifier says why (kept out of the fast path).
            log = ctypes.create_string_buffer(log_size)
            attr.log_level, attr.log_size, attr.log_buf = 1, log_size, ctypes.addressof(log)
            try:
                self.fd = sc.bpf(sc.PROG_LOAD, attr, f"load program {name}")
            except OSError as e:
                text = log.value.decode(errors="replace").strip()
                raise VerifierError(e.errno, f"{e.strerror}; verifier log:\n{text}") from None
            raise first  # refused once, accepted with a log: not a verifier problem

    def info(self) -> sc.ProgInfo:
        """OBJ_GET_INFO_BY_FD: type, id and name of this program."""
        return prog_info(self.fd)


class Link(FdObject):
    """An attachment of a program; closing it detaches."""

    def __init__(self, fd: int, anchor: int = -1) -> None:
        self.fd, self.anchor = fd, anchor  # anchor: the perf event fd a perf link rides on

    @classmethod
    def raw_tracepoint(cls, prog: Program, name: str, *, by_btf: bool = False) -> Link:
        """RAW_TRACEPOINT_OPEN: attach a RAW_TRACEPOINT program to tracepoint `name`, or a
        TRACING one (`by_btf`: its tracepoint was named by BTF id when it was loaded)."""
        cname = ctypes.create_string_buffer(name.encode())
        attr = sc.RawTracepointAttr(name=0 if by_btf else ctypes.addressof(cname), prog_fd=prog.fd)
        return cls(sc.bpf(sc.RAW_TRACEPOINT_OPEN, attr, f"attach raw tracepoint {name}"))

    @classmethod
    def perf_tracepoint(cls, prog: Program, event_id: int) -> Link:
        """perf_event_open the tracepoint with this tracefs id, then LINK_CREATE on it."""
        pattr = sc.PerfEventAttr(
            type=sc.PERF_TYPE_TRACEPOINT,
            size=ctypes.sizeof(sc.PerfEventAttr),
            config=event_id,
            sample_period=1,
            wakeup_events=1,
        )
        # One event on CPU 0 is enough: a tracepoint runs its BPF programs on every CPU.
        pfd = sc.perf_event_open(pattr, -1, 0, -1, sc.PERF_FLAG_FD_CLOEXEC)
        try:
            attr = sc.LinkCreateAttr(
                prog_fd=prog.fd, target_fd=pfd, attach_type=sc.ATTACH_PERF_EVENT
            )
            fd = sc.bpf(sc.LINK_CREATE, attr, f"attach program {prog.name} to tracepoint")
        except BaseException:
            os.close(pfd)
            raise
        return cls(fd, pfd)

    def close(self) -> None:
        """Detach: close the link and its perf event (idempotent)."""
        super().close()
        if self.anchor >= 0:
            os.close(self.anchor)
            self.anchor = -1


def prog_info(fd: int) -> sc.ProgInfo:
    """OBJ_GET_INFO_BY_FD for a program fd."""
    info = sc.ProgInfo()
    attr = sc.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    sc.bpf(sc.OBJ_GET_INFO_BY_FD, attr, "program info")
    return info


def loaded_programs() -> Iterator[tuple[int, str]]:
    """(id, name) of every BPF program on the host (PROG_GET_NEXT_ID; needs CAP_SYS_ADMIN)."""
    start = 0
    while True:
        attr = sc.GetIdAttr(start_id=start)
        try:
            sc.bpf(sc.PROG_GET_NEXT_ID, attr, "list programs")
        except FileNotFoundError:
            return
        start = attr.next_id
        try:
            fd = sc.bpf(sc.PROG_GET_FD_BY_ID, sc.GetIdAttr(start_id=start), "open program")
        except OSError as e:
            if e.errno == errno.ENOENT:  # unloaded meanwhile
                continue
            raise
        try:
            yield start, prog_info(fd).name.decode(errors="replace")
        finally:
            os.close(fd)


class RunStats(FdObject):
    """While open, the kernel counts each program's runs and run time (ENABLE_STATS)."""

    def __init__(self) -> None:
        attr = sc.EnableStatsAttr(type=sc.STATS_RUN_TIME)
        self.fd = sc.bpf(sc.ENABLE_STATS, attr, "enable run-time statistics")
