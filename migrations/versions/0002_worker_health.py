"""worker health counters on vms

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00

The worker writes its missed ticks, dropped samples and lock errors with each heartbeat;
/metrics exports them per VM.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("missed_ticks", "dropped_samples", "lock_errors")


def upgrade() -> None:
    # A plain-string server default lets SQLite add each column in place (ALTER TABLE ADD
    # COLUMN); existing rows read 0.
    for name in COLUMNS:
        op.add_column("vms", sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    # Not batch mode: on SQLite a batch copy drops and recreates `vms`, and with foreign keys on
    # the DROP cascades to every registration, workload and sample. SQLite >= 3.35 drops a
    # column in place.
    for name in reversed(COLUMNS):
        op.drop_column("vms", name)
