"""Wake the worker when desired state changes: PostgreSQL NOTIFY, a no-op on SQLite.

On SQLite the worker polls every `poll_interval_s`; on PostgreSQL it LISTENs on this channel and
applies a new registration within a few milliseconds of the app's commit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "iosignal_desired"


def notify_desired(session: Session, vm_id: int) -> None:
    """Tell the worker of `vm_id` that its desired state changed; call after committing it.

    NOTIFY is delivered when its transaction commits, so this commits the session itself.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": str(vm_id)}
    )
    session.commit()
