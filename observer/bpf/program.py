"""What the kernel says of loaded BPF programs: their info, every program on the host, and
their run-time statistics (the programs themselves are loaded by libbpf, observer/bpf/libbpf.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator

from observer.bpf import syscall as sc
from observer.bpf.fd import FdObject


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
