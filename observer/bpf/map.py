"""`Map`: a BPF map, one method per bpf(2) map command; keys and values are ctypes structs."""

from __future__ import annotations

import ctypes
import errno
from collections.abc import Iterator
from typing import Any

from observer.bpf import syscall as sc
from observer.bpf.fd import FdObject


def _addr(buf: Any) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


class Map(FdObject):
    """A BPF map: fixed-size keys and values as ctypes structs (per-CPU: one value per CPU)."""

    PERCPU = (sc.MAP_TYPE_PERCPU_HASH, sc.MAP_TYPE_PERCPU_ARRAY)

    def __init__(
        self, map_type: int, key: type[Any], value: type[Any], max_entries: int, name: str
    ):
        attr = sc.MapCreateAttr(
            map_type=map_type,
            key_size=ctypes.sizeof(key),
            value_size=ctypes.sizeof(value),
            max_entries=max_entries,
            map_name=name.encode()[: sc.OBJ_NAME_LEN - 1],
        )
        self._typed(map_type, key, value, name)
        self.fd = sc.bpf(sc.MAP_CREATE, attr, f"create map {name}")

    @classmethod
    def of_fd(cls, fd: int, map_type: int, key: type[Any], value: type[Any], name: str) -> Map:
        """A map made elsewhere (by libbpf from a compiled object): this object owns `fd`."""
        self = cls.__new__(cls)
        self._typed(map_type, key, value, name)
        self.fd = fd
        return self

    def _typed(self, map_type: int, key: type[Any], value: type[Any], name: str) -> None:
        self.key_type, self.value_type, self.name = key, value, name
        self.ncpus = sc.possible_cpus() if map_type in self.PERCPU else 1
        # a per-CPU map's value in user space: one copy per possible CPU, each 8-byte aligned
        stride = (ctypes.sizeof(value) + 7) // 8 * 8
        self._value_buf = ctypes.c_char * (stride * self.ncpus)
        self._stride = stride

    def _values(self, buf: Any, index: int = 0) -> list[Any]:
        base = index * self._stride * self.ncpus
        return [
            self.value_type.from_buffer_copy(buf, base + cpu * self._stride)
            for cpu in range(self.ncpus)
        ]

    def lookup(self, key: Any) -> list[Any] | None:
        """MAP_LOOKUP_ELEM: the value per CPU (one item for a shared map), None if absent."""
        buf = self._value_buf()
        attr = sc.MapElemAttr(map_fd=self.fd, key=_addr(key), value=_addr(buf))
        try:
            sc.bpf(sc.MAP_LOOKUP_ELEM, attr, f"lookup in map {self.name}")
        except FileNotFoundError:
            return None
        return self._values(buf)

    def update(self, key: Any, value: Any, flags: int = sc.ANY) -> None:
        """MAP_UPDATE_ELEM with one value (copied to every CPU's slot of a per-CPU map)."""
        buf = self._value_buf()
        for cpu in range(self.ncpus):
            ctypes.memmove(
                ctypes.addressof(buf) + cpu * self._stride,
                ctypes.addressof(value),
                ctypes.sizeof(value),
            )
        attr = sc.MapElemAttr(map_fd=self.fd, key=_addr(key), value=_addr(buf), flags=flags)
        sc.bpf(sc.MAP_UPDATE_ELEM, attr, f"update map {self.name}")

    def delete(self, key: Any) -> None:
        """MAP_DELETE_ELEM; ENOENT (FileNotFoundError) if the key is absent."""
        attr = sc.MapElemAttr(map_fd=self.fd, key=_addr(key))
        sc.bpf(sc.MAP_DELETE_ELEM, attr, f"delete from map {self.name}")

    def get_next_key(self, key: Any | None) -> Any | None:
        """MAP_GET_NEXT_KEY: the key after `key` (the first for None); None at the end."""
        nxt = self.key_type()
        attr = sc.MapElemAttr(map_fd=self.fd, key=_addr(key), value=_addr(nxt))
        try:
            sc.bpf(sc.MAP_GET_NEXT_KEY, attr, f"iterate map {self.name}")
        except FileNotFoundError:
            return None
        return nxt

    def iter_keys(self) -> Iterator[Any]:
        """Every key, by MAP_GET_NEXT_KEY (keys deleted meanwhile may restart the walk)."""
        key = self.get_next_key(None)
        while key is not None:
            yield key
            key = self.get_next_key(key)

    def lookup_batch(self, chunk: int = 4096) -> list[tuple[Any, list[Any]]]:
        """MAP_LOOKUP_BATCH over the whole map: (key, per-CPU values) pairs, few syscalls."""
        keys = (self.key_type * chunk)()
        values = (self._value_buf * chunk)()
        token_in, token_out = ctypes.c_uint64(), ctypes.c_uint64()
        out: list[tuple[Any, list[Any]]] = []
        first = True
        while True:
            attr = sc.MapBatchAttr(
                in_batch=0 if first else ctypes.addressof(token_in),
                out_batch=ctypes.addressof(token_out),
                keys=ctypes.addressof(keys),
                values=ctypes.addressof(values),
                count=chunk,
                map_fd=self.fd,
            )
            done = False
            try:
                sc.bpf(sc.MAP_LOOKUP_BATCH, attr, f"batch lookup in map {self.name}")
            except FileNotFoundError:  # ENOENT: the walk reached the end (count may be > 0)
                done = True
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                # a hash bucket holds more keys than `chunk`: the same batch, in bigger buffers
                chunk *= 2
                keys, values = (self.key_type * chunk)(), (self._value_buf * chunk)()
                continue
            raw, size = bytes(values), ctypes.sizeof(self.key_type)
            for i in range(attr.count):
                key = self.key_type.from_buffer_copy(keys, i * size)
                out.append((key, self._values(raw, i)))
            if done:
                return out
            token_in.value, first = token_out.value, False
