"""The shared schema's own types round-trip on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from support import add_signal

from contract.db import make_engine
from contract.models import Ioeventfd, Sample, Vm


def _vm_and_reg(db: Session, **reg) -> Ioeventfd:
    vm = Vm(name="vm-models")
    db.add(vm)
    db.flush()
    row = Ioeventfd(vm_id=vm.id, space="mmio", addr=0xD000_0000, len=4, **reg)
    db.add(row)
    db.flush()
    return row


def test_u64_keeps_full_range_addresses_and_datamatch(db_url: str) -> None:
    engine = make_engine(db_url)
    with Session(engine) as db:
        row = _vm_and_reg(db, datamatch=0xFFFF_FFFF_FFFF_FFFF)
        row.addr = 0xFFFF_FFFF_FFFF_F000
        db.commit()
        found = db.scalars(select(Ioeventfd).where(Ioeventfd.datamatch == 2**64 - 1)).one()
        db.expire_all()
        assert (found.addr, found.datamatch) == (0xFFFF_FFFF_FFFF_F000, 2**64 - 1)
    engine.dispose()


def test_sample_time_round_trips_to_the_microsecond_and_compares(db_url: str) -> None:
    engine = make_engine(db_url)
    t0 = datetime(2026, 11, 24, 1, 2, 3, 456789, tzinfo=UTC)
    with Session(engine) as db:
        reg = _vm_and_reg(db)
        for k in range(3):
            add_signal(
                db,
                ioeventfd_id=reg.id,
                taken_at=t0 + timedelta(seconds=k),
                signals=k,
                interval_s=1.0,
            )
        db.commit()
        got = db.scalars(select(Sample.taken_at).order_by(Sample.taken_at)).all()
        assert got == [t0, t0 + timedelta(seconds=1), t0 + timedelta(seconds=2)]
        assert all(t.tzinfo is not None for t in got)
        since = t0 + timedelta(milliseconds=500)
        n = db.scalar(select(func.count()).where(Sample.taken_at >= since))
        assert n == 2
        assert db.scalar(select(func.max(Sample.taken_at))) == t0 + timedelta(seconds=2)
    engine.dispose()


def test_sqlite_stores_sample_time_as_an_integer(empty_sqlite_url: str) -> None:
    from contract.migrate import upgrade

    upgrade(empty_sqlite_url)
    engine = make_engine(empty_sqlite_url)
    with Session(engine) as db:
        reg = _vm_and_reg(db)
        add_signal(
            db,
            ioeventfd_id=reg.id,
            taken_at=datetime(1970, 1, 1, 0, 0, 1, 5, UTC),
            signals=1,
            interval_s=1.0,
        )
        db.commit()
        raw = db.connection().exec_driver_sql("SELECT taken_at FROM samples").scalar()
        assert raw == 1_000_005
    engine.dispose()
