"""observed VMs: vms.kind and process columns, observed_samples and observed_rollups

Revision ID: 0003
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import contract.models

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OBSERVED = sa.text("kind = 'observed'")


def _samples(name: str, time_col: str, pk: list[str]) -> None:
    op.create_table(
        name,
        sa.Column(time_col, contract.models.SampleTime(timezone=True), nullable=False),
        sa.Column("writes", sa.BigInteger(), nullable=False),
        sa.Column("userspace", sa.BigInteger(), nullable=False),
        sa.Column("reads", sa.BigInteger(), nullable=False),
        sa.Column("addr", contract.models.U64(), nullable=False),
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


def upgrade() -> None:
    with op.batch_alter_table("vms") as vms:
        vms.add_column(
            sa.Column("kind", sa.String(length=16), server_default="owned", nullable=False)
        )
        vms.add_column(sa.Column("comm", sa.String(length=64), nullable=True))
        vms.add_column(sa.Column("cmdline", sa.Text(), nullable=True))
        vms.add_column(sa.Column("vcpus", sa.Integer(), nullable=True))
        vms.add_column(sa.Column("vcpu_tids", sa.JSON(), nullable=True))
        vms.add_column(sa.Column("kvm_stats", sa.JSON(), nullable=True))
        vms.add_column(
            sa.Column("ended_at", contract.models.UTCDateTime(timezone=True), nullable=True)
        )
        vms.add_column(
            sa.Column(
                "observed_rolled_up_until",
                contract.models.SampleTime(timezone=True),
                nullable=True,
            )
        )
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
    with op.batch_alter_table("vms") as vms:
        for col in (
            "observed_rolled_up_until",
            "ended_at",
            "kvm_stats",
            "vcpu_tids",
            "vcpus",
            "cmdline",
            "comm",
            "kind",
        ):
            vms.drop_column(col)
