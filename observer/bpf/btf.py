"""The kernel's BTF (/sys/kernel/btf/vmlinux): argument positions of raw tracepoints.

A raw tracepoint hands a program the tracepoint's C arguments as u64s, in TP_PROTO order. The
kernel describes each tracepoint's probe, `__bpf_trace_<event>(void *__data, <TP_PROTO>)`, as a
BTF function with named parameters, so argument positions and widths are read from there rather
than copied from one kernel's headers (as classic tracepoints' offsets come from tracefs).
Format: Documentation/bpf/btf.rst. Kernel modules' split BTF (/sys/kernel/btf/MODULE) continues
vmlinux's type ids and string offsets.
"""

from __future__ import annotations

import functools
import os
import struct
from typing import NamedTuple

BTF_DIR = "/sys/kernel/btf"
_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type/str off and len
_TYPE = struct.Struct("<III")  # name_off, info, size or type
_MAGIC = 0xEB9F
# extra bytes after the 12-byte common part: fixed, or per vlen item
_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_ITEM = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_INT, _PTR, _STRUCT, _ENUM, _TYPEDEF, _FUNC, _FUNC_PROTO, _ENUM64 = 1, 2, 4, 6, 8, 12, 13, 19
_MODIFIERS = {_TYPEDEF, 9, 10, 11, 18}  # typedef, volatile, const, restrict, type_tag


class BtfError(ValueError):
    """The BTF is unreadable or lacks what was asked."""


class Arg(NamedTuple):
    """One raw tracepoint argument: where it sits in the context, how wide it is."""

    name: str
    offset: int  # 8 * position
    size: int


