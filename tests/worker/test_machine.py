"""Machine: guest writes become exactly-counted signals or exits, as the kernel decides."""

from __future__ import annotations

import os
import threading
import time

import pytest

from worker.exits import ExitCounter, PassRunner
from worker.guest.table import Ring, write_table
from worker.kvm import Mmio, Pio
from worker.machine import Machine

GPA = 0xD000_0000
N = 500


def signals_and_exits(machine: Machine) -> tuple[dict[int, int], dict[tuple, int]]:
    got = machine.collect()
    return (
        {s.key: s.signals for s in got.signals},
        {(e.space, e.addr, e.len): e.exits for e in got.exits},
    )


@pytest.mark.parametrize(
    ("space", "addr", "length"),
    [("pio", 0x10, 1), ("pio", 0x10, 2), ("pio", 0x10, 4)]
    + [("mmio", GPA, n) for n in (1, 2, 4, 8)],
)
def test_n_writes_to_a_registered_address_give_n_signals_and_no_exits(
    machine: Machine, space: str, addr: int, length: int
) -> None:
    machine.register(7, space, addr, length, None)
    machine.ring([Ring(space, addr, length, 1, N)])
    assert signals_and_exits(machine) == ({7: N}, {})


@pytest.mark.parametrize(("space", "addr"), [("pio", 0x10), ("mmio", GPA)])
def test_n_writes_to_an_unregistered_address_give_n_exits(machine, space, addr) -> None:
    machine.register(7, space, addr + 2, 2, None)  # a neighbour does not catch them
    machine.ring([Ring(space, addr, 2, 1, N)])
    assert signals_and_exits(machine) == ({7: 0}, {(space, addr, 2): N})


def test_datamatch_hit_signals_and_miss_exits(machine: Machine) -> None:
    machine.register(1, "pio", 0x10, 2, 0x5)
    machine.register(2, "mmio", GPA, 8, 0x1122_3344_5566_7788)
    machine.ring(
        [
            Ring("pio", 0x10, 2, 0x5, 10),
            Ring("pio", 0x10, 2, 0x6, 3),
            Ring("mmio", GPA, 8, 0x1122_3344_5566_7788, 11),
            Ring("mmio", GPA, 8, 0x1122_3344_5566_7789, 4),
        ]
    )
    misses = {("pio", 0x10, 2): 3, ("mmio", GPA, 8): 4}
    assert signals_and_exits(machine) == ({1: 10, 2: 11}, misses)


def test_write_wider_than_the_registration_exits_and_len_0_catches_any(machine) -> None:
    machine.register(1, "pio", 0x10, 2, None)
    machine.register(2, "mmio", GPA, 0, None)
    machine.ring(
        [
            Ring("pio", 0x10, 4, 1, 6),
            Ring("pio", 0x10, 1, 1, 2),
            Ring("pio", 0x10, 2, 1, 5),
            *[Ring("mmio", GPA, n, 1, 3) for n in (1, 2, 4, 8)],
        ]
    )
    assert signals_and_exits(machine) == ({1: 5, 2: 12}, {("pio", 0x10, 4): 6, ("pio", 0x10, 1): 2})


def test_pio_and_mmio_at_the_same_number_are_independent(guest_vm) -> None:
    """Port 0x300 and GPA 0x300 are different doorbells: each bus has its own ioeventfds."""
    pio, mmio = (os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2))
    try:
        guest_vm.vm.register_ioevent(pio, Pio(0x300), 4)
        guest_vm.vm.register_ioevent(mmio, Mmio(0x300), 4)
        exits = ExitCounter()
        write_table(guest_vm.mem, [Ring("pio", 0x300, 4, 1, 5), Ring("pio", 0x301, 4, 1, 2)])
        PassRunner(guest_vm.vcpu, exits).run_pass()
        assert os.eventfd_read(pio) == 5
        with pytest.raises(BlockingIOError):  # nothing signalled on the MMIO side
            os.eventfd_read(mmio)
        assert exits.swap() == {("pio", 0x301, 4): 2}
    finally:
        os.close(pio)
        os.close(mmio)


def test_pio_and_mmio_registrations_ring_separately(machine: Machine) -> None:
    machine.register(1, "pio", 0xD000, 4, None)
    machine.register(2, "mmio", GPA, 4, None)
    machine.ring([Ring("pio", 0xD000, 4, 1, 5), Ring("mmio", GPA, 4, 1, 8)])
    assert signals_and_exits(machine) == ({1: 5, 2: 8}, {})


def test_deregistration_turns_signals_back_into_exits(machine: Machine) -> None:
    machine.register(3, "mmio", GPA, 4, None)
    machine.ring([Ring("mmio", GPA, 4, 1, 20)])
    machine.unregister(3)
    machine.ring([Ring("mmio", GPA, 4, 1, 30)])
    # The final count survives unregister and arrives in the next collect, once.
    assert signals_and_exits(machine) == ({3: 20}, {("mmio", GPA, 4): 30})
    assert signals_and_exits(machine) == ({}, {})
    assert machine.registered() == set()


def test_every_registered_key_gets_a_sample_each_collect(machine: Machine) -> None:
    for key in (1, 2, 3):
        machine.register(key, "pio", 0x20 + key, 1, None)
    assert signals_and_exits(machine) == ({1: 0, 2: 0, 3: 0}, {})


def test_info_start_and_close(kvm_path: str) -> None:
    m = Machine(kvm_path)
    assert m.state == "stopped" and m.collect() == ([], [], [])
    with pytest.raises(RuntimeError, match="not started"):
        m.register(1, "pio", 0x10, 1, None)
    m.start()
    assert m.state == "running" and m.error is None
    info = m.info()
    assert info["api_version"] == 12 and info["capabilities"]["KVM_CAP_IOEVENTFD"] > 0
    assert info["host"] and info["kernel"]
    m.register(1, "pio", 0x10, 1, None)
    m.close()
    m.close()  # idempotent
    assert m.state == "stopped" and m.registered() == set()


@pytest.mark.parametrize("registered", [True, False])
def test_close_kicks_the_vcpu_out_of_a_long_pass(kvm_path: str, registered: bool) -> None:
    """close() must not wait for the guest: a signal makes KVM_RUN return at once."""
    m = Machine(kvm_path)
    m.start()
    if registered:
        m.register(1, "mmio", GPA, 4, None)
    outcome: list[BaseException] = []

    def endless() -> None:
        try:
            m.ring([Ring("mmio", GPA, 4, 1, 10**10)], timeout=600)  # hours of writes
        except BaseException as e:
            outcome.append(e)

    ringer = threading.Thread(target=endless)
    ringer.start()
    time.sleep(0.3)  # let the pass get going
    m.close()
    ringer.join(60)
    assert not ringer.is_alive()
    assert m.state == "stopped" and m.error is None
    assert len(outcome) == 1 and "stopped before the pass finished" in str(outcome[0])
