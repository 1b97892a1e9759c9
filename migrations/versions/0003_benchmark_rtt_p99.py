"""benchmark_results.rtt_us_p99: the round-trip rows' 99th percentile

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 09:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for the one-way rows: their figures are per pass, not per request.
    with op.batch_alter_table("benchmark_results") as batch:
        batch.add_column(sa.Column("rtt_us_p99", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("benchmark_results") as batch:
        batch.drop_column("rtt_us_p99")
