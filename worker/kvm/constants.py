"""KVM ioctl numbers and flags, built once from the kernel's _IO/_IOR/_IOW encoding.

Grouped by the file descriptor they apply to; each comment names the capability it needs
(none = part of the stable API version 12).
"""

from __future__ import annotations

import ctypes

from worker.kvm import structs as s

# asm-generic/ioctl.h: nr 8 bits, type 8 bits, size 14 bits, dir 2 bits.
_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2
KVMIO = 0xAE


def _IOC(direction: int, nr: int, size: int) -> int:
    return (
        (direction << _IOC_DIRSHIFT)
        | (KVMIO << _IOC_TYPESHIFT)
        | (nr << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def _IO(nr: int) -> int:
    return _IOC(_IOC_NONE, nr, 0)


def _IOR(nr: int, ctype: type) -> int:
    return _IOC(_IOC_READ, nr, ctypes.sizeof(ctype))


def _IOW(nr: int, ctype: type) -> int:
    return _IOC(_IOC_WRITE, nr, ctypes.sizeof(ctype))


KVM_API_VERSION = 12

# --- /dev/kvm (system) ---
KVM_GET_API_VERSION = _IO(0x00)
KVM_CREATE_VM = _IO(0x01)
KVM_CHECK_EXTENSION = _IO(0x03)
KVM_GET_VCPU_MMAP_SIZE = _IO(0x04)

# --- VM fd ---
KVM_CREATE_VCPU = _IO(0x41)
KVM_SET_USER_MEMORY_REGION = _IOW(0x46, s.kvm_userspace_memory_region)  # KVM_CAP_USER_MEMORY
KVM_SET_TSS_ADDR = _IO(0x47)  # KVM_CAP_SET_TSS_ADDR (x86; a no-op on AMD)
KVM_SET_IDENTITY_MAP_ADDR = _IOW(0x48, ctypes.c_uint64)  # KVM_CAP_SET_IDENTITY_MAP_ADDR
KVM_IOEVENTFD = _IOW(0x79, s.kvm_ioeventfd)  # KVM_CAP_IOEVENTFD (len 0: _IOEVENTFD_ANY_LENGTH)
KVM_CREATE_IRQCHIP = _IO(0x60)  # KVM_CAP_IRQCHIP (before any vCPU: PIC, IOAPIC, LAPICs in kernel)
KVM_IRQ_LINE = _IOW(0x61, s.kvm_irq_level)  # KVM_CAP_IRQCHIP
KVM_IRQFD = _IOW(0x76, s.kvm_irqfd)  # KVM_CAP_IRQFD
KVM_SET_GSI_ROUTING = _IOW(0x6A, s.kvm_irq_routing)  # KVM_CAP_IRQ_ROUTING (replaces the table)

# --- vCPU fd ---
KVM_RUN = _IO(0x80)
KVM_GET_REGS = _IOR(0x81, s.kvm_regs)
KVM_SET_REGS = _IOW(0x82, s.kvm_regs)
KVM_GET_SREGS = _IOR(0x83, s.kvm_sregs)
KVM_SET_SREGS = _IOW(0x84, s.kvm_sregs)
KVM_SET_SIGNAL_MASK = _IOW(0x8B, s.kvm_signal_mask)
KVM_GET_TSC_KHZ = _IO(0xA3)  # KVM_CAP_GET_TSC_KHZ

# --- capabilities (KVM_CHECK_EXTENSION arguments) ---
CAPABILITIES = {
    "KVM_CAP_IRQCHIP": 0,
    "KVM_CAP_USER_MEMORY": 3,
    "KVM_CAP_SET_TSS_ADDR": 4,
    "KVM_CAP_IRQ_ROUTING": 25,
    "KVM_CAP_IRQFD": 32,
    "KVM_CAP_IOEVENTFD": 36,
    "KVM_CAP_SET_IDENTITY_MAP_ADDR": 37,
    "KVM_CAP_GET_TSC_KHZ": 61,
    "KVM_CAP_IOEVENTFD_NO_LENGTH": 100,
    "KVM_CAP_IOEVENTFD_ANY_LENGTH": 122,
    "KVM_CAP_SPLIT_IRQCHIP": 121,
    "KVM_CAP_IMMEDIATE_EXIT": 136,
}
KVM_CAP_USER_MEMORY = CAPABILITIES["KVM_CAP_USER_MEMORY"]
KVM_CAP_IOEVENTFD = CAPABILITIES["KVM_CAP_IOEVENTFD"]
KVM_CAP_IRQCHIP = CAPABILITIES["KVM_CAP_IRQCHIP"]
KVM_CAP_IRQFD = CAPABILITIES["KVM_CAP_IRQFD"]

# --- kvm_ioeventfd.flags (enum kvm_ioeventfd_flag_nr_*) ---
KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0
KVM_IOEVENTFD_FLAG_PIO = 1 << 1
KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2

# --- kvm_irq_routing_entry.type ---
KVM_IRQ_ROUTING_IRQCHIP = 1
KVM_IRQ_ROUTING_MSI = 2

# --- kvm_irqfd.flags ---
KVM_IRQFD_FLAG_DEASSIGN = 1 << 0

# --- kvm_run.exit_reason ---
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24
KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

EXIT_NAMES = {
    KVM_EXIT_UNKNOWN: "KVM_EXIT_UNKNOWN",
    KVM_EXIT_EXCEPTION: "KVM_EXIT_EXCEPTION",
    KVM_EXIT_IO: "KVM_EXIT_IO",
    KVM_EXIT_HLT: "KVM_EXIT_HLT",
    KVM_EXIT_MMIO: "KVM_EXIT_MMIO",
    KVM_EXIT_SHUTDOWN: "KVM_EXIT_SHUTDOWN",
    KVM_EXIT_FAIL_ENTRY: "KVM_EXIT_FAIL_ENTRY",
    KVM_EXIT_INTR: "KVM_EXIT_INTR",
    KVM_EXIT_INTERNAL_ERROR: "KVM_EXIT_INTERNAL_ERROR",
    KVM_EXIT_SYSTEM_EVENT: "KVM_EXIT_SYSTEM_EVENT",
}
