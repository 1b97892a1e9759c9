"""The exit loop's input: `Vcpu.run()` says why KVM_RUN returned; its views hold the exit."""

from __future__ import annotations

from contract.guest import CONTROL_PORT
from worker.guest.boot import GuestVm
from worker.guest.table import Ring, write_table
from worker.kvm import constants as c


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
