"""`iosignal observe` as a process, with the latency programs, on a VM of this test process:
the worker's round-trip guest answered by its consumer thread. Every kick reaches the
database, in its minute's row, with the consumer named and the stages' buckets adding up."""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session
from support import wait_for

from contract.db import make_engine
from contract.latency import percentile
from contract.models import DoorbellLatency, Vm
from worker.guest.requests import Request
from worker.kvm import Kvm
from worker.roundtrip import RoundTrip

PORT = 0x0510
REQUESTS = 3000


def _rows(engine) -> list[DoorbellLatency]:
    with Session(engine) as db:
        vm_id = db.scalar(select(Vm.id).where(Vm.pid == os.getpid()))
        at_port = (DoorbellLatency.vm_id == vm_id) & (DoorbellLatency.addr == PORT)
        return list(db.scalars(select(DoorbellLatency).where(at_port)))


def test_each_kick_is_stored_with_its_consumer_and_stages(
    db_url: str, observer, kvm_path: str
) -> None:
    engine = make_engine(db_url)
    kvm = Kvm.open(kvm_path)
    trip = RoundTrip(kvm, "irqfd", Request("pio", PORT, 1, "hlt"))
    try:
        obs = observer(db_url)
        wait_for("the observer's programs", lambda: "observing every KVM VM" in obs.log(), 60)
        for _ in range(REQUESTS // 1000):
            trip.run_pass(1000)
        assert trip.consumer is not None
        consumer_tid = trip.consumer.tid

        def stored_all() -> list[DoorbellLatency] | None:
            rows = _rows(engine)
            return rows if sum(r.answered for r in rows) >= REQUESTS else None

        rows = wait_for("every kick stored", stored_all, 30)
    finally:
        trip.close()
        kvm.close()
    assert obs.stop() == 0, obs.log()
    assert {r.consumer_tid for r in rows} == {consumer_tid}
    assert sum(r.kicks for r in rows) == sum(r.answered for r in rows) == REQUESTS
    irq: dict[int, int] = {}
    for r in rows:
        for slot, n in r.hists["kick_to_irq"].items():
            irq[int(slot)] = irq.get(int(slot), 0) + n
    assert sum(irq.values()) == REQUESTS  # bucket counts of the minutes add to every kick
    assert 0 < (percentile(irq, 50) or 0) < 10_000_000  # some microseconds, not seconds
