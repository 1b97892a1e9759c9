"""Samples summed into time buckets by the database: one row per (series, bucket), so a
dashboard of hundreds of series moves sums, not samples, into Python."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.orm import QueryableAttribute, Session

from app.api.queries import tiered
from app.api.series import Window, boundary

Buckets = dict[int, list[float]]  # bucket start (ms since the epoch) -> [count, seconds]


def bucket_start_ms(at: Any, step_s: float, dialect: str) -> ColumnElement[int]:
    """The start, in ms since the epoch, of the `step_s` bucket (aligned to the epoch) that
    holds the sample time `at`."""
    step_ms = max(1, round(step_s * 1000))
    if dialect == "sqlite":  # SampleTime is integer microseconds there: integer division
        micros = type_coerce(at, BigInteger)
        return (micros // literal(step_ms * 1000, BigInteger)) * literal(step_ms, BigInteger)
    epoch_ms = func.extract("epoch", at) * 1000
    return cast(func.floor(epoch_ms / step_ms) * step_ms, BigInteger)


class Tier(NamedTuple):
    """One sample table as `bucket_sums` reads it: its time, series key, total and seconds
    columns, and which rows."""

    at: Any  # QueryableAttribute[datetime]: a descriptor type would be "bound" by mypy here
    keys: tuple[QueryableAttribute[Any], ...]
    total: QueryableAttribute[int]
    seconds: QueryableAttribute[float]
    where: ColumnElement[bool]

    def summed(self, step_s: float, dialect: str) -> Select[Any]:
        """(*keys, bucket_ms, sum of count, sum of seconds) per series and bucket."""
        bucket = bucket_start_ms(self.at, step_s, dialect).label("bucket")
        return (
            select(*self.keys, bucket, func.sum(self.total), func.sum(self.seconds))
            .where(self.where)
            .group_by(*self.keys, "bucket")
        )


def bucket_sums(db: Session, window: Window, vm_id: int, raw: Tier, rolled: Tier) -> Iterator[Any]:
    """Rows (*keys, bucket_ms, count, seconds) of one VM's samples over `window`, from the raw
    tier and the rollups as `tiered` splits them. A bucket may come from both tiers (the
    boundary's minute): callers add rows up."""
    dialect = db.get_bind().dialect.name
    queries = tiered(
        raw.summed(window.step_s, dialect),
        raw.at,
        rolled.summed(window.step_s, dialect),
        rolled.at,
        boundary(db, vm_id, window),
        window.since,
        window.until,
    )
    for query in queries:
        # Core rows, not ORM ones: thousands of plain tuples, no identity map to fill.
        yield from db.connection().execute(query).all()


def add(buckets: Buckets, bucket: int, count: Any, seconds: Any) -> None:
    """Add a (count, seconds) pair to a bucket (PostgreSQL sums BIGINT as NUMERIC: floats)."""
    slot = buckets.get(bucket)
    if slot is None:
        buckets[bucket] = [float(count), float(seconds or 0.0)]
    else:
        slot[0] += float(count)
        slot[1] += float(seconds or 0.0)
