"""samples.sum_first/sum_second (and rollups'), indexes for the host view of a fleet

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 10:00:00.000000

Issue 19 item 4: the host view sorts 5,000 VMs by writes/s over a short window. Each tick's
counts summed over its series (observed: writes, userspace exits) sit beside the packed value,
so every VM's totals are one GROUP BY over an index range instead of 50,000 decoded ticks.
Rows stored before this migration keep NULL sums (the app decodes those); nothing is rewritten.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored (the models may change, history may not).
SUMS = ("sum_first", "sum_second")


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: a batch copy of a sample table on SQLite rewrites
    # millions of rows; a nullable column is added in place on both databases.
    for table in ("samples", "rollups"):
        for name in SUMS:
            op.add_column(table, sa.Column(name, sa.BigInteger(), nullable=True))
    op.create_index(
        "ix_samples_feed_taken",
        "samples",
        ["feed", "taken_at"],
        postgresql_include=["vm_id", "interval_us", *SUMS],
    )
    op.create_index(
        "ix_rollups_feed_minute",
        "rollups",
        ["feed", "minute_at"],
        postgresql_include=["vm_id", *SUMS],
    )
    op.create_index("ix_series_addr", "series", ["addr"])


def downgrade() -> None:
    op.drop_index("ix_series_addr", table_name="series")
    op.drop_index("ix_rollups_feed_minute", table_name="rollups")
    op.drop_index("ix_samples_feed_taken", table_name="samples")
    for table in ("rollups", "samples"):
        for name in reversed(SUMS):
            op.drop_column(table, name)
