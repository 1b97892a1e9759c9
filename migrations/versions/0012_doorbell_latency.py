"""doorbell_latency: each in-kernel doorbell's consumer and stage histograms per minute (issue 21)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:00:00.000000

The observer's latency programs name the thread each doorbell's kicks wake and time kick ->
consumer running, kick -> interrupt and interrupt -> vCPU; one row per doorbell and minute,
its histograms as JSON {stage: {slot: count}} (the slots' meaning is contract.latency's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored: contract.models' UTCDateTime is a DateTime, U64 a
# BIGINT (the models may change, history may not).


def upgrade() -> None:
    op.create_table(
        "doorbell_latency",
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=8), nullable=False),
        sa.Column("addr", sa.BigInteger(), nullable=False),
        sa.Column("len", sa.Integer(), nullable=False),
        sa.Column("minute_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumer_tid", sa.Integer(), nullable=False),
        sa.Column("consumer_comm", sa.String(length=16), nullable=False),
        sa.Column("consumer_process", sa.String(length=16), nullable=False),
        sa.Column("kicks", sa.BigInteger(), nullable=False),
        sa.Column("wakes", sa.BigInteger(), nullable=False),
        sa.Column("answered", sa.BigInteger(), nullable=False),
        sa.Column("coalesced", sa.BigInteger(), nullable=False),
        sa.Column("stale", sa.BigInteger(), nullable=False),
        sa.Column("vector", sa.Integer(), nullable=True),
        sa.Column("hists", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_doorbell_latency_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "vm_id", "space", "addr", "len", "minute_at", name=op.f("pk_doorbell_latency")
        ),
    )


def downgrade() -> None:
    op.drop_table("doorbell_latency")
