"""`LatencyReader`: the latency programs' totals turned into what happened since the last read.

The maps only grow while attached; a reading minus the previous one is an interval's kicks,
wakes and bucket counts. Doorbells of processes that are gone are deleted from the maps (and
from the previous reading), so a reused pid starts from zero and the maps do not fill.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import NamedTuple

from observer.bpf import Map
from observer.latency import Consumer, Doorbell, LatencyProbe
from observer.latencylayout import HistKey
from observer.layout import AccessKey

Key = tuple[int, str, int, int]  # (tgid, space, addr, len)
COUNTS = ("kicks", "wakes", "coalesced", "answered", "stale")


class LatencyDelta(NamedTuple):
    """One doorbell over one interval: its consumer, counts and stage histograms' new counts."""

    tgid: int
    space: str
    addr: int
    len: int
    consumer: Consumer
    kicks: int
    wakes: int
    coalesced: int
    answered: int
    stale: int
    vector: int | None  # None until an interrupt was paired
    hists: dict[str, dict[int, int]]


def _minus(now: Doorbell, before: Doorbell | None) -> LatencyDelta:
    counts = {c: getattr(now, c) - (getattr(before, c) if before else 0) for c in COUNTS}
    hists: dict[str, dict[int, int]] = {}
    for stage, hist in now.hists.items():
        was = before.hists.get(stage, {}) if before else {}
        new = {slot: n - was.get(slot, 0) for slot, n in hist.items() if n > was.get(slot, 0)}
        if new:
            hists[stage] = new
    vector = now.vector if now.answered else None
    return LatencyDelta(
        now.tgid, now.space, now.addr, now.len, now.consumer, **counts, vector=vector, hists=hists
    )


class LatencyReader:
    """Reads a LatencyProbe's maps as differences since the previous read."""

    def __init__(self, probe: LatencyProbe) -> None:
        self.probe = probe
        self._prev: dict[Key, Doorbell] = {}

    def deltas(self) -> list[LatencyDelta]:
        """The doorbells with kicks since the last call (the first call: since attach)."""
        now = {(d.tgid, d.space, d.addr, d.len): d for d in self.probe.read()}
        out = [_minus(d, self._prev.get(k)) for k, d in now.items()]
        self._prev = now
        return [d for d in out if d.kicks or d.answered or d.hists]

    def forget(self, tgids: Iterable[int]) -> None:
        """Delete the doorbells and buckets of processes that are gone."""
        gone = set(tgids)
        if not gone:
            return
        doorbells, hists = self.probe.doorbells, self.probe.hists
        assert doorbells is not None and hists is not None
        for key in [k for k in doorbells.iter_keys() if k.tgid in gone]:
            _delete(doorbells, key)
        for hk in [k for k in hists.iter_keys() if k.key.tgid in gone]:
            _delete(hists, hk)
        self._prev = {k: d for k, d in self._prev.items() if k[0] not in gone}


def _delete(m: Map, key: AccessKey | HistKey) -> None:
    with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
        m.delete(key)
