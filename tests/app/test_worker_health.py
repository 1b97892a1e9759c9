"""The worker's own health counters reach /metrics through the database, with its heartbeat."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from support import FakeTime, wait_for
from test_metrics import scrape  # same folder, on sys.path

from contract.config import get_settings
from contract.db import make_engine
from contract.models import Ioeventfd, WorkerHealth
from daemon.ticker import Ticker
from worker import store
from worker.control import Control
from worker.machine import Machine
from worker.main import worker_health
from worker.writer import SampleWriter

VM = (("vm", "health-vm"),)


@pytest.fixture
def engine(app_env: str) -> Iterator[Engine]:
    e = make_engine(app_env)
    yield e
    e.dispose()


@pytest.fixture
def machine(kvm_path: str) -> Iterator[Machine]:
    m = Machine(kvm_path)
    m.start()
    try:
        yield m
    finally:
        m.close()


def _overrun_second_collect(machine: Machine, fake: FakeTime):
    collects = 0

    def collect():
        nonlocal collects
        collects += 1
        if collects == 2:
            fake.now += 0.35  # this collect overran 3.5 ticks of 0.1 s
        return machine.collect()

    return collect


def test_missed_ticks_and_dropped_samples_reach_metrics_with_the_heartbeat(client, engine, machine):
    vm_id = store.claim_vm(engine, "health-vm", machine.info())
    with Session(engine) as db:
        reg = Ioeventfd(vm_id=vm_id, space="pio", addr=0x6000, len=2, state="active")
        db.add(reg)
        db.commit()
        machine.register(reg.id, "pio", 0x6000, 2, None)  # one signal sample per collect
    fake = FakeTime(waits=6)
    writer = SampleWriter(engine, vm_id, max_samples=2)  # never flushed: a database away
    ticker = Ticker(_overrun_second_collect(machine, fake), writer.put, 0.1, clock=fake.clock)
    ticker.run(fake)  # type: ignore[arg-type]  # quacks like threading.Event
    assert ticker.missed == 3 and writer.dropped > 0
    before = scrape(client)
    assert before["iosignal_worker_missed_ticks_total"][VM] == 0.0  # nothing beat yet

    health = partial(worker_health, ticker, writer)
    control = Control(get_settings(), engine, machine, vm_id, health)
    stop = threading.Event()
    thread = threading.Thread(target=control.run, args=(stop,), daemon=True)
    thread.start()
    try:
        metrics = wait_for(
            "the heartbeat's health in /metrics",
            lambda: (m := scrape(client))["iosignal_worker_missed_ticks_total"][VM] and m,
        )
    finally:
        stop.set()
        thread.join(10)
    assert metrics["iosignal_worker_missed_ticks_total"][VM] == 3.0
    assert metrics["iosignal_worker_dropped_samples_total"][VM] == float(writer.dropped)
    assert metrics["iosignal_worker_lock_errors_total"][VM] == float(writer.lock_errors)
    assert {f"iosignal_worker_{key}_total" for key in WorkerHealth.__annotations__} <= set(metrics)
