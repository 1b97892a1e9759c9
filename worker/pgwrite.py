"""The writer's PostgreSQL fast path for signal samples and signals_total."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text

from contract.timeparse import epoch_us

# PostgreSQL fast path: a tick as a few arrays instead of 1,000 bound rows; measured 32 -> ~5 ms
# CPU per 1,000-sample tick. Times travel as integer microseconds (cheaper to send than
# datetimes) and become timestamptz exactly (integers < 2**53 survive interval_mul's float8).
_PG_SIGNALS = text(
    "INSERT INTO signal_samples (taken_at, signals, ioeventfd_id, interval_s) "
    "SELECT timestamptz 'epoch' + u * interval '1 microsecond', s, i, v FROM unnest("
    "CAST(:u AS bigint[]), CAST(:s AS bigint[]), CAST(:i AS integer[]), CAST(:v AS real[])"
    ") AS x(u, s, i, v)"
)
_PG_TOTALS = text(
    "UPDATE ioeventfds SET signals_total = ioeventfds.signals_total + x.n "
    "FROM unnest(CAST(:i AS integer[]), CAST(:n AS bigint[])) AS x(i, n) WHERE ioeventfds.id = x.i"
)


def write_signals_pg(conn: Any, cols: dict[str, list], totals: dict[int, int]) -> None:
    """Insert a chunk's signal samples (column lists) and add `totals` to signals_total."""
    if cols["taken_at"]:
        micros: dict[datetime, int] = {}  # a tick's samples share one taken_at: convert once
        for t in cols["taken_at"]:
            if t not in micros:
                micros[t] = epoch_us(t)
        conn.execute(
            _PG_SIGNALS,
            {
                "u": [micros[t] for t in cols["taken_at"]],
                "s": cols["signals"],
                "i": cols["ioeventfd_id"],
                "v": cols["interval_s"],
            },
        )
    if totals:
        conn.execute(_PG_TOTALS, {"i": list(totals), "n": list(totals.values())})
