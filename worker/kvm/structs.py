"""ctypes mirrors of the kernel structs in <linux/kvm.h> and <asm/kvm.h> (x86-64).

Field names and order follow the headers exactly; tests compare every sizeof and offset with the
real headers when a C compiler is present.
"""

from __future__ import annotations

import ctypes

u8, u16, u32, u64, s32 = (
    ctypes.c_uint8,
    ctypes.c_uint16,
    ctypes.c_uint32,
    ctypes.c_uint64,
    ctypes.c_int32,
)


class kvm_userspace_memory_region(ctypes.Structure):
    """Maps host memory into the guest's physical address space (32 bytes)."""

    _fields_ = [
        ("slot", u32),
        ("flags", u32),
        ("guest_phys_addr", u64),
        ("memory_size", u64),
        ("userspace_addr", u64),
    ]


class kvm_ioeventfd(ctypes.Structure):
    """One KVM_IOEVENTFD assignment or deassignment (64 bytes)."""

    _fields_ = [
        ("datamatch", u64),
        ("addr", u64),
        ("len", u32),
        ("fd", s32),
        ("flags", u32),
        ("pad", u8 * 36),
    ]


class kvm_irq_level(ctypes.Structure):
    """KVM_IRQ_LINE's argument: drive GSI `irq` to `level` (8 bytes; irq shares a union)."""

    _fields_ = [("irq", u32), ("level", u32)]


class kvm_irqfd(ctypes.Structure):
    """One KVM_IRQFD assignment or deassignment: eventfd `fd` injects GSI `gsi` (32 bytes)."""

    _fields_ = [
        ("fd", u32),
        ("gsi", u32),
        ("flags", u32),
        ("resamplefd", u32),
        ("pad", u8 * 16),
    ]


class kvm_irq_routing_irqchip(ctypes.Structure):
    """A route to an interrupt controller pin (irqchip 0/1: PIC master/slave, 2: IOAPIC)."""

    _fields_ = [("irqchip", u32), ("pin", u32)]


class kvm_irq_routing_msi(ctypes.Structure):
    """A route to a message-signalled interrupt: the address/data pair a device would write."""

    _fields_ = [("address_lo", u32), ("address_hi", u32), ("data", u32), ("devid", u32)]


class kvm_irq_routing_entry_u(ctypes.Union):
    """The route union of kvm_irq_routing_entry, padded to 32 bytes as in the header."""

    _fields_ = [
        ("irqchip", kvm_irq_routing_irqchip),
        ("msi", kvm_irq_routing_msi),
        ("pad", u32 * 8),
    ]


class kvm_irq_routing_entry(ctypes.Structure):
    """One GSI's route in KVM_SET_GSI_ROUTING (48 bytes)."""

    _fields_ = [
        ("gsi", u32),
        ("type", u32),
        ("flags", u32),
        ("pad", u32),
        ("u", kvm_irq_routing_entry_u),
    ]


class kvm_irq_routing(ctypes.Structure):
    """Header of KVM_SET_GSI_ROUTING's argument; `nr` kvm_irq_routing_entry follow (8 bytes)."""

    _fields_ = [("nr", u32), ("flags", u32)]


class kvm_regs(ctypes.Structure):
    """General purpose registers (144 bytes)."""

    _fields_ = [
        (name, u64)
        for name in (
            *("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp"),
            *("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"),
            *("rip", "rflags"),
        )
    ]


class kvm_segment(ctypes.Structure):
    """A segment register as KVM sees it (24 bytes)."""

    _fields_ = [
        ("base", u64),
        ("limit", u32),
        ("selector", u16),
        ("type", u8),
        ("present", u8),
        ("dpl", u8),
        ("db", u8),
        ("s", u8),
        ("l", u8),
        ("g", u8),
        ("avl", u8),
        ("unusable", u8),
        ("padding", u8),
    ]


class kvm_dtable(ctypes.Structure):
    """A descriptor table register, GDTR or IDTR (16 bytes)."""

    _fields_ = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


class kvm_sregs(ctypes.Structure):
    """Special registers: segments, control registers, EFER (312 bytes)."""

    _fields_ = [
        *[(name, kvm_segment) for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")],
        ("gdt", kvm_dtable),
        ("idt", kvm_dtable),
        *[(name, u64) for name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")],
        ("interrupt_bitmap", u64 * 4),  # (KVM_NR_INTERRUPTS + 63) / 64
    ]


class kvm_signal_mask(ctypes.Structure):
    """Header of KVM_SET_SIGNAL_MASK's argument; `len` bytes of sigset follow (4 bytes)."""

    _fields_ = [("len", u32)]


class kvm_run_io(ctypes.Structure):
    """kvm_run.io: a port I/O exit; the data lives at data_offset inside kvm_run."""

    _fields_ = [
        ("direction", u8),
        ("size", u8),
        ("port", u16),
        ("count", u32),
        ("data_offset", u64),
    ]


class kvm_run_mmio(ctypes.Structure):
    """kvm_run.mmio: a memory-mapped I/O exit."""

    _fields_ = [("phys_addr", u64), ("data", u8 * 8), ("len", u32), ("is_write", u8)]


class kvm_run_fail_entry(ctypes.Structure):
    """kvm_run.fail_entry: the hardware refused VM entry."""

    _fields_ = [("hardware_entry_failure_reason", u64), ("cpu", u32)]


class kvm_run_internal(ctypes.Structure):
    """kvm_run.internal: KVM could not handle an exit (e.g. emulation failure)."""

    _fields_ = [("suberror", u32), ("ndata", u32), ("data", u64 * 16)]


class kvm_run_exit(ctypes.Union):
    """The exit-reason union of kvm_run, padded to 256 bytes as in the header."""

    _fields_ = [
        ("hardware_exit_reason", u64),  # hw
        ("fail_entry", kvm_run_fail_entry),
        ("io", kvm_run_io),
        ("mmio", kvm_run_mmio),
        ("internal", kvm_run_internal),
        ("padding", ctypes.c_char * 256),
    ]


class kvm_run(ctypes.Structure):
    """The vCPU's shared page, mmap'ed from the vCPU fd (2352 bytes of header + sync regs)."""

    _anonymous_ = ("exit",)
    _fields_ = [
        ("request_interrupt_window", u8),
        ("immediate_exit", u8),
        ("padding1", u8 * 6),
        ("exit_reason", u32),
        ("ready_for_interrupt_injection", u8),
        ("if_flag", u8),
        ("flags", u16),
        ("cr8", u64),
        ("apic_base", u64),
        ("exit", kvm_run_exit),
        ("kvm_valid_regs", u64),
        ("kvm_dirty_regs", u64),
        ("s", ctypes.c_char * 2048),  # SYNC_REGS_SIZE_BYTES
    ]
