"""The exit loop: `Vcpu.run()` says why KVM_RUN returned, its views hold the exit, and the
PassRunner counts every userspace write exactly."""

from __future__ import annotations

import signal
import threading

import pytest

from contract.guest import CONTROL_PORT
from worker.exits import ExitCounter, GuestFault, PassRunner
from worker.guest.boot import GuestVm
from worker.guest.table import Ring, write_table
from worker.kvm import constants as c
from worker.machine import Machine
from worker.vcpu_loop import KICK_SIGNAL


def test_run_returns_the_exit_reason_and_the_views_decode_each_write(guest_vm: GuestVm) -> None:
    vcpu = guest_vm.vcpu
    assert vcpu is not None
    io, mmio = vcpu.io, vcpu.mmio  # built once; each exit is read through the same views
    write_table(guest_vm.mem, [Ring("pio", 0x1234, 2, 7, 1), Ring("mmio", 0xD000_0010, 4, 9, 1)])
    assert vcpu.run() == c.KVM_EXIT_IO
    assert (io.direction, io.port, io.size, io.count) == (c.KVM_EXIT_IO_OUT, 0x1234, 2, 1)
    data = vcpu.run_buf[io.data_offset : io.data_offset + 2]
    assert int.from_bytes(data, "little") == 7
    assert vcpu.run() == c.KVM_EXIT_MMIO
    assert (mmio.phys_addr, mmio.len, mmio.is_write) == (0xD000_0010, 4, 1)
    assert int.from_bytes(bytes(mmio.data[:4]), "little") == 9
    assert vcpu.run() == c.KVM_EXIT_IO and io.port == CONTROL_PORT  # the guest's "pass done"


GPA = 0xD000_0000


def test_runs_of_one_write_are_counted_exactly_across_changes_of_width_and_address(
    guest_vm: GuestVm,
) -> None:
    # The loop counts a run of identical exits locally: every change must end the run.
    rings = [
        Ring("pio", 0x6000, 2, 1, 5),
        Ring("pio", 0x6000, 4, 1, 3),
        Ring("pio", 0x6001, 4, 1, 1),
        Ring("pio", 0x6000, 2, 9, 2),  # a different value is the same doorbell
        Ring("mmio", GPA, 4, 1, 4),
        Ring("mmio", GPA + 8, 4, 1, 1),
        Ring("mmio", GPA, 8, 1, 2),
        Ring("mmio", GPA, 4, 1, 6),
    ]
    exits = ExitCounter()
    write_table(guest_vm.mem, rings)
    PassRunner(guest_vm.vcpu, exits).run_pass()
    assert exits.swap() == {
        ("pio", 0x6000, 2): 7,
        ("pio", 0x6000, 4): 3,
        ("pio", 0x6001, 4): 1,
        ("mmio", GPA, 4): 10,
        ("mmio", GPA + 8, 4): 1,
        ("mmio", GPA, 8): 2,
    }


def test_a_pass_that_faults_still_counts_the_writes_before_the_fault(guest_vm: GuestVm) -> None:
    exits = ExitCounter()
    write_table(guest_vm.mem, [Ring("pio", 0x40, 1, 0, 3), Ring("pio", 0x40, 8, 0, 1)])
    with pytest.raises(GuestFault, match="KVM_EXIT_SHUTDOWN"):  # no such kind: ud2
        PassRunner(guest_vm.vcpu, exits).run_pass()
    assert exits.swap() == {("pio", 0x40, 1): 3}


def test_kicks_during_a_pass_neither_lose_nor_add_exits(machine: Machine) -> None:
    # Each kick ends a KVM_RUN in the middle of a run of identical exits; the run goes on.
    thread = machine._thread
    assert thread is not None
    done = threading.Event()

    def kick() -> None:
        while not done.wait(0.002):
            signal.pthread_kill(thread._thread.ident or 0, KICK_SIGNAL)

    kicker = threading.Thread(target=kick)
    kicker.start()
    try:
        for _ in range(3):
            machine.ring([Ring("pio", 0x6000, 4, 1, 20_000), Ring("mmio", GPA, 4, 1, 5_000)])
    finally:
        done.set()
        kicker.join()
    exits = machine.collect().exits
    assert {(e.space, e.addr, e.len): e.exits for e in exits} == {
        ("pio", 0x6000, 4): 60_000,
        ("mmio", GPA, 4): 15_000,
    }
