"""A reader's series dictionary and samples read apart: a series added in between is found."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from support import add_observed

from contract.db import make_engine
from contract.models import Feed, Sample, Vm
from contract.samples import decode, series_of


def test_a_sample_naming_a_series_added_after_the_dictionary_was_read_is_decoded(db_url) -> None:
    """As on PostgreSQL under READ COMMITTED: the dictionary is read, the writer commits a new
    series with its first sample, the reader's next statement sees that sample."""
    engine = make_engine(db_url)
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    with Session(engine) as db:
        vm = Vm(name="vm-keys")
        db.add(vm)
        db.flush()
        add_observed(db, vm.id, "pio", 0x510, 4, writes=3, taken_at=t0)
        db.commit()
        vm_id = vm.id
    with engine.connect() as reader:
        keys = series_of(reader, vm_id, Feed.OBSERVED)
        assert list(keys.values()) == [("pio", 0x510, 4)]
        reader.commit()  # end the read transaction, as a statement boundary does on PostgreSQL
        with Session(engine) as writer:
            add_observed(writer, vm_id, "mmio", 0xD000_0000, 4, writes=7, userspace=7, taken_at=t1)
            writer.commit()
        query = select(Sample.taken_at, Sample.counts).where(Sample.vm_id == vm_id)
        got = {
            (keys[i], t.replace(tzinfo=UTC)): c
            for t, value in reader.execute(query.order_by(Sample.taken_at))
            for i, c in decode(vm_id, Feed.OBSERVED, t, value).items()
        }
        assert got == {
            (("pio", 0x510, 4), t0): (3, 0, 0),
            (("mmio", 0xD000_0000, 4), t1): (7, 7, 0),
        }
        with pytest.raises(KeyError, match="no series 99"):
            keys[99]  # an index no series has, even read again: a fault, said as one
