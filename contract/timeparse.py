"""Time ranges from query strings: ISO 8601 or relative ("-15m", "-2h", "-7d", "now")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Farther back than any retention; keeps datetime arithmetic in range.
MAX_LOOKBACK = timedelta(days=3650)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(text: str, now: datetime) -> datetime:
    """`now`, a relative offset back from `now`, or an ISO 8601 instant (naive means UTC)."""
    text = text.strip()
    if text == "now":
        return now
    match = _RELATIVE.match(text)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return now - min(timedelta(seconds=seconds), MAX_LOOKBACK)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"time {text!r} must be ISO 8601 (2026-01-01T12:00:00Z) or relative "
            "(-30s, -15m, -2h, -7d)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def parse_range(since: str, until: str | None, now: datetime) -> tuple[datetime, datetime]:
    """A (since, until) pair with since before until, or ValueError naming the rule."""
    start = parse_time(since, now)
    end = parse_time(until, now) if until else now
    if start >= end:
        raise ValueError("since must be before until")
    return start, end


def epoch_us(when: datetime) -> int:
    """Whole microseconds since the Unix epoch (how sample times are stored)."""
    return (when - EPOCH) // timedelta(microseconds=1)


def epoch_ms(when: datetime) -> int:
    """Whole milliseconds since the Unix epoch, rounded down (SSE event ids)."""
    return (when - EPOCH) // timedelta(milliseconds=1)  # exact: no float rounding


def after_epoch_ms(ms: int) -> datetime:
    """The first instant whose `epoch_ms` is greater than `ms` (where a resume starts)."""
    return EPOCH + timedelta(milliseconds=ms + 1)
