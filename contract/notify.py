"""Wake the worker when desired state changes: PostgreSQL NOTIFY, or a FIFO beside a SQLite file.

On PostgreSQL the worker LISTENs on `CHANNEL`. On SQLite it reads a FIFO named after the
database file and its VM (`wake_path`: `iosignal.db.wake-3` for VM 3), which the app pokes right
after its commit. Either way the worker also polls, so a lost wake-up only costs a poll interval;
and a poke that no worker hears costs nothing (no block, no error).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

CHANNEL = "iosignal_desired"


def wake_path(url: str | URL, vm_id: int) -> Path | None:
    """The FIFO that wakes the worker of `vm_id` on this SQLite database; None off SQLite or for
    a database without a file."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a URI filename: no plain path to put a FIFO beside
    return Path(f"{database}.wake-{vm_id}")


def poke(path: Path) -> bool:
    """Write one byte into the FIFO at `path` if a worker holds it open; True if one does.

    Never blocks and never raises: no FIFO (ENOENT) or no reader (ENXIO) means no worker is
    listening, and a full pipe (EAGAIN) means it is already due to wake.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False  # never write into a file that happens to have the name
        with contextlib.suppress(BlockingIOError):
            os.write(fd, b"\n")
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def notify_on_commit(session: Session, vm_id: int) -> None:
    """PostgreSQL: queue the worker's NOTIFY in the session's transaction (sent when it commits,
    saving a transaction of its own); elsewhere nothing. Follow the commit with `wake_after`."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": CHANNEL, "payload": str(vm_id)},
        )


def wake_after(session: Session, vm_id: int) -> None:
    """SQLite: poke the worker of `vm_id` through its FIFO; call after the commit it must see."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        path = wake_path(bind.engine.url, vm_id)
        if path is not None:
            poke(path)


def notify_desired(session: Session, vm_id: int) -> None:
    """Tell the worker of `vm_id` that its desired state changed; call after committing it.

    NOTIFY is delivered when its transaction commits, so on PostgreSQL this commits the session.
    """
    if session.get_bind().dialect.name == "postgresql":
        notify_on_commit(session, vm_id)
        session.commit()
    wake_after(session, vm_id)
