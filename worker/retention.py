"""Per-minute rollups and retention of the sample tiers, run by the worker for its own VM.

Invariant: a raw minute is deleted only after it was rolled up, and rollups are made only for
whole minutes that will get no more samples (before the minute of the newest flushed sample),
each exactly once, tracked by `vms.rolled_up_until` in the same transaction. So the rollups of a
deleted minute sum to exactly the raw counts they replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, TextClause, bindparam, text

from contract.models import SampleTime
from contract.timeparse import EPOCH

# Minute bucket of a sample time, per dialect: SQLite keeps integer microseconds.
_BUCKET = {
    "sqlite": "({col} / 60000000) * 60000000",
    "postgresql": "date_trunc('minute', {col})",
}

_ROLL_SIGNALS = """
INSERT INTO signal_rollups (ioeventfd_id, minute_at, signals, interval_s)
SELECT s.ioeventfd_id, {bucket}, sum(s.signals), sum(s.interval_s)
FROM signal_samples s JOIN ioeventfds i ON i.id = s.ioeventfd_id
WHERE i.vm_id = :vm AND s.taken_at >= :start AND s.taken_at < :end
GROUP BY s.ioeventfd_id, {bucket}
"""
_ROLL_EXITS = """
INSERT INTO exit_rollups (vm_id, space, addr, len, minute_at, exits, interval_s)
SELECT vm_id, space, addr, len, {bucket}, sum(exits), sum(interval_s)
FROM exit_samples
WHERE vm_id = :vm AND taken_at >= :start AND taken_at < :end
GROUP BY vm_id, space, addr, len, {bucket}
"""
_DELETES = [
    "DELETE FROM signal_samples WHERE taken_at < :raw_cut"
    " AND ioeventfd_id IN (SELECT id FROM ioeventfds WHERE vm_id = :vm)",
    "DELETE FROM exit_samples WHERE taken_at < :raw_cut AND vm_id = :vm",
    "DELETE FROM signal_rollups WHERE minute_at < :roll_cut"
    " AND ioeventfd_id IN (SELECT id FROM ioeventfds WHERE vm_id = :vm)",
    "DELETE FROM exit_rollups WHERE minute_at < :roll_cut AND vm_id = :vm",
]


def minute_floor(t: datetime) -> datetime:
    """The start of `t`'s minute (UTC)."""
    return t.replace(second=0, microsecond=0)


def _sql(sql: str, names: list[str]) -> TextClause:
    # Bind times through SampleTime so SQLite gets its integer microseconds.
    return text(sql).bindparams(*(bindparam(n, type_=SampleTime) for n in names if f":{n}" in sql))


def roll_up(engine: Engine, vm_id: int, newest: datetime) -> datetime | None:
    """Roll up every whole minute before `newest`'s minute not rolled up yet; returns the mark."""
    end = minute_floor(newest)
    bucket = _BUCKET[engine.dialect.name]
    with engine.begin() as conn:
        start = conn.execute(
            _sql("SELECT rolled_up_until FROM vms WHERE id = :vm", []), {"vm": vm_id}
        ).scalar()
        start = SampleTime().process_result_value(start, engine.dialect) or EPOCH
        if start >= end:
            return start
        params = {"vm": vm_id, "start": start, "end": end}
        conn.execute(
            _sql(_ROLL_SIGNALS.format(bucket=bucket.format(col="s.taken_at")), ["start", "end"]),
            params,
        )
        conn.execute(
            _sql(_ROLL_EXITS.format(bucket=bucket.format(col="taken_at")), ["start", "end"]), params
        )
        conn.execute(_sql("UPDATE vms SET rolled_up_until = :end WHERE id = :vm", ["end"]), params)
    return end


def enforce(engine: Engine, vm_id: int, now: datetime, raw_h: float, rollup_d: float) -> None:
    """Delete raw samples older than `raw_h` hours (only rolled-up minutes) and rollups older
    than `rollup_d` days."""
    with engine.begin() as conn:
        mark = conn.execute(
            _sql("SELECT rolled_up_until FROM vms WHERE id = :vm", []), {"vm": vm_id}
        ).scalar()
        mark = SampleTime().process_result_value(mark, engine.dialect)
        if mark is None:
            return  # nothing rolled up yet, so nothing may be deleted
        raw_cut = min(minute_floor(now - timedelta(hours=raw_h)), mark)
        roll_cut = minute_floor(now - timedelta(days=rollup_d))
        params = {"vm": vm_id, "raw_cut": raw_cut, "roll_cut": roll_cut}
        for sql in _DELETES:
            conn.execute(_sql(sql, ["raw_cut", "roll_cut"]), params)


def run(engine: Engine, vm_id: int, newest: datetime, raw_h: float, rollup_d: float) -> None:
    """One retention pass: roll up finished minutes, then apply both retention windows."""
    roll_up(engine, vm_id, newest)
    enforce(engine, vm_id, datetime.now(UTC), raw_h, rollup_d)
