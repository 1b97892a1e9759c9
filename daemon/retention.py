"""What the worker's and the observer's retention passes share: when to run, whole minutes.

Each daemon rolls up and deletes its own feeds (worker/retention.py, observer/retention.py);
both run their pass from the writer's after-flush hook, at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from daemon.dberrors import reason

RETENTION_EVERY_S = 60.0


def minute_floor(t: datetime) -> datetime:
    """The start of `t`'s minute (UTC)."""
    return t.replace(second=0, microsecond=0)


def retention_hook(
    what: str, run: Callable[[Any], None], log: logging.Logger
) -> Callable[[Any], None]:
    """A writer's after-flush hook: `run(newest sample time)` at most once a minute; a database
    error is logged and the pass tried again at a later flush (the samples are written)."""
    last = {"at": float("-inf")}

    def after_flush(newest: Any) -> None:
        if time.monotonic() - last["at"] < RETENTION_EVERY_S:
            return
        last["at"] = time.monotonic()
        try:
            run(newest)
        except SQLAlchemyError as exc:
            log.error("%s pass failed, retrying later: %s", what, reason(exc))

    return after_flush
