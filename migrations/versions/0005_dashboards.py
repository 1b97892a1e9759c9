"""dashboards, notes, worker events, demo; host flavour on vms and benchmark runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00

Issue 12: saved dashboards, annotations (notes people add, worker start/stop the worker
records), the demo workload, and the CPU model and KVM flavour that benchmark trends group by.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored: contract.models' UTCDateTime is a DateTime, U64 a
# BIGINT, SampleTime integer microseconds on SQLite (the models may change, history may not).
UTC_TIME = sa.DateTime(timezone=True)
FLAVOUR_TABLES = ("vms", "benchmark_runs")


def _flavour_columns() -> list[sa.Column]:
    return [
        sa.Column("cpu_model", sa.String(length=255), server_default="", nullable=False),
        sa.Column("kvm_module", sa.String(length=32), server_default="", nullable=False),
        sa.Column("kvm_nested", sa.Boolean(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboards")),
        sa.UniqueConstraint("slug", name=op.f("uq_dashboards_slug")),
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=True),
        sa.Column("time", UTC_TIME, nullable=False),
        sa.Column("time_end", UTC_TIME, nullable=True),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_notes_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    op.create_index(op.f("ix_notes_time"), "notes", ["time"], unique=False)
    op.create_table(
        "worker_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_worker_events_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_events")),
    )
    op.create_index("ix_worker_events_at", "worker_events", ["at"], unique=False)
    op.create_table(
        "demos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("ioeventfd_id", sa.Integer(), nullable=True),
        sa.Column("workload_version", sa.Integer(), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["ioeventfd_id"],
            ["ioeventfds.id"],
            name=op.f("fk_demos_ioeventfd_id_ioeventfds"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f("fk_demos_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_demos")),
    )
    # Plain ADD COLUMN with server defaults (as 0002): SQLite adds them in place, rows keep.
    for table in FLAVOUR_TABLES:
        for column in _flavour_columns():
            op.add_column(table, column)
    op.add_column(
        "workloads", sa.Column("demo", sa.Boolean(), server_default=sa.false(), nullable=False)
    )


def downgrade() -> None:
    # Not batch mode: a SQLite table copy of `vms` would cascade-delete every row that points
    # at it (see 0002). SQLite >= 3.35 drops a column in place.
    op.drop_column("workloads", "demo")
    for table in reversed(FLAVOUR_TABLES):
        for column in reversed(_flavour_columns()):
            op.drop_column(table, column.name)
    op.drop_table("demos")
    op.drop_index("ix_worker_events_at", table_name="worker_events")
    op.drop_table("worker_events")
    op.drop_index(op.f("ix_notes_time"), table_name="notes")
    op.drop_table("notes")
    op.drop_table("dashboards")
