"""observed VMs: vms.kind and process columns, observed_samples and observed_rollups

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain types, as the columns are stored: contract.models' UTCDateTime is a DateTime, U64 a
# BIGINT, SampleTime integer microseconds on SQLite (the models may change, history may not).
SAMPLE_TIME = sa.DateTime(timezone=True).with_variant(sa.BigInteger(), "sqlite")

_OBSERVED = sa.text("kind = 'observed'")


def _samples(name: str, time_col: str, pk: list[str]) -> None:
    op.create_table(
        name,
        sa.Column(time_col, SAMPLE_TIME, nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.Column("userspace", sa.BigInteger(), nullable=False),
        sa.Column("reads", sa.BigInteger(), nullable=False),
        sa.Column("addr", sa.BigInteger(), nullable=False),
        sa.Column("vm_id", sa.Integer(), nullable=False),
        sa.Column("len", sa.Integer(), nullable=False),
        sa.Column("interval_s", sa.REAL(), nullable=False),
        sa.Column("space", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["vm_id"], ["vms.id"], name=op.f(f"fk_{name}_vm_id_vms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(*pk, name=op.f(f"pk_{name}")),
        sqlite_with_rowid=False,
    )


def _vm_columns() -> list[sa.Column]:
    return [
        sa.Column("kind", sa.String(length=16), server_default="owned", nullable=False),
        sa.Column("comm", sa.String(length=64), nullable=True),
        sa.Column("cmdline", sa.Text(), nullable=True),
        sa.Column("vcpus", sa.Integer(), nullable=True),
        sa.Column("vcpu_tids", sa.JSON(), nullable=True),
        sa.Column("kvm_stats", sa.JSON(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("observed_rolled_up_until", SAMPLE_TIME, nullable=True),
    ]


def upgrade() -> None:
    # Not batch mode, up or down: on SQLite a batch copy drops and recreates `vms`, and with
    # foreign keys on that DROP cascades to every registration, workload and sample. ADD COLUMN
    # and (SQLite >= 3.35) DROP COLUMN both work in place.
    for column in _vm_columns():
        op.add_column("vms", column)
    op.create_index(
        "uq_vms_observed_process",
        "vms",
        ["host", "pid", "started_at"],
        unique=True,
        sqlite_where=_OBSERVED,
        postgresql_where=_OBSERVED,
    )
    _samples("observed_samples", "taken_at", ["taken_at", "vm_id", "space", "addr", "len"])
    _samples("observed_rollups", "minute_at", ["vm_id", "space", "addr", "len", "minute_at"])


def downgrade() -> None:
    op.drop_table("observed_rollups")
    op.drop_table("observed_samples")
    op.execute("DELETE FROM vms WHERE kind = 'observed'")
    op.drop_index("uq_vms_observed_process", table_name="vms")
    for column in reversed(_vm_columns()):
        op.drop_column("vms", column.name)