class Btf:
    """Types and strings of one BTF blob (split on `base` for a module)."""

    def __init__(self, data: bytes, base: Btf | None = None) -> None:
        magic, _, _, hdr_len, type_off, type_len, str_off, str_len = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise BtfError("not BTF data (bad magic)")
        self.base = base
        self.next_id: int
        self.str_end: int
        self.first_id = base.next_id if base else 1
        self.str_base = base.str_end if base else 0
        types = hdr_len + type_off
        self.strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
        self.str_end = self.str_base + str_len
        self.data = data
        self.offsets: list[int] = []  # of type id first_id + i
        pos, end = types, types + type_len
        while pos < end:
            _, info, _ = _TYPE.unpack_from(data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            self.offsets.append(pos)
            pos += 12 + _FIXED.get(kind, 0) + _PER_ITEM.get(kind, 0) * vlen
        self.next_id = self.first_id + len(self.offsets)

    def name(self, off: int) -> str:
        """The string at `off` (in the base's strings below this blob's)."""
        if off < self.str_base:
            assert self.base is not None
            return self.base.name(off)
        off -= self.str_base
        return self.strings[off : self.strings.index(b"\0", off)].decode()

    def type(self, type_id: int) -> tuple[int, int, int, int]:
        """(kind, vlen, name_off, size_or_type) of a type id."""
        if type_id < self.first_id:
            assert self.base is not None
            return self.base.type(type_id)
        name_off, info, size = _TYPE.unpack_from(self.data, self.offsets[type_id - self.first_id])
        return (info >> 24) & 0x1F, info & 0xFFFF, name_off, size

    def size(self, type_id: int) -> int:
        """Byte size of a parameter's type (through typedefs and qualifiers)."""
        for _ in range(32):
            kind, _, _, size_or_type = self.type(type_id)
            if kind in _MODIFIERS:
                type_id = size_or_type
                continue
            if kind == _PTR:
                return 8
            if kind in (_INT, _ENUM, _ENUM64):
                return size_or_type
            raise BtfError(f"type {type_id} of kind {kind} is not a scalar argument")
        raise BtfError(f"type {type_id}: too many typedefs")

    def typedef_id(self, name: str) -> int:
        """The id of the typedef `name` (btf_trace_<event> names a raw tracepoint's probe)."""
        return self._named(_TYPEDEF, name)

    def func_id(self, name: str) -> int:
        """The id of the kernel function `name` (what an fentry/fexit program attaches to)."""
        return self._named(_FUNC, name)

    def _named(self, kind: int, name: str) -> int:
        """The id of the type of `kind` named `name` (this blob's types only)."""
        for i, pos in enumerate(self.offsets):
            name_off, info, _ = _TYPE.unpack_from(self.data, pos)
            if (info >> 24) & 0x1F == kind and self.name(name_off) == name:
                return self.first_id + i
        raise BtfError(f"no {name} of kind {kind} in this BTF")

    def member_offset(self, struct_name: str, *path: str) -> int:
        """Byte offset of struct_name.path[0].path[1]... (each but the last a struct)."""
        type_id, total = self._named(_STRUCT, struct_name), 0
        for member in path:
            kind, vlen, _, _ = self.type(type_id)
            while kind in _MODIFIERS:
                type_id = self.type(type_id)[3]
                kind, vlen, _, _ = self.type(type_id)
            if kind != _STRUCT:
                raise BtfError(f"{struct_name}: {member} is not in a struct")
            at = self.offsets[type_id - self.first_id] + 12
            for k in range(vlen):
                name_off, member_type, bits = struct.unpack_from("<III", self.data, at + 12 * k)
                if self.name(name_off) == member:
                    # with kind_flag the high byte is a bitfield's size, the rest its offset
                    total += (bits & 0xFFFFFF if self._kind_flag(type_id) else bits) // 8
                    type_id = member_type
                    break
            else:
                raise BtfError(f"{struct_name} has no member {member}")
        return total

    def _kind_flag(self, type_id: int) -> bool:
        _, info, _ = _TYPE.unpack_from(self.data, self.offsets[type_id - self.first_id])
        return bool(info >> 31)

    def func_params(self, func: str) -> list[tuple[str, int]]:
        """(name, size) of each parameter of the BTF function named `func`."""
        for pos in self.offsets:
            name_off, info, proto = _TYPE.unpack_from(self.data, pos)
            if (info >> 24) & 0x1F == _FUNC and self.name(name_off) == func:
                break
        else:
            raise BtfError(f"no function {func} in this BTF")
        kind, vlen, _, _ = self.type(proto)
        if kind != _FUNC_PROTO:
            raise BtfError(f"{func} has no prototype")
        at = self.offsets[proto - self.first_id] + 12
        params = [struct.unpack_from("<II", self.data, at + 8 * k) for k in range(vlen)]
        return [(self.name(n), self.size(t)) for n, t in params]


@functools.lru_cache(maxsize=4)
def kernel_btf(root: str = BTF_DIR) -> Btf:
    """vmlinux's BTF, parsed once (~5 MB)."""
    with open(os.path.join(root, "vmlinux"), "rb") as f:
        return Btf(f.read())


def raw_tracepoint_args(event: str, *names: str, root: str = BTF_DIR) -> dict[str, Arg]:
    """Position and width of `names` among the raw arguments of tracepoint `event`."""
    func = f"__bpf_trace_{event}"
    vmlinux = kernel_btf(root)
    params: list[tuple[str, int]] | None
    try:
        params = vmlinux.func_params(func)
    except BtfError:
        params = None
        for module in sorted(os.listdir(root)):
            if module == "vmlinux":
                continue
            with open(os.path.join(root, module), "rb") as f:
                try:
                    params = Btf(f.read(), vmlinux).func_params(func)
                    break
                except BtfError:
                    continue
        if params is None:
            raise BtfError(f"no BTF for tracepoint {event} ({func})") from None
    assert params is not None  # the loop above breaks with them or raises
    args = {name: Arg(name, 8 * (i - 1), size) for i, (name, size) in enumerate(params) if i}
    missing = [n for n in names if n not in args]
    if missing:
        raise BtfError(f"tracepoint {event} has no argument {', '.join(missing)}")
    return {n: args[n] for n in names}
