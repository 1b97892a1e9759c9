"""BTF blobs read in Python: which tracepoints the kernel names (`btf_trace_<event>`, what a
tp_btf program attaches to) and struct layouts (the compiled objects' own BTF, against which
tests check observer/layout.py). Format: Documentation/bpf/btf.rst. Kernel modules' split BTF
(/sys/kernel/btf/MODULE) continues vmlinux's type ids and string offsets.
"""

from __future__ import annotations

import functools
import os
import struct

BTF_DIR = "/sys/kernel/btf"
_HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type/str off and len
_TYPE = struct.Struct("<III")  # name_off, info, size or type
_MAGIC = 0xEB9F
# extra bytes after the 12-byte common part: fixed, or per vlen item
_FIXED = {1: 4, 3: 12, 14: 4, 17: 4}
_PER_ITEM = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_INT, _PTR, _STRUCT, _UNION, _ENUM, _TYPEDEF, _ENUM64 = 1, 2, 4, 5, 6, 8, 19
_MODIFIERS = {_TYPEDEF, 9, 10, 11, 18}  # typedef, volatile, const, restrict, type_tag


class BtfError(ValueError):
    """The BTF is unreadable or lacks what was asked."""


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
        """Byte size of a scalar, pointer, struct or union type (through typedefs and
        qualifiers)."""
        for _ in range(32):
            kind, _, _, size_or_type = self.type(type_id)
            if kind in _MODIFIERS:
                type_id = size_or_type
                continue
            if kind == _PTR:
                return 8
            if kind in (_INT, _ENUM, _ENUM64, _STRUCT, _UNION):
                return size_or_type
            raise BtfError(f"type {type_id} of kind {kind} has no size of its own")
        raise BtfError(f"type {type_id}: too many typedefs")

    def typedef_id(self, name: str) -> int:
        """The id of the typedef `name` (btf_trace_<event> names a raw tracepoint's probe)."""
        return self._named(_TYPEDEF, name)

    def struct_id(self, name: str) -> int:
        """The id of the struct `name`."""
        return self._named(_STRUCT, name)

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


@functools.lru_cache(maxsize=4)
def kernel_btf(root: str = BTF_DIR) -> Btf:
    """vmlinux's BTF, parsed once (~5 MB)."""
    with open(os.path.join(root, "vmlinux"), "rb") as f:
        return Btf(f.read())
