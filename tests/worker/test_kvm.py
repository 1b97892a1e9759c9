"""The ctypes KVM layer against the real kernel headers and the real /dev/kvm."""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import shutil
import subprocess
from pathlib import Path

import pytest

from worker.kvm import Kvm, KvmUnavailable, Mmio, NoDatamatch, Pio, Vm
from worker.kvm import constants as c
from worker.kvm import structs as s
from worker.kvm.vm import ioeventfd_struct, irqchip_route, msi_route

# Sizes from <linux/kvm.h> / <asm/kvm.h> on x86-64.
SIZES = {
    "kvm_ioeventfd": 64,
    "kvm_userspace_memory_region": 32,
    "kvm_regs": 144,
    "kvm_segment": 24,
    "kvm_dtable": 16,
    "kvm_sregs": 312,
    "kvm_run": 2352,
    "kvm_signal_mask": 4,
    "kvm_irq_level": 8,
    "kvm_irqfd": 32,
    "kvm_irq_routing": 8,
    "kvm_irq_routing_entry": 48,
}
IOCTLS = [
    *("KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_CHECK_EXTENSION", "KVM_GET_VCPU_MMAP_SIZE"),
    *("KVM_CREATE_VCPU", "KVM_SET_USER_MEMORY_REGION", "KVM_SET_TSS_ADDR", "KVM_IOEVENTFD"),
    *("KVM_SET_IDENTITY_MAP_ADDR", "KVM_RUN", "KVM_GET_REGS", "KVM_SET_REGS", "KVM_GET_SREGS"),
    *("KVM_SET_SREGS", "KVM_GET_TSC_KHZ", "KVM_SET_SIGNAL_MASK"),
    *("KVM_CREATE_IRQCHIP", "KVM_IRQ_LINE", "KVM_IRQFD", "KVM_IRQFD_FLAG_DEASSIGN"),
    *("KVM_SET_GSI_ROUTING", "KVM_IRQ_ROUTING_IRQCHIP", "KVM_IRQ_ROUTING_MSI"),
    *(f"KVM_CAP_{cap}" for cap in ("IRQCHIP", "IRQ_ROUTING", "IRQFD", "SPLIT_IRQCHIP")),
]
OFFSETS = [
    ("kvm_run", "exit_reason"),
    ("kvm_run", "kvm_valid_regs"),
    ("kvm_ioeventfd", "fd"),
    ("kvm_ioeventfd", "flags"),
    ("kvm_sregs", "gdt"),
    ("kvm_sregs", "efer"),
    ("kvm_sregs", "interrupt_bitmap"),
    ("kvm_irq_level", "level"),
    ("kvm_irqfd", "flags"),
    ("kvm_irqfd", "resamplefd"),
    ("kvm_irq_routing_entry", "u"),
]
# Members reached through anonymous C unions and structs: (C expression, the ctypes offset).
NESTED_OFFSETS = [
    ("offsetof(struct kvm_run, io)", s.kvm_run.exit.offset),  # any member of the exit union
    (
        "offsetof(struct kvm_irq_routing_entry, u.msi.data)",
        s.kvm_irq_routing_entry.u.offset + s.kvm_irq_routing_msi.data.offset,
    ),
]


@pytest.mark.parametrize("name", SIZES)
def test_struct_sizes_match_the_kernel_headers(name: str) -> None:
    assert ctypes.sizeof(getattr(s, name)) == SIZES[name]


def _header_values(tmp_path: Path, exprs: list[str]) -> list[int]:
    """Compile a C program that prints `exprs` using the installed kernel headers."""
    if shutil.which("cc") is None or not Path("/usr/include/linux/kvm.h").exists():
        pytest.skip("needs a C compiler and linux-libc-dev headers")
    body = "".join(f'printf("%llu\\n", (unsigned long long)({e}));\n' for e in exprs)
    src = tmp_path / "h.c"
    src.write_text(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/kvm.h>\n"
        f"int main(void) {{\n{body}return 0;\n}}\n"
    )
    subprocess.run(["cc", "-o", str(tmp_path / "h"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "h")], check=True, capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def test_sizes_offsets_and_ioctl_numbers_match_a_c_compiler(tmp_path: Path) -> None:
    exprs = [f"sizeof(struct {n})" for n in SIZES]
    exprs += [f"offsetof(struct {st}, {f})" for st, f in OFFSETS]
    exprs += [expr for expr, _ in NESTED_OFFSETS]
    exprs += IOCTLS
    want = [SIZES[n] for n in SIZES]
    want += [getattr(getattr(s, st), f).offset for st, f in OFFSETS]
    want += [offset for _, offset in NESTED_OFFSETS]
    want += [getattr(c, name, c.CAPABILITIES.get(name)) for name in IOCTLS]
    assert _header_values(tmp_path, exprs) == want


def test_kvm_open_checks_version_and_capabilities(kvm: Kvm) -> None:
    assert kvm.get_api_version() == 12
    caps = kvm.capabilities()
    assert caps["KVM_CAP_IOEVENTFD"] > 0 and caps["KVM_CAP_USER_MEMORY"] > 0
    assert kvm.get_vcpu_mmap_size() >= ctypes.sizeof(s.kvm_run)
    assert kvm.check_extension(0xFFFF) == 0  # an unknown capability is absent, not an error


def test_missing_device_says_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KvmUnavailable, match=r"does not exist.*KVM"):
        Kvm.open(str(tmp_path / "kvm"))


