"""The doorbell guest: its image, its table, and how it fails."""

from __future__ import annotations

import struct

import pytest

from worker import guest
from worker.exits import ExitCounter, GuestFault, PassRunner
from worker.guest.boot import GuestVm
from worker.guest.table import KINDS, Ring, read_times, write_table
from worker.machine import Machine


def test_reassembling_the_source_gives_the_committed_binary(binutils: None) -> None:
    assert guest.assemble() == guest.image()


def test_page_tables_identity_map_the_low_4_gib(guest_vm: GuestVm) -> None:
    mem = guest_vm.mem
    pml4 = struct.unpack_from("<Q", mem, guest.PML4_GPA)[0]
    assert pml4 & ~0xFFF == guest.PDPT_GPA
    for gib in range(4):
        pd = struct.unpack_from("<Q", mem, guest.PDPT_GPA + gib * 8)[0] & ~0xFFF
        last = struct.unpack_from("<Q", mem, pd + 511 * 8)[0]
        assert last & ~0xFFF == (gib << 30) + (511 << 21) and last & 0x83 == 0x83  # P|RW|PS


def test_every_width_on_both_buses_reaches_the_worker(guest_vm: GuestVm) -> None:
    exits = ExitCounter()
    runner = PassRunner(guest_vm.vcpu, exits)
    rings = [
        Ring(space, 0x40 if space == "pio" else 0xFEB0_0000, length, 0xAB, 3 + i)
        for i, (space, length) in enumerate(KINDS)
    ]
    write_table(guest_vm.mem, rings)
    runner.run_pass()
    assert exits.swap() == {(r.space, r.addr, r.len): r.writes for r in rings}
    times = read_times(guest_vm.mem)
    assert times.passes == 1 and times.tsc_end > times.tsc_start > 0
    runner.run_pass()  # the guest loops back for the next pass
    assert read_times(guest_vm.mem).passes == 2


def test_mmio_just_below_4_gib_is_reachable(guest_vm: GuestVm) -> None:
    exits = ExitCounter()
    write_table(guest_vm.mem, [Ring("mmio", (4 << 30) - 8, 8, 1, 2)])
    PassRunner(guest_vm.vcpu, exits).run_pass()
    assert exits.swap() == {("mmio", (4 << 30) - 8, 8): 2}


def test_a_bad_table_entry_triple_faults_into_a_failed_machine(machine: Machine) -> None:
    with pytest.raises(GuestFault, match="KVM_EXIT_SHUTDOWN"):
        machine.ring([Ring("pio", 0x40, 8, 0, 1)])  # no such kind: the guest runs ud2
    assert machine.state == "failed"
    assert "triple fault" in (machine.error or "")
    with pytest.raises(GuestFault):
        machine.ring([Ring("pio", 0x40, 1, 0, 1)])  # a failed VM refuses more work
    machine.register(1, "pio", 0x40, 1, None)  # registrations still answer (the fd is open)
    machine.close()
    assert machine.state == "failed"


def test_guest_memory_must_hold_the_layout(kvm) -> None:
    with pytest.raises(ValueError, match="2 MiB"):
        GuestVm(kvm, mem_size=1 << 20)


def test_a_halting_guest_is_a_fault_not_a_hang(guest_vm: GuestVm) -> None:
    runner = PassRunner(guest_vm.vcpu, ExitCounter())
    write_table(guest_vm.mem, [])
    runner.run_pass()
    # hlt where the next pass starts (rdtsc; shl $32, %rdx; or %rdx, %rax; mov %rax, 8(%rbx)):
    # this VM has no irqchip, so it exits to userspace as KVM_EXIT_HLT
    pass_start = guest.image().index(bytes.fromhex("0f3148c1e2204809d048894308"))
    guest_vm.mem[guest.CODE_GPA + pass_start] = 0xF4
    with pytest.raises(GuestFault, match="KVM_EXIT_HLT"):
        runner.run_pass()
