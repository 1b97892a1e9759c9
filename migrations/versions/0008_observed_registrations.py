"""observed registrations, exit values and observers: what other VMMs registered (issue 18)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 10:00:00

Issue 18 items 2 and 3: the observer records every KVM_IOEVENTFD / KVM_IRQFD call a VMM made,
the values the guest wrote in writes that still exited, and when it started watching (calls
before that are unknown). Reads that exited are a sample feed (5) of the existing tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored: contract.models' UTCDateTime is a DateTime, U64 a
# BIGINT, SampleTime integer microseconds on SQLite (the models may change, history may not).

READ_EXITS = 5  # contract.models.Feed.READ_EXITS


def _vm_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["vm_id"], ["vms.id"], name=op.f(f"fk_{table}_vm_id_vms"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "observers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observers")),
    )
    op.create_index("ix_observers_host_started", "observers", ["host", "started_at"])
    op.create_table(
        "observed_registrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("deassign", sa.Boolean(), nullable=False),
        sa.Column("space", sa.String(length=8), nullable=True),
        sa.Column("addr", sa.BigInteger(), nullable=True),
        sa.Column("len", sa.Integer(), nullable=True),
        sa.Column("datamatch", sa.BigInteger(), nullable=True),
        sa.Column("eventfd", sa.Integer(), nullable=False),
        sa.Column("gsi", sa.Integer(), nullable=True),
        sa.Column("flags", sa.BigInteger(), nullable=False),
        sa.Column("called_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deassigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("errno", sa.String(length=32), nullable=True),
        _vm_fk("observed_registrations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observed_registrations")),
    )
    op.create_index(
        "ix_observed_registrations_vm_addr",
        "observed_registrations",
        ["vm_id", "kind", "space", "addr"],
    )
    op.create_table(
        "observed_exit_values",
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=8), nullable=False),
        sa.Column("addr", sa.BigInteger(), nullable=False),
        sa.Column("len", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        _vm_fk("observed_exit_values"),
        sa.PrimaryKeyConstraint(
            "vm_id", "space", "addr", "len", "value", name=op.f("pk_observed_exit_values")
        ),
    )


def downgrade() -> None:
    op.drop_table("observed_exit_values")
    op.drop_index("ix_observed_registrations_vm_addr", table_name="observed_registrations")
    op.drop_table("observed_registrations")
    op.drop_index("ix_observers_host_started", table_name="observers")
    op.drop_table("observers")
    # the read-exit feed's rows: code before 0008 does not know feed 5
    for table in ("samples", "rollups", "series"):
        op.execute(sa.text(f"DELETE FROM {table} WHERE feed = {READ_EXITS}"))
