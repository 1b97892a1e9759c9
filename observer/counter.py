"""Reading the kernel's counts once per tick, without losing an increment.

The programs only ever add to per-CPU counters and the reader never writes them: a tick reads
every counter (one MAP_LOOKUP_BATCH) and subtracts the previous reading, so an increment that
lands during the read is simply in the next tick's difference. Keys are deleted only for VMs
whose process has exited (nothing can add to them any more), after their last reading.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from observer.bpf import Map
from observer.layout import SPACES, AccessKey

Address = tuple[int, str, int, int]  # (tgid, space, addr, len)


class Counts(NamedTuple):
    """Guest accesses to one address in one interval."""

    writes: int
    userspace: int  # of those writes, how many exited to the VMM
    reads: int

    @property
    def in_kernel(self) -> int:
        """Writes an ioeventfd (or an in-kernel device) took without a userspace exit."""
        return self.writes - self.userspace


def _address(key: AccessKey) -> Address:
    return (key.tgid, SPACES.get(key.space, str(key.space)), key.addr, key.len)


class CountReader:
    """Turns the monotonic per-CPU `counts` map into per-tick differences."""

    def __init__(self, counts: Map) -> None:
        self.map = counts
        self._prev: dict[Address, Counts] = {}
        self._keys: dict[Address, AccessKey] = {}

    def totals(self) -> dict[Address, Counts]:
        """Every address's counts since the programs were attached, summed over CPUs."""
        out = {}
        for key, per_cpu in self.map.lookup_batch():
            addr = _address(key)
            self._keys[addr] = key
            out[addr] = Counts(
                sum(v.writes for v in per_cpu),
                sum(v.userspace for v in per_cpu),
                sum(v.reads for v in per_cpu),
            )
        return out

    def deltas(self) -> dict[Address, Counts]:
        """What each address counted since the previous call (only addresses that moved)."""
        now = self.totals()
        out = {}
        for addr, c in now.items():
            p = self._prev.get(addr, Counts(0, 0, 0))
            d = Counts(c.writes - p.writes, c.userspace - p.userspace, c.reads - p.reads)
            if any(d):
                out[addr] = d
        self._prev = now
        return out

    def forget(self, tgids: set[int]) -> None:
        """Delete the counters of exited processes (call after the deltas that include them)."""
        for addr in [a for a in self._keys if a[0] in tgids]:
            key = self._keys.pop(addr)
            self._prev.pop(addr, None)
            with contextlib.suppress(FileNotFoundError):
                self.map.delete(key)
