"""bpf(2) through ctypes for reading maps and programs: numbers, attribute structs, the call.

One `ctypes.Structure` per member of `union bpf_attr` that iosignal uses, laid out as in
include/uapi/linux/bpf.h; the kernel accepts a shorter attr than its own as long as the bytes it
knows beyond ours are zero, so each struct stops at the last field iosignal sets.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

SYS_BPF = 321  # x86_64

# bpf(2) commands (enum bpf_cmd)
MAP_CREATE = 0
MAP_LOOKUP_ELEM = 1
MAP_UPDATE_ELEM = 2
MAP_DELETE_ELEM = 3
MAP_GET_NEXT_KEY = 4
PROG_GET_NEXT_ID = 11
PROG_GET_FD_BY_ID = 13
OBJ_GET_INFO_BY_FD = 15
MAP_LOOKUP_BATCH = 24
ENABLE_STATS = 32
STATS_RUN_TIME = 0

# map types (enum bpf_map_type)
MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2
MAP_TYPE_PERCPU_HASH = 5
MAP_TYPE_PERCPU_ARRAY = 6
MAP_TYPE_LRU_HASH = 9

# map update flags
ANY, NOEXIST, EXIST = 0, 1, 2

OBJ_NAME_LEN = 16


class MapCreateAttr(ctypes.Structure):
    """bpf_attr for MAP_CREATE."""

    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * OBJ_NAME_LEN),
    ]


class MapElemAttr(ctypes.Structure):
    """bpf_attr for MAP_LOOKUP_ELEM, MAP_UPDATE_ELEM, MAP_DELETE_ELEM, MAP_GET_NEXT_KEY."""

    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),  # next_key for MAP_GET_NEXT_KEY
        ("flags", ctypes.c_uint64),
    ]


class MapBatchAttr(ctypes.Structure):
    """bpf_attr for MAP_LOOKUP_BATCH."""

    _fields_ = [
        ("in_batch", ctypes.c_uint64),
        ("out_batch", ctypes.c_uint64),
        ("keys", ctypes.c_uint64),
        ("values", ctypes.c_uint64),
        ("count", ctypes.c_uint32),
        ("map_fd", ctypes.c_uint32),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class GetIdAttr(ctypes.Structure):
    """bpf_attr for PROG_GET_NEXT_ID and PROG_GET_FD_BY_ID."""

    _fields_ = [
        ("start_id", ctypes.c_uint32),  # prog_id for PROG_GET_FD_BY_ID
        ("next_id", ctypes.c_uint32),
        ("open_flags", ctypes.c_uint32),
    ]


class InfoAttr(ctypes.Structure):
    """bpf_attr for OBJ_GET_INFO_BY_FD."""

    _fields_ = [
        ("bpf_fd", ctypes.c_uint32),
        ("info_len", ctypes.c_uint32),
        ("info", ctypes.c_uint64),
    ]


class ProgInfo(ctypes.Structure):
    """The head of struct bpf_prog_info: type, id, name and run-time statistics."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("tag", ctypes.c_uint8 * 8),
        ("jited_prog_len", ctypes.c_uint32),
        ("xlated_prog_len", ctypes.c_uint32),
        ("jited_prog_insns", ctypes.c_uint64),
        ("xlated_prog_insns", ctypes.c_uint64),
        ("load_time", ctypes.c_uint64),
        ("created_by_uid", ctypes.c_uint32),
        ("nr_map_ids", ctypes.c_uint32),
        ("map_ids", ctypes.c_uint64),
        ("name", ctypes.c_char * OBJ_NAME_LEN),
        ("ifindex", ctypes.c_uint32),
        ("gpl_compatible", ctypes.c_uint32),
        ("netns_dev", ctypes.c_uint64),
        ("netns_ino", ctypes.c_uint64),
        ("_unused", ctypes.c_uint8 * 88),  # jited symbols, BTF, func/line info, prog tags
        ("run_time_ns", ctypes.c_uint64),  # counted while run-time stats are enabled
        ("run_cnt", ctypes.c_uint64),
    ]


class EnableStatsAttr(ctypes.Structure):
    """bpf_attr for ENABLE_STATS."""

    _fields_ = [("type", ctypes.c_uint32)]


def _raise(what: str) -> None:
    code = ctypes.get_errno()
    raise OSError(code, f"{what}: {os.strerror(code)}")


def bpf(cmd: int, attr: ctypes.Structure, what: str) -> int:
    """bpf(cmd, &attr, sizeof attr); OSError with the kernel's errno, `what` in the message."""
    ret = _libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if ret < 0:
        _raise(what)
    return ret


def possible_cpus(path: str = "/sys/devices/system/cpu/possible") -> int:
    """How many CPUs a per-CPU map has a slot for (the kernel sizes them by possible CPUs)."""
    with open(path) as f:
        text = f.read().strip()
    highest = 0
    for part in text.split(","):
        highest = max(highest, int(part.split("-")[-1]))
    return highest + 1
