"""The latency deltas of a tick into `doorbell_latency`: one row per doorbell and minute.

A tick's counts and bucket counts add to its minute's row (made by the first tick of that
minute), so the per-minute rollup is the table itself and any span is a sum of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from contract.latency import add
from contract.models import DoorbellLatency
from observer.latencyreader import COUNTS, LatencyDelta


def minute_of(at: datetime) -> datetime:
    """The start of the minute `at` falls in."""
    return at.replace(second=0, microsecond=0)


def _as_json(hists: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    return {stage: {str(slot): n for slot, n in h.items()} for stage, h in hists.items()}


def add_deltas(conn: Connection, vm_id: int, deltas: Iterable[LatencyDelta], at: datetime) -> None:
    """Add each doorbell's interval to its row of `at`'s minute."""
    minute = minute_of(at)
    for d in deltas:
        where = (
            (DoorbellLatency.vm_id == vm_id)
            & (DoorbellLatency.space == d.space)
            & (DoorbellLatency.addr == d.addr)
            & (DoorbellLatency.len == d.len)
            & (DoorbellLatency.minute_at == minute)
        )
        row = conn.execute(select(DoorbellLatency).where(where)).first()
        consumer = {
            "consumer_tid": d.consumer.tid,
            "consumer_comm": d.consumer.comm[:16],
            "consumer_process": d.consumer.process[:16],
        }
        vector = {"vector": d.vector} if d.vector is not None else {}
        if row is None:
            counts = {c: getattr(d, c) for c in COUNTS}
            key = {"vm_id": vm_id, "space": d.space, "addr": d.addr, "len": d.len}
            conn.execute(
                insert(DoorbellLatency).values(
                    **key, minute_at=minute, **consumer, **counts, **vector, hists=_as_json(d.hists)
                )
            )
            continue
        was = row  # a Row: its columns by name
        hists = {s: {int(k): n for k, n in h.items()} for s, h in was.hists.items()}
        for stage, h in d.hists.items():
            hists[stage] = add(hists.get(stage, {}), h)
        conn.execute(
            update(DoorbellLatency)
            .where(where)
            .values(
                **consumer,
                **{c: getattr(was, c) + getattr(d, c) for c in COUNTS},
                **vector,
                hists=_as_json(hists),
            )
        )
