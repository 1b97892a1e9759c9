"""benchmark_results.paced_cpu_ns: the vCPU thread's CPU time per write, paced, every one-way path

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 20:20:00.000000

Issue 18: the diagnosis prices an exit against an ioeventfd signal in vCPU time, as a doorbell
ringing at a rate pays it (passes every 10 ms, the vCPU asleep in between); the wall clock of a
pass also counts waiting for a CPU on a busy host, the thread's CPU time does not.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null for round-trip rows and for rows stored before this column.
    with op.batch_alter_table("benchmark_results") as batch:
        batch.add_column(sa.Column("paced_cpu_ns", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("benchmark_results") as batch:
        batch.drop_column("paced_cpu_ns")
