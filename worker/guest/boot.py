"""`GuestVm`: a VM with guest RAM, a guest image and one vCPU in 64-bit long mode."""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import struct

from worker import guest
from worker.kvm import Kvm, Vcpu, Vm

# Paging and mode bits (Intel SDM vol. 3, 2.5 and 4.5).
PTE_P, PTE_RW, PTE_PS = 1 << 0, 1 << 1, 1 << 7
CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_AM, CR0_PG = (
    1 << 0,
    1 << 1,
    1 << 4,
    1 << 5,
    1 << 16,
    1 << 18,
    1 << 31,
)
CR4_PAE = 1 << 5
EFER_LME, EFER_LMA = 1 << 8, 1 << 10


def build_page_tables(mem: memoryview) -> None:
    """Identity-map [0, 4 GiB) with 2 MiB pages: PML4[0] -> PDPT[0..3] -> 4 PDs.

    2 MiB rather than 1 GiB pages: KVM's software page walker (used when it emulates an MMIO
    instruction) treats a 1 GiB page as reserved unless the guest CPUID advertises pdpe1gb.
    """
    struct.pack_into("<Q", mem, guest.PML4_GPA, guest.PDPT_GPA | PTE_P | PTE_RW)
    for gib in range(4):
        pd = guest.PD_GPA + gib * 0x1000
        struct.pack_into("<Q", mem, guest.PDPT_GPA + gib * 8, pd | PTE_P | PTE_RW)
        entries = [((gib << 30) + (i << 21)) | PTE_P | PTE_RW | PTE_PS for i in range(512)]
        struct.pack_into("<512Q", mem, pd, *entries)


def enter_long_mode(vcpu: Vcpu, mem_size: int) -> None:
    """Set the vCPU straight into 64-bit mode at the guest's entry point."""
    sregs = vcpu.get_sregs()
    sregs.cr3 = guest.PML4_GPA
    sregs.cr4 = CR4_PAE
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG
    sregs.efer = EFER_LME | EFER_LMA
    for name, selector, seg_type in (
        ("cs", 1 << 3, 11),  # execute/read, accessed
        ("ds", 2 << 3, 3),  # read/write, accessed
        ("es", 2 << 3, 3),
        ("fs", 2 << 3, 3),
        ("gs", 2 << 3, 3),
        ("ss", 2 << 3, 3),
    ):
        seg = getattr(sregs, name)
        seg.base, seg.limit, seg.selector, seg.type = 0, 0xFFFFFFFF, selector, seg_type
        seg.present, seg.dpl, seg.s, seg.g = 1, 0, 1, 1
        seg.l, seg.db = (1, 0) if name == "cs" else (0, 1)
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    regs.rip, regs.rflags, regs.rsp = guest.CODE_GPA, 0x2, mem_size
    regs.rbx, regs.r15 = guest.TABLE_GPA, guest.CONTROL_PORT  # the guest's two inputs
    vcpu.set_regs(regs)


class GuestVm:
    """A fresh VM running a guest image (doorbell.bin unless `code` is given); `mem` is guest RAM
    as a writable memoryview. `irqchip` creates the in-kernel PIC, IOAPIC and LAPIC first."""

    def __init__(
        self,
        kvm: Kvm,
        mem_size: int = guest.DEFAULT_MEM_SIZE,
        *,
        code: bytes | None = None,
        irqchip: bool = False,
    ) -> None:
        if mem_size < guest.TABLE_END or mem_size % (2 << 20):
            raise ValueError("mem_size must be a multiple of 2 MiB")
        self.mem_size = mem_size
        self.vm: Vm = kvm.create_vm()
        self._ram: mmap.mmap | None = mmap.mmap(-1, mem_size, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        self._pin = ctypes.c_char.from_buffer(self._ram)  # gives the host address
        self.vcpu: Vcpu | None = None
        try:
            self.vm.set_user_memory_region(0, 0, mem_size, ctypes.addressof(self._pin))
            self.mem = memoryview(self._ram)
            code = guest.image() if code is None else code
            self.mem[guest.CODE_GPA : guest.CODE_GPA + len(code)] = code
            build_page_tables(self.mem)
            if irqchip:
                self.vm.create_irq_chip()  # only before the first vCPU
            self.vcpu = self.vm.create_vcpu(0)
            enter_long_mode(self.vcpu, mem_size)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close vCPU and VM fds, free guest RAM (idempotent)."""
        if self.vcpu is not None:
            self.vcpu.close()
            self.vcpu = None
        self.vm.close()
        if self._ram is not None:
            if hasattr(self, "mem"):
                self.mem.release()
            del self._pin
            # A caller may still hold a view: the memory then goes when the last view does.
            with contextlib.suppress(BufferError):
                self._ram.close()
            self._ram = None
