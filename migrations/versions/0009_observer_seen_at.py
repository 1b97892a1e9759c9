"""vms.observer_seen_at: the observer's newest tick that saw the VM, owned rows included

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 20:00:00

Issue 18 item 4: an owned VM's Live page tells an observer that watches an idle VM from no
observer at all, and the live stream reads the observer's rows up to this mark (it is committed
with the tick's samples, so no row taken by then can still be uncommitted).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored: contract.models' UTCDateTime is a DateTime, U64 a
# BIGINT, SampleTime integer microseconds on SQLite (the models may change, history may not).
SAMPLE_TIME = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")


def upgrade() -> None:
    op.add_column("vms", sa.Column("observer_seen_at", SAMPLE_TIME, nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite a batch copy of `vms` would cascade-delete its rows' children
    # (see 0002); SQLite >= 3.35 drops a column in place.
    op.drop_column("vms", "observer_seen_at")
