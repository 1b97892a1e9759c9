"""Persist observer ticks through the daemons' writer: its buffer, outage handling and thread.

`ObservedWriter` is daemon.writer.BufferedSampleWriter with the observer's `_write`: per chunk
of ticks, one transaction that makes or finds the VMs' rows, heartbeats the live ones, marks the
ended ones and writes one packed tick per VM (contract/samples.py). VM ids are cached only once
their transaction committed, so ticks buffered through an outage are written exactly as they
would have been.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from contract.models import Feed
from contract.samples import TickIn, write_ticks
from daemon.writer import BufferedSampleWriter
from observer import latencystore, regstore, store
from observer.discovery import VmKey
from observer.latencyreader import LatencyDelta
from observer.sampler import ExitValue, Tick


class ObservedWriter(BufferedSampleWriter):
    """Buffers the observer's ticks and writes them (BufferedSampleWriter's run/put/flush)."""

    def __init__(
        self,
        engine: Engine,
        host: str | None = None,
        started_at: datetime | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(engine, **kw)
        self.host = host or socket.gethostname()
        self.ids: dict[VmKey, int] = {}  # committed rows of the VMs seen so far
        self.reconciled = False  # rows an earlier observer left running are ended once
        # Made after the probe attached, so calls since then are all seen: the `observers` row
        # says so, written with the first tick (its id once that transaction committed).
        self.started_at = started_at or datetime.now(UTC)
        self.observer_id: int | None = None

    def size(self, batch: Any) -> int:
        """A tick's rows are its address samples."""
        return len(batch.samples)

    def _write(self, chunk: list[Any]) -> None:
        ids = dict(self.ids)
        newest = None
        observer_id = self.observer_id
        try:
            with self.engine.begin() as conn:
                if not self.reconciled:
                    first = chunk[0]
                    store.end_missing(conn, self.host, first.live.values(), first.taken_at)
                if observer_id is None:
                    observer_id = regstore.start(conn, self.host, os.getpid(), self.started_at)
                for tick in chunk:
                    self._write_tick(conn, tick, ids)
                    newest = tick.taken_at
                if newest is not None:
                    regstore.seen(conn, observer_id, newest)
        except BaseException:
            self.index.forget()  # series it added were rolled back with the ticks
            raise
        self.ids, self.reconciled, self.observer_id = ids, True, observer_id
        self.transactions += 1
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest

    def _write_tick(self, conn: Any, tick: Tick, ids: dict[VmKey, int]) -> None:
        for key, vm in tick.live.items():
            if key not in ids or key in tick.vcpu_tids:
                ids[key] = store.ensure_vm(
                    conn, self.host, vm, tick.vcpu_tids.get(key), tick.taken_at
                )
        store.heartbeat(conn, [ids[k] for k in tick.live], tick.taken_at)
        per_vm: dict[int, dict[tuple[str, int, int], tuple[int, int, int]]] = {}
        for s in tick.samples:
            if s.vm in ids:
                per_vm.setdefault(ids[s.vm], {})[(s.space, s.addr, s.len)] = (
                    s.writes,
                    s.userspace,
                    s.reads,
                )
        reads = self._read_exits(tick, ids)
        write_ticks(
            conn,
            self.index,
            [
                TickIn(vm_id, feed, tick.taken_at, tick.interval_s, counts)
                for feed, counts_of in ((Feed.OBSERVED, per_vm), (Feed.READ_EXITS, reads))
                for vm_id, counts in counts_of.items()
            ],
        )
        for call in tick.registrations:
            if call.vm in ids:
                regstore.record_call(conn, ids[call.vm], call)
        for vm_id, values in self._by_vm(tick.exit_values, ids).items():
            regstore.add_exit_values(conn, vm_id, values, tick.taken_at)
        for vm_id, deltas in self._by_vm_key(tick.latency, ids).items():
            latencystore.add_deltas(conn, vm_id, deltas, tick.taken_at)
        for key, totals in tick.kvm_stats.items():
            store.set_kvm_stats(conn, ids[key], totals, tick.taken_at)
        store.mark_ended(conn, [ids.pop(k) for k in tick.ended if k in ids], tick.taken_at)

    @staticmethod
    def _read_exits(tick: Tick, ids: dict[VmKey, int]) -> dict[int, dict[Any, tuple[int]]]:
        """Reads that exited, per VM and (space, addr, len): addresses without any left out."""
        out: dict[int, dict[Any, tuple[int]]] = {}
        for s in tick.samples:
            if s.read_exits and s.vm in ids:
                out.setdefault(ids[s.vm], {})[(s.space, s.addr, s.len)] = (s.read_exits,)
        return out

    @staticmethod
    def _by_vm_key(items: list[tuple[VmKey, LatencyDelta]], ids: dict[VmKey, int]) -> dict:
        out: dict[int, list[LatencyDelta]] = {}
        for key, item in items:
            if key in ids:
                out.setdefault(ids[key], []).append(item)
        return out

    @staticmethod
    def _by_vm(items: list[ExitValue], ids: dict[VmKey, int]) -> dict[int, list[ExitValue]]:
        out: dict[int, list[ExitValue]] = {}
        for item in items:
            if item.vm in ids:
                out.setdefault(ids[item.vm], []).append(item)
        return out