def test_a_device_that_is_not_kvm_is_refused() -> None:
    with pytest.raises(KvmUnavailable, match="/dev/null is not a KVM device") as info:
        Kvm.open("/dev/null")
    assert info.value.__cause__.errno in (errno.ENOTTY, errno.EINVAL)


def test_flags_follow_from_the_argument_types() -> None:
    pio = ioeventfd_struct(5, Pio(0x10), 2, 7)
    assert (pio.flags, pio.addr, pio.datamatch, pio.len, pio.fd) == (
        c.KVM_IOEVENTFD_FLAG_PIO | c.KVM_IOEVENTFD_FLAG_DATAMATCH,
        0x10,
        7,
        2,
        5,
    )
    mmio = ioeventfd_struct(5, Mmio(0xD000_0000), 0, NoDatamatch, deassign=True)
    assert mmio.flags == c.KVM_IOEVENTFD_FLAG_DEASSIGN
    assert (mmio.addr, mmio.datamatch) == (0xD000_0000, 0)


def test_faulty_vm_fd_raises_ebadf_on_every_call() -> None:
    bad = Vm(resource.getrlimit(resource.RLIMIT_NOFILE)[0] + 10, 4096)  # cannot be open
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    calls = [
        lambda: bad.check_extension(c.KVM_CAP_IOEVENTFD),
        lambda: bad.set_user_memory_region(0, 0, 0x1000, 0),
        lambda: bad.set_tss_addr(0xFFFBD000),
        lambda: bad.set_identity_map_addr(0xFFFBC000),
        lambda: bad.create_vcpu(0),
        lambda: bad.register_ioevent(efd, Pio(0x10), 1),
        lambda: bad.unregister_ioevent(efd, Mmio(0xD000_0000), 0),
        lambda: bad.create_irq_chip(),
        lambda: bad.set_irq_line(16, True),
        lambda: bad.register_irqfd(efd, 16),
        lambda: bad.unregister_irqfd(efd, 16),
        lambda: bad.set_gsi_routing([msi_route(24, 0xFEE0_0000, 0x40)]),
    ]
    try:
        for call in calls:
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == errno.EBADF
    finally:
        os.close(efd)


def test_vcpu_starts_in_long_mode_and_reports_tsc(guest_vm) -> None:
    vcpu = guest_vm.vcpu
    sregs = vcpu.get_sregs()
    assert sregs.efer & (1 << 10) and sregs.cs.l == 1  # EFER.LMA and a 64-bit code segment
    regs = vcpu.get_regs()
    assert regs.rip == 0x8000 and regs.rbx == 0x10000
    assert vcpu.get_tsc_khz() > 0


def test_irqchip_lines_and_irqfds_keep_the_kernels_errno(kvm: Kvm) -> None:
    vm = kvm.create_vm()
    efd = os.eventfd(0, os.EFD_CLOEXEC)
    try:
        assert vm.check_extension(c.KVM_CAP_IRQCHIP) > 0 and vm.check_extension(c.KVM_CAP_IRQFD) > 0
        with pytest.raises(OSError) as no_chip:
            vm.set_irq_line(16, True)  # no interrupt controller to drive yet
        assert no_chip.value.errno == errno.ENXIO
        with pytest.raises(OSError) as no_chip:
            vm.register_irqfd(efd, 16)
        assert no_chip.value.errno == errno.EINVAL
        vm.create_irq_chip()
        with pytest.raises(OSError) as twice:
            vm.create_irq_chip()
        assert twice.value.errno == errno.EEXIST
        vm.set_irq_line(16, True)
        vm.set_irq_line(16, False)
        vm.register_irqfd(efd, 16)
        with pytest.raises(OSError) as busy:
            vm.register_irqfd(efd, 16)  # one eventfd, one irqfd
        assert busy.value.errno == errno.EBUSY
        vm.unregister_irqfd(efd, 16)
        vm.register_irqfd(efd, 16)  # deassigned: the eventfd is free again
    finally:
        vm.close()
        os.close(efd)


def test_gsi_routing_takes_msi_and_irqchip_routes_and_refuses_a_bad_one(kvm: Kvm) -> None:
    vm = kvm.create_vm()
    try:
        vm.create_irq_chip()
        vm.set_gsi_routing([msi_route(24, 0xFEE0_0000, 0x40), irqchip_route(5, 2, 5)])
        vm.set_irq_line(24, True)  # an MSI now: raising the GSI sends the message
        bad = irqchip_route(5, 7, 5)  # there is no irqchip 7
        with pytest.raises(OSError) as info:
            vm.set_gsi_routing([bad])
        assert info.value.errno == errno.EINVAL
        vm.set_gsi_routing([msi_route(gsi, 0xFEE0_0000, 0x40) for gsi in range(64)])  # > 1 KiB
    finally:
        vm.close()
