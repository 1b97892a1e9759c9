"""vms.mem_size: the guest's RAM size as a typed column instead of a key of `capabilities`

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 10:00:00.000000

The app checks MMIO doorbells and registrations against the guest's RAM; the size rode in the
`capabilities` JSON and was read by string in three places. Existing rows move their value
across (and back on downgrade), so a VM row keeps its size in one place.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The table as this migration sees it (frozen: never the live models).
vms = sa.table(
    "vms",
    sa.column("id", sa.Integer()),
    sa.column("capabilities", sa.JSON()),
    sa.column("mem_size", sa.BigInteger()),
)


def upgrade() -> None:
    # Null for observed VMs and for rows whose worker never said (SQLite adds it in place).
    op.add_column("vms", sa.Column("mem_size", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    for vm_id, capabilities in conn.execute(sa.select(vms.c.id, vms.c.capabilities)).all():
        if not isinstance(capabilities, dict) or "mem_size" not in capabilities:
            continue
        rest = {k: v for k, v in capabilities.items() if k != "mem_size"}
        size = capabilities["mem_size"]
        conn.execute(
            vms.update()
            .where(vms.c.id == vm_id)
            .values(capabilities=rest, mem_size=int(size) if size is not None else None)
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(vms.c.id, vms.c.capabilities, vms.c.mem_size)).all()
    for vm_id, capabilities, size in rows:
        if size is not None:
            moved = {**(capabilities or {}), "mem_size": size}
            conn.execute(vms.update().where(vms.c.id == vm_id).values(capabilities=moved))
    # Not batch mode: a batch copy of `vms` on SQLite would cascade-delete its children (0002).
    op.drop_column("vms", "mem_size")
