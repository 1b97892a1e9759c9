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
from typing import Any, NamedTuple

from observer.bpf import Map
from observer.layout import SPACES, AccessKey

Address = tuple[int, str, int, int]  # (tgid, space, addr, len)


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

    def _slots(self) -> list[Any]:
        return (self.recent.lookup(ctypes.c_uint32(0)) or []) if self.recent is not None else []

    def totals(self, attempts: int = 3) -> dict[Address, Counts]:
        """Every address's counts since the programs were attached, summed over CPUs.

        The slots are read before and after `counts`; if one changed key meanwhile its hand-over
        may be missing from what was read, so the read is tried again (`attempts` in all)."""
        for _ in range(attempts):
            before = [slot.gen_a for slot in self._slots()]
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
            slots = self._slots()
            if [slot.gen_b for slot in slots] == before:
                break
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
    """Per-tick differences of `exit_values`: how often each value was written in writes that
    exited to userspace. The map is an LRU hash: a pair it evicted and counted again starts
    over, so a count below the previous reading is new in full."""

    def __init__(self, values: Map) -> None:
        self.map = values
        self._prev: dict[ValueAt, int] = {}

    def deltas(self) -> dict[ValueAt, int]:
        """What each (address, value) added since the previous call (only those that moved)."""
        now = {}
        for key, (count,) in self.map.lookup_batch():
            now[(_address(key.key), key.value)] = int(count.value)
        out = {}
        for at, n in now.items():
            before = self._prev.get(at, 0)
            d = n - before if n >= before else n
            if d:
                out[at] = d
        self._prev = now
        return out
