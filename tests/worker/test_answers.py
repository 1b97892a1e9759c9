"""Answered doorbells on the live machine (real KVM): each kick answered by an interrupt."""

from __future__ import annotations

import errno
import time

import pytest

from contract.models import VmState
from worker.guest.table import Ring, read_interrupts
from worker.machine import Machine
from worker.registry import RegistrationError
from worker.workload import Doorbell

PORT = 0x6000
GPA = 0xD000_0000


def _guest_interrupts(machine: Machine) -> int:
    assert machine._guest is not None
    return read_interrupts(machine._guest.mem)


def _wait_until(what, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(("space", "addr", "length"), [("pio", PORT, 2), ("mmio", GPA, 4)])
def test_n_kicks_give_n_interrupts(machine: Machine, space: str, addr: int, length: int) -> None:
    machine.set_workload([Doorbell(space, addr, length, 1, 0.0, answered=True)])  # device, silent
    before = _guest_interrupts(machine)
    machine.ring([Ring(space, addr, length, 1, 500, answered=True)])
    collected = machine.collect()
    assert [(a.space, a.addr, a.len, a.kicks, a.interrupts) for a in collected.answers] == [
        (space, addr, length, 500, 500)
    ]
    assert _guest_interrupts(machine) - before == 500  # the guest took every one
    assert collected.exits == []  # the device's ioeventfd caught every kick in the kernel


def _settled_interrupts(machine: Machine) -> int:
    """The guest's interrupt count once it stops moving (the pass in flight has ended)."""
    last = _guest_interrupts(machine)
    while True:
        time.sleep(0.1)
        now = _guest_interrupts(machine)
        if now == last:
            return now
        last = now


def test_a_paced_answered_doorbell_is_answered_every_time(machine: Machine) -> None:
    # the guest's count read while nothing rings, so no kick straddles the start (one counted by
    # an earlier collect but taken by the guest after the read made the guest's figure one more)
    machine.collect()
    start = _settled_interrupts(machine)
    machine.set_workload(
        [
            Doorbell("pio", PORT, 2, 1, 300.0, answered=True),
            Doorbell("pio", PORT + 2, 2, 1, 300.0),  # a plain doorbell beside it: never waits
        ]
    )
    time.sleep(1.0)
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 0.0, answered=True)])  # stop ringing
    end = _settled_interrupts(machine)
    collected = machine.collect()
    (answer,) = collected.answers
    assert answer.kicks == answer.interrupts == end - start
    assert answer.kicks > 100
    assert [(e.addr, e.exits > 100) for e in collected.exits] == [(PORT + 2, True)]
    assert machine.state == VmState.RUNNING


def test_a_consumer_that_stops_fails_the_vm_with_a_clear_error(machine: Machine) -> None:
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 1000.0, answered=True)])
    assert machine.answers is not None
    _wait_until(lambda: machine.collect().answers[0].kicks > 0)
    consumer = machine.answers._devices[("pio", PORT, 2)].consumer
    assert consumer is not None
    consumer.stop()  # as if the thread were killed: the next kick goes unanswered
    _wait_until(lambda: machine.state == VmState.FAILED)
    assert machine.error is not None
    assert "device consumer of answered doorbell pio 0x6000 len 2 stopped" in machine.error
    assert "the guest waits for an interrupt that will not come" in machine.error
    with pytest.raises(Exception, match="device consumer"):
        machine.ring([Ring("pio", PORT + 2, 2, 1, 1)])


def test_an_answered_doorbell_a_registration_already_catches_is_refused(machine: Machine) -> None:
    machine.register(1, "pio", PORT, 2, None)
    with pytest.raises(ValueError, match="a registration already catches these writes"):
        machine.set_workload(
            [
                Doorbell("pio", PORT + 4, 2, 1, 10.0, answered=True),
                Doorbell("pio", PORT, 2, 1, 10.0, answered=True),
            ]
        )
    assert machine.pacer.doorbells == []  # nothing changed
    assert machine.answers is not None and machine.answers._devices == {}


def test_a_doorbell_no_longer_answered_exits_again_after_the_pass(machine: Machine) -> None:
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 0.0, answered=True)])
    machine.ring([Ring("pio", PORT, 2, 1, 10, answered=True)])
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 0.0)])
    machine.ring([Ring("pio", PORT, 2, 1, 7)])  # the device retires before this pass
    collected = machine.collect()
    assert [(a.kicks, a.interrupts) for a in collected.answers] == [(10, 10)]
    assert [(e.addr, e.exits) for e in collected.exits] == [(PORT, 7)]
    assert machine.collect().answers == []


def test_a_registration_where_a_doorbell_is_answered_is_refused_naming_it(
    machine: Machine,
) -> None:
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 0.0, answered=True)])
    with pytest.raises(RegistrationError, match="an answered doorbell's device") as refused:
        machine.register(1, "pio", PORT, 0, None)
    assert refused.value.errno == errno.EEXIST


def test_a_doorbell_answered_again_before_the_next_pass_keeps_its_device(machine: Machine) -> None:
    answered = [Doorbell("pio", PORT, 2, 1, 0.0, answered=True)]
    machine.set_workload(answered)
    assert machine.answers is not None
    device = machine.answers._devices[("pio", PORT, 2)]
    machine.set_workload([])  # retires at the next pass ...
    machine.set_workload(answered)  # ... which has not come: the same device, no EEXIST
    assert machine.answers._devices[("pio", PORT, 2)] is device
    machine.ring([Ring("pio", PORT, 2, 1, 20, answered=True)])
    assert [(a.kicks, a.interrupts) for a in machine.collect().answers] == [(20, 20)]


def test_an_idle_vcpu_retires_a_device_at_once_so_the_address_can_be_registered(
    machine: Machine,
) -> None:
    machine.set_workload([Doorbell("pio", PORT, 2, 1, 0.0, answered=True)])
    machine.set_workload([])  # no pass will come: the woken vCPU thread retires it
    assert machine.answers is not None
    answers = machine.answers

    def retired() -> bool:
        with answers._lock:  # held while the device closes
            return not answers._retiring

    _wait_until(retired)
    machine.register(1, "pio", PORT, 2, None)  # the device's ioeventfd is gone
