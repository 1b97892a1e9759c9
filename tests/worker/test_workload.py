"""Pacing: each doorbell rings at its rate, fractions carried, stalls skipped not burst."""

from __future__ import annotations

import time

import pytest

from worker.machine import Machine
from worker.workload import Doorbell, Pacer

BELL = Doorbell("pio", 0x10, 1, 1, 333.3)


def run_plans(pacer: Pacer, times: list[float]) -> list[int]:
    return [sum(r.writes for r in pacer.plan(t)) for t in times]


def test_fractions_carry_so_the_long_run_rate_is_exact() -> None:
    pacer = Pacer(clock=lambda: 0.0, period=0.01)
    pacer.set([BELL])
    counts = run_plans(pacer, [i * 0.01 for i in range(101)])
    assert sum(counts) == int(333.3 * 1.01)  # first pass covers one period, then 100 periods
    assert set(counts) <= {3, 4}  # spread evenly, never a burst


def test_a_late_pass_catches_up_but_a_stall_is_skipped() -> None:
    pacer = Pacer(clock=lambda: 0.0, period=0.01, max_lag=0.25)
    pacer.set([Doorbell("mmio", 0xD000_0000, 4, 1, 1000.0)])
    assert run_plans(pacer, [0.0, 0.01, 0.11]) == [10, 10, 100]  # 100 ms late: caught up
    assert run_plans(pacer, [5.0]) == [10]  # 4.9 s stall: one period's worth, no burst
    assert pacer.wait_time(5.0) == pytest.approx(0.01)


def test_wait_time_follows_a_monotonic_deadline_schedule() -> None:
    pacer = Pacer(clock=lambda: 0.0, period=0.01)
    assert pacer.wait_time(0.0) is None  # idle without doorbells
    pacer.set([BELL])
    assert pacer.wait_time(3.0) == 0.0
    pacer.plan(3.0)
    assert pacer.wait_time(3.004) == pytest.approx(0.006)
    pacer.plan(3.013)  # 3 ms late: the next deadline stays on the 10 ms grid
    assert pacer.wait_time(3.013) == pytest.approx(0.007)


def test_changing_the_workload_keeps_fractions_and_drops_rate_zero() -> None:
    pacer = Pacer(clock=lambda: 0.0, period=0.01)
    pacer.set([Doorbell("pio", 0x10, 1, 1, 50.0)])
    assert run_plans(pacer, [0.0, 0.01]) == [0, 1]  # 0.5 carried into the second pass
    pacer.set([Doorbell("pio", 0x10, 1, 1, 50.0), Doorbell("pio", 0x30, 1, 1, 0.0)])
    assert len(pacer.doorbells) == 1
    assert run_plans(pacer, [0.02]) == [0]  # carry 0 + 0.5: still nothing whole


@pytest.mark.parametrize(
    ("bell", "rule"),
    [
        (Doorbell("pio", 0x10, 1, 1, -1.0), "rate_hz"),
        (Doorbell("pio", 0x10, 1, 1, float("nan")), "rate_hz"),
        (Doorbell("pio", 0x10, 8, 1, 1.0), "len must be one of 1, 2, 4"),
        (Doorbell("mmio", 0x1000, 4, 1, 1.0), "outside guest RAM"),
    ],
)
def test_a_bad_doorbell_refuses_the_whole_workload(bell: Doorbell, rule: str) -> None:
    pacer = Pacer()
    pacer.set([BELL])
    with pytest.raises(ValueError, match=rule):
        pacer.set([Doorbell("pio", 0x30, 1, 1, 5.0), bell])
    assert pacer.doorbells == [BELL]


def _signals(machine: Machine) -> dict[int, int]:
    return {s.key: s.signals for s in machine.collect().signals}


@pytest.mark.serial  # a rate over wall-clock time
def test_1_khz_for_5_s_rings_within_5_percent(machine: Machine) -> None:
    machine.register(1, "pio", 0x10, 2, None)
    machine.set_workload([Doorbell("pio", 0x10, 2, 7, 1000.0)])
    time.sleep(0.2)  # let pacing settle
    _signals(machine)
    start = time.monotonic()
    time.sleep(5.0)
    rung = _signals(machine)[1]
    elapsed = time.monotonic() - start
    assert machine.state == "running"
    assert abs(rung - 1000.0 * elapsed) <= 0.05 * 1000.0 * elapsed, (rung, elapsed)


def test_the_workload_changes_without_restarting_the_vm(machine: Machine) -> None:
    machine.register(1, "pio", 0x10, 1, None)
    machine.register(2, "mmio", 0xD000_0000, 4, None)
    machine.set_workload([("pio", 0x10, 1, 1, 500.0)])
    time.sleep(0.3)
    first = _signals(machine)
    machine.set_workload(
        [{"space": "mmio", "addr": 0xD000_0000, "len": 4, "value": 1, "rate_hz": 500}]
    )
    time.sleep(0.05)  # the pass in flight finishes on the old table
    _signals(machine)
    time.sleep(0.3)
    second = _signals(machine)
    machine.set_workload([])
    assert first[1] > 0 and first[2] == 0
    assert second[1] == 0 and second[2] > 0
    assert machine.state == "running"
