"""Rollups and retention of observed samples, run by the observer for the VMs of its host.

The worker's invariant, per row: a raw minute is deleted only after it was rolled up, and only
whole minutes before the newest flushed sample's minute are rolled up, each once, tracked by
`vms.observed_rolled_up_until` in the same transaction. Observed VMs that ended before the
rollup window are deleted with their samples.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, TextClause, bindparam, text

from contract.models import SampleTime, UTCDateTime
from worker.retention import minute_floor

_BUCKET = {  # minute of a sample time, per dialect (SQLite keeps integer microseconds)
    "sqlite": "(s.taken_at / 60000000) * 60000000",
    "postgresql": "date_trunc('minute', s.taken_at)",
}
_ROLL = """
INSERT INTO observed_rollups
    (vm_id, space, addr, len, minute_at, writes, userspace, reads, interval_s)
SELECT s.vm_id, s.space, s.addr, s.len, {bucket},
       sum(s.writes), sum(s.userspace), sum(s.reads), sum(s.interval_s)
FROM observed_samples s JOIN vms v ON v.id = s.vm_id
WHERE v.host = :host AND s.taken_at < :end
  AND (v.observed_rolled_up_until IS NULL OR s.taken_at >= v.observed_rolled_up_until)
GROUP BY s.vm_id, s.space, s.addr, s.len, {bucket}
"""
_MARK = """
UPDATE vms SET observed_rolled_up_until = :end
WHERE host = :host AND (observed_rolled_up_until IS NULL OR observed_rolled_up_until < :end)
"""
_DELETES = [
    # only minutes already rolled up: before min(raw_cut, the VM's mark)
    "DELETE FROM observed_samples WHERE taken_at < :raw_cut AND EXISTS (SELECT 1 FROM vms v"
    " WHERE v.id = observed_samples.vm_id AND v.host = :host"
    " AND observed_samples.taken_at < v.observed_rolled_up_until)",
    "DELETE FROM observed_rollups WHERE minute_at < :roll_cut"
    " AND vm_id IN (SELECT id FROM vms WHERE host = :host)",
    "DELETE FROM vms WHERE kind = 'observed' AND host = :host AND ended_at < :roll_cut_at",
]


_TYPES: dict[str, type[SampleTime] | type[UTCDateTime]] = {
    "end": SampleTime,
    "raw_cut": SampleTime,
    "roll_cut": SampleTime,
}
_TYPES["roll_cut_at"] = UTCDateTime  # vms.ended_at


def _sql(sql: str) -> TextClause:
    # Bind times through the column types, so SQLite gets the same encoding it stores.
    used = [n for n in _TYPES if re.search(rf":{n}\b", sql)]
    return text(sql).bindparams(*(bindparam(n, type_=_TYPES[n]()) for n in used))


def roll_up(engine: Engine, host: str, newest: datetime) -> datetime:
    """Roll up every whole minute before `newest`'s minute not yet rolled up; returns the mark."""
    end = minute_floor(newest)
    roll = _ROLL.format(bucket=_BUCKET[engine.dialect.name])
    with engine.begin() as conn:
        conn.execute(_sql(roll), {"host": host, "end": end})
        conn.execute(_sql(_MARK), {"host": host, "end": end})
    return end


def enforce(engine: Engine, host: str, now: datetime, raw_h: float, rollup_d: float) -> None:
    """Delete rolled-up raw samples older than `raw_h` hours, rollups (and ended observed VMs)
    older than `rollup_d` days."""
    roll_cut = minute_floor(now - timedelta(days=rollup_d))
    params = {
        "host": host,
        "raw_cut": minute_floor(now - timedelta(hours=raw_h)),
        "roll_cut": roll_cut,
        "roll_cut_at": roll_cut,
    }
    with engine.begin() as conn:
        for sql in _DELETES:
            conn.execute(_sql(sql), params)


def run(engine: Engine, host: str, newest: datetime, raw_h: float, rollup_d: float) -> None:
    """One retention pass: roll up finished minutes, then apply both retention windows."""
    roll_up(engine, host, newest)
    enforce(engine, host, datetime.now(UTC), raw_h, rollup_d)
