"""ioeventfds indexed by (vm, space, address): the collision check is one indexed query

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 03:00:00

Issue 11 item 4: POST /api/vms/{id}/ioeventfds used to load every live registration of the VM
to check for a collision (65-136 ms at 2,500 registrations); with this index it reads only the
registrations at the new one's address.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ioeventfds_vm_addr", "ioeventfds", ["vm_id", "space", "addr", "state"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ioeventfds_vm_addr", table_name="ioeventfds")
