"""The collision check as one indexed SQL query: the same verdicts as `contract.rules.collides`,
one statement on the address index whatever the VM holds (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.orm import Session

from app.api.errors import ApiError
from app.api.registrations.owned import LIVE_STATES, check_collision, collision_clause
from app.api.registrations.owned import first_live_collision as first_live
from app.schemas import IoeventfdIn
from contract.models import Ioeventfd
from contract.rules import collides, registration_problem

HIGH = 0xFFFF_FFFF_FFFF_FFF0  # above 2**63: stored as a negative BIGINT, must still match


def candidates() -> list[Ioeventfd]:
    """Every valid registration over a few addresses, widths and datamatch values."""
    addrs = {"pio": (0x6000, 0x6001), "mmio": (0xD000_0000, HIGH)}
    matches = (None, 0, 7, 0xFFFF_FFFF_FFFF_FFFF)
    rows = []
    for space, lens in (("pio", (0, 1, 2, 4)), ("mmio", (0, 1, 2, 4, 8))):
        for addr, len_, dm in itertools.product(addrs[space], lens, matches):
            if registration_problem(space, addr, len_, dm) is None:
                rows.append(Ioeventfd(space=space, addr=addr, len=len_, datamatch=dm))
    return rows


def test_the_query_gives_the_kernels_verdict_for_every_pair(db: Session, make_vm) -> None:
    vm = make_vm()
    olds = candidates()
    for old in olds:
        old.vm_id = vm.id
        old.state = "active"
    # Rows that would collide with everything but are not in the kernel: never a conflict.
    gone = [
        Ioeventfd(vm_id=vm.id, space=s, addr=a, len=0, state=state)
        for s, a in (("pio", 0x6000), ("mmio", HIGH))
        for state in ("failed", "removed")
    ]
    db.add_all(olds + gone)
    db.commit()
    pairs = 0
    for new in candidates():
        expected = {old.id for old in olds if collides(old, new)}
        query = select(Ioeventfd.id).where(
            Ioeventfd.vm_id == vm.id, Ioeventfd.state.in_(LIVE_STATES), collision_clause(new)
        )
        assert set(db.scalars(query)) == expected, new
        first = first_live(db, vm.id, new)
        assert (first.id if first else None) == (min(expected) if expected else None)
        pairs += len(olds)
    assert pairs > 2000  # the grid is not trivially small


def _fill(db: Session, vm_id: int, n: int) -> None:
    db.execute(
        insert(Ioeventfd),
        [
            {"vm_id": vm_id, "space": "mmio", "addr": 0xD000_0000 + 8 * i, "len": 4, "state": s}
            for i, s in zip(range(n), itertools.cycle(("active", "active", "removed")))
        ],
    )
    db.commit()


def test_one_statement_on_the_address_index_whatever_the_vm_holds(db: Session, make_vm) -> None:
    vm = make_vm()
    _fill(db, vm.id, 3000)
    statements: list[str] = []
    engine = db.get_bind()

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        clash = IoeventfdIn(space="mmio", addr=0xD000_0000 + 8 * 2998, len=0)
        with pytest.raises(ApiError) as refused:
            check_collision(db, vm.id, clash)
        assert refused.value.status_code == 409
        check_collision(db, vm.id, IoeventfdIn(space="mmio", addr=0xD000_0000 + 4, len=4))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 2, statements  # one each: no per-registration load

    new = Ioeventfd(space="mmio", addr=0xD000_0000, len=4, datamatch=None)
    query = (
        select(Ioeventfd)
        .where(Ioeventfd.vm_id == vm.id, Ioeventfd.state.in_(LIVE_STATES), collision_clause(new))
        .order_by(Ioeventfd.id)
        .limit(1)
    )
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    if engine.dialect.name == "sqlite":
        plan = " ".join(str(r) for r in db.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    else:
        db.execute(text("ANALYZE ioeventfds"))
        plan = " ".join(r[0] for r in db.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_ioeventfds_vm_addr" in plan, plan


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_migration_adds_the_address_index_and_its_downgrade_drops_it(request, kind) -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import inspect

    from contract.db import make_engine
    from contract.migrate import alembic_config, downgrade, upgrade

    url = request.getfixturevalue(f"empty_{kind}_url")

    def indexes() -> set[str]:
        engine = make_engine(url)
        try:
            return {ix["name"] for ix in inspect(engine).get_indexes("ioeventfds")}
        finally:
            engine.dispose()

    # Found by file name, so the test holds when the revision is renumbered on merge.
    script = ScriptDirectory.from_config(alembic_config(url))
    ours = next(r for r in script.walk_revisions() if r.path.endswith("_ioeventfds_by_address.py"))
    upgrade(url, ours.revision)
    assert "ix_ioeventfds_vm_addr" in indexes()
    downgrade(url, str(ours.down_revision))
    assert "ix_ioeventfds_vm_addr" not in indexes() and "ix_ioeventfds_vm_state" in indexes()
