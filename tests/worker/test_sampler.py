"""The sampler: exact counts across samples, intervals from the monotonic clock."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

from worker.guest.table import Ring
from worker.machine import Machine
from worker.sampler import Sampler

GPA = 0xD000_0000


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_intervals_and_taken_at_come_from_the_given_clocks(kvm_path: str) -> None:
    clock = FakeClock()
    wall = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    machine = Machine(kvm_path, clock=clock)
    machine.start()
    try:
        sampler = Sampler(machine.registry, machine.exits, clock=clock, wallclock=lambda: wall)
        clock.now += 0.5
        machine.register(1, "pio", 0x10, 1, None)  # registered mid-interval
        clock.now += 1.5
        machine.register(2, "mmio", GPA, 4, None)
        machine.ring([Ring("pio", 0x10, 1, 1, 3), Ring("pio", 0x11, 1, 1, 4)])
        clock.now += 0.25
        machine.unregister(2)
        clock.now += 0.25
        got = sampler.collect()
        # Every sample covers the whole tick, registered or removed mid-tick or not.
        assert [(s.key, s.signals, s.interval_s, s.taken_at) for s in got.signals] == [
            (1, 3, 2.5, wall),
            (2, 0, 2.5, wall),  # its leftover, sampled once after removal
        ]
        assert [(e.space, e.addr, e.len, e.exits, e.interval_s) for e in got.exits] == [
            ("pio", 0x11, 1, 4, 2.5)
        ]
        clock.now += 1.0
        again = sampler.collect()
        assert [(s.key, s.signals, s.interval_s) for s in again.signals] == [(1, 0, 1.0)]
        assert again.exits == []
    finally:
        machine.close()


def test_a_doorbell_registered_mid_tick_has_exit_and_signal_rates_adding_up(kvm_path) -> None:
    clock = FakeClock()
    machine = Machine(kvm_path, clock=clock)
    machine.start()
    try:
        sampler = Sampler(machine.registry, machine.exits, clock=clock)
        machine.ring([Ring("pio", 0x10, 1, 1, 30)])  # exits: no ioeventfd yet
        clock.now += 0.9
        machine.register(1, "pio", 0x10, 1, None)
        machine.ring([Ring("pio", 0x10, 1, 1, 70)])  # a burst right after registering
        clock.now += 0.1
        got = sampler.collect()
        (signal,) = got.signals
        (exit_,) = got.exits
        rates = (exit_.exits / exit_.interval_s, signal.signals / signal.interval_s)
        assert rates == (30.0, 70.0)  # 100 writes in a 1 s tick: 100/s, with no spike
    finally:
        machine.close()


def test_counts_are_exact_while_collecting_concurrently(machine: Machine) -> None:
    machine.register(1, "pio", 0x10, 4, None)
    machine.register(2, "mmio", GPA, 0, None)
    rng = random.Random(7)
    passes = [(rng.randrange(1, 3000), rng.randrange(0, 50)) for _ in range(40)]
    done = threading.Event()

    def guest_writes() -> None:
        for n, misses in passes:
            machine.ring(
                [
                    Ring("pio", 0x10, 4, 1, n),
                    Ring("mmio", GPA, 8, 1, n),
                    Ring("pio", 0x12, 2, 1, misses),
                ]
            )
        done.set()

    writer = threading.Thread(target=guest_writes)
    writer.start()
    totals = {1: 0, 2: 0, "exits": 0}
    collects = 0
    while not done.is_set() or collects == 0:
        got = machine.collect()
        collects += 1
        for s in got.signals:
            totals[s.key] += s.signals
        totals["exits"] += sum(e.exits for e in got.exits)
    writer.join()
    got = machine.collect()
    for s in got.signals:
        totals[s.key] += s.signals
    totals["exits"] += sum(e.exits for e in got.exits)
    want = sum(n for n, _ in passes)
    assert totals == {1: want, 2: want, "exits": sum(m for _, m in passes)}
    assert collects > 1


def test_unregistering_while_the_guest_rings_loses_nothing(machine: Machine) -> None:
    """Signals before DEASSIGN are the registration's; writes after it are exits."""
    machine.register(1, "mmio", GPA, 4, None)
    total = 0
    stop = threading.Event()

    def ring_forever() -> None:
        nonlocal total
        while not stop.is_set():
            machine.ring([Ring("mmio", GPA, 4, 1, 200)])
            total += 200

    ringer = threading.Thread(target=ring_forever)
    ringer.start()
    try:
        stop.wait(0.2)
        machine.unregister(1)
        stop.wait(0.1)
    finally:
        stop.set()
        ringer.join()
    got = machine.collect()
    signals = sum(s.signals for s in got.signals if s.key == 1)
    exits = sum(e.exits for e in got.exits)
    assert signals > 0 and exits > 0
    assert signals + exits == total


def test_a_key_registered_again_before_collect_keeps_both_counts(machine: Machine) -> None:
    machine.register(5, "pio", 0x10, 1, None)
    machine.ring([Ring("pio", 0x10, 1, 1, 7)])
    machine.unregister(5)
    machine.register(5, "pio", 0x20, 1, None)
    machine.ring([Ring("pio", 0x20, 1, 1, 4)])
    got = machine.collect()
    assert [(s.key, s.signals) for s in got.signals] == [(5, 11)]  # one sample per key
    machine.unregister(5)
    assert [(s.key, s.signals) for s in machine.collect().signals] == [(5, 0)]
