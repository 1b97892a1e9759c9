"""The window of a read: a time range, the step its points are bucketed to (at most ~2,000 of
them), and the tier that answers it: raw samples for short ranges, per-minute rollups (plus the
raw tail not yet rolled up) for long ones."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.errors import ApiError
from contract.config import get_settings
from contract.models import Vm, utcnow
from contract.timeparse import parse_range

MAX_POINTS = 2000
RAW_MAX_TICKS = 2000  # the raw tier is keyed time-first: read it for short ranges only
MINUTE = 60.0
# The range parameters `window_for` parses, as the routes that read series take them.
Since = Annotated[str, Query(description='ISO 8601 or relative: "-30s", "-15m", "-2h", "-7d"')]
Until = Annotated[str | None, Query(description="ISO 8601 or relative; default now")]


@dataclass(frozen=True)
class Window:
    """A time range, the step its points are bucketed to, and which tier answers it."""

    since: datetime
    until: datetime
    step_s: float
    tier: str  # "raw" | "minute"

    @property
    def span_s(self) -> float:
        """Length of the range in seconds."""
        return (self.until - self.since).total_seconds()


def plan(
    since: datetime,
    until: datetime,
    step_s: float | None,
    tick_s: float,
    max_points: int = MAX_POINTS,
) -> Window:
    """Pick tier and step: raw while the range is at most ~2,000 ticks and the step under a
    minute, else minutes; never more than `max_points` points."""
    span = (until - since).total_seconds()
    step = max(step_s or 0.0, tick_s, span / max_points)
    if span <= RAW_MAX_TICKS * tick_s and step < MINUTE:
        return Window(since, until, step, "raw")
    return Window(since, until, math.ceil(step / MINUTE) * MINUTE, "minute")


def window_for(
    since: str, until: str | None, step: float | None = None, max_points: int = MAX_POINTS
) -> Window:
    """Parse the range (422 naming the rule if bad) and plan tier and step."""
    try:
        start, end = parse_range(since, until, utcnow())
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, str(exc), "EINVAL") from None
    return plan(start, end, step, get_settings().sample_interval_s, max_points)


def boundary(db: Session, vm_id: int, window: Window) -> datetime | None:
    """Where the read switches from rollups to raw samples for this VM: None on the raw tier
    (short ranges read raw samples alone), the VM's rollup mark on the minute tier."""
    if window.tier != "minute":
        return None
    return db.scalar(select(Vm.rolled_up_until).where(Vm.id == vm_id))
