"""Reading the kernel's counts once per tick, without losing an increment.

The programs only ever add to per-CPU counters and the reader never writes them: a tick reads
every counter (one MAP_LOOKUP_BATCH, then each CPU's recent slot) and subtracts the previous
reading, so an increment that lands during the read is simply in the next tick's difference.
Keys are deleted only for VMs whose process has exited (nothing can add to them any more), after
their last reading.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from observer.bpf import Map
from observer.layout import SPACES, AccessKey

Address = tuple[int, str, int, int]  # (tgid, space, addr, len)
T = TypeVar("T")


class Counts(NamedTuple):
    """Guest accesses to one address in one interval."""

    writes: int
    userspace: int  # of those writes, how many exited to the VMM
    reads: int
    read_exits: int = 0  # reads that exited to the VMM

    @property
    def in_kernel(self) -> int:
        """Writes an ioeventfd (or an in-kernel device) took without a userspace exit."""
        return self.writes - self.userspace


def _address(key: AccessKey) -> Address:
    return (key.tgid, SPACES.get(key.space, str(key.space)), key.addr, key.len)


def read_between_slots(
    read: Callable[[], T], slots: Map | None, attempts: int
) -> tuple[T, list[Any]]:
    """`read()` of a map and each CPU's slot in front of it, read after it. A slot hands its
    counts to the map when it changes key; the slots' generations are read before and after,
    and if one changed meanwhile its hand-over may be missing from what was read, so the read
    is tried again (`attempts` in all). The caller leaves out a slot copied mid-change."""

    def copies() -> list[Any]:
        return (slots.lookup(ctypes.c_uint32(0)) or []) if slots is not None else []

    for _ in range(attempts):
        before = [slot.gen_a for slot in copies()]
        out = read()
        after = copies()
        if [slot.gen_b for slot in after] == before:
            break
    return out, after


class CountReader:
    """Turns the monotonic per-CPU `counts` map, plus each CPU's `recent` slot, into per-tick
    differences.

    A slot hands its counts to `counts` when its CPU writes another key, so a tick reads
    `counts` first and the slots second: a hand-over between the two reads leaves those writes
    out of this tick (never in twice) and a slot copied mid-change (its generations differ) is
    left out too. The sum read is therefore never more than what was counted, and exact when
    no hand-over overlaps the read; each address's differences are taken from the highest sum
    seen, so what one tick left out shows in the next and none is negative.
    """

    def __init__(self, counts: Map, recent: Map | None = None) -> None:
        self.map, self.recent = counts, recent
        self._prev: dict[Address, Counts] = {}
        self._keys: dict[Address, AccessKey] = {}
        self._cached: set[Address] = set()  # held by a slot at the last reading
        self._dying: set[Address] = set()  # of exited processes, deleted once no slot holds them
        self.torn = 0  # slot copies left out because a change overlapped them

    def totals(self, attempts: int = 3) -> dict[Address, Counts]:
        """Every address's counts since the programs were attached, summed over CPUs."""

        def read() -> dict[Address, Counts]:
            out = {}
            for key, per_cpu in self.map.lookup_batch():
                addr = _address(key)
                self._keys[addr] = key
                out[addr] = Counts(
                    sum(v.writes for v in per_cpu),
                    sum(v.userspace for v in per_cpu),
                    sum(v.reads for v in per_cpu),
                    sum(v.read_exits for v in per_cpu),
                )
            return out

        out, slots = read_between_slots(read, self.recent, attempts)
        cached, complete = set(), True
        for slot in slots:
            if slot.gen_a != slot.gen_b:
                self.torn += 1
                complete = False
                continue
            if slot.key.tgid == 0:  # never written
                continue
            key = AccessKey.from_buffer_copy(slot.key)
            addr = _address(key)
            self._keys.setdefault(addr, key)
            cached.add(addr)
            c = out.get(addr, Counts(0, 0, 0, 0))
            out[addr] = c._replace(
                writes=c.writes + slot.writes, userspace=c.userspace + slot.userspace
            )
        self._cached = cached if complete else self._cached | cached
        for addr in self._delete_dying():
            out.pop(addr, None)
        return out

    def deltas(self) -> dict[Address, Counts]:
        """What each address counted since the previous call (only addresses that moved)."""
        now = self.totals()
        out = {}
        for addr, c in now.items():
            p = self._prev.get(addr, Counts(0, 0, 0, 0))
            d = Counts(*(max(0, x - y) for x, y in zip(c, p, strict=True)))
            if any(d):
                out[addr] = d
            self._prev[addr] = Counts(*(max(x, y) for x, y in zip(c, p, strict=True)))
        return out

    def forget(self, tgids: set[int]) -> None:
        """Delete the counters of exited processes (call after the deltas that include them).

        An address still in a CPU's slot waits: the slot hands its counts (already read) to
        `counts` when that CPU writes another key, and the reading stays until then so that
        hand-over is not counted again."""
        self._dying |= {a for a in self._keys if a[0] in tgids}
        self._delete_dying()

    def _delete_dying(self) -> list[Address]:
        gone = [a for a in self._dying if a not in self._cached]
        for addr in gone:
            self._dying.discard(addr)
            key = self._keys.pop(addr, None)
            self._prev.pop(addr, None)
            if key is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.map.delete(key)
        return gone


ValueAt = tuple[Address, int]  # (address, value written)


class ValueReader:
    """Per-tick differences of how often each value was written in writes that exited to
    userspace: `exit_values` (an LRU hash) plus each CPU's value slot, read as CountReader
    reads counts and slots; differences from the highest sum seen (a pair the LRU evicted and
    counted again shows once it passes its old sum)."""

    def __init__(self, values: Map, slots: Map | None = None) -> None:
        self.map, self.slots = values, slots
        self._prev: dict[ValueAt, int] = {}

    def totals(self, attempts: int = 3) -> dict[ValueAt, int]:
        """Every (address, value)'s exiting writes since the programs were attached."""

        def read() -> dict[ValueAt, int]:
            return {
                (_address(key.key), key.value): int(count.value)
                for key, (count,) in self.map.lookup_batch()
            }

        out, slots = read_between_slots(read, self.slots, attempts)
        for slot in slots:
            if slot.gen_a != slot.gen_b or slot.vk.key.tgid == 0 or not slot.count:
                continue  # copied mid-change (shows next tick), or never written
            at = (_address(slot.vk.key), slot.vk.value)
            out[at] = out.get(at, 0) + slot.count
        return out

    def deltas(self) -> dict[ValueAt, int]:
        """What each (address, value) added since the previous call (only those that moved)."""
        out = {}
        for at, n in self.totals().items():
            before = self._prev.get(at, 0)
            if n > before:
                out[at] = n - before
                self._prev[at] = n
        return out

    def forget(self, tgids: set[int]) -> None:
        """Drop the readings of exited processes (their pairs age out of the LRU map)."""
        self._prev = {at: n for at, n in self._prev.items() if at[0][0] not in tgids}
