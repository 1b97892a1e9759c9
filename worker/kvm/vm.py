"""`Vm`: a KVM VM file descriptor, one method per ioctl, plus typed ioeventfd arguments."""

from __future__ import annotations

import ctypes
import fcntl
import os
from dataclasses import dataclass

from worker.kvm import constants as c
from worker.kvm import structs as s
from worker.kvm.vcpu import Vcpu

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Pio:
    """A port I/O address (like kvm-ioctls `IoEventAddress::Pio`)."""

    port: int


@dataclass(frozen=True)
class Mmio:
    """A guest-physical MMIO address (like kvm-ioctls `IoEventAddress::Mmio`)."""

    gpa: int


class NoDatamatchType:
    """The type of `NoDatamatch`: any written value matches (wildcard)."""

    _instance: NoDatamatchType | None = None

    def __new__(cls) -> NoDatamatchType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NoDatamatch"


NoDatamatch = NoDatamatchType()
IoEventAddress = Pio | Mmio
Datamatch = int | NoDatamatchType


def ioeventfd_struct(
    fd: int, addr: IoEventAddress, length: int, datamatch: Datamatch, deassign: bool = False
) -> s.kvm_ioeventfd:
    """Build the kvm_ioeventfd for these typed arguments; the flags follow from the types."""
    flags = c.KVM_IOEVENTFD_FLAG_DEASSIGN if deassign else 0
    if isinstance(addr, Pio):
        flags |= c.KVM_IOEVENTFD_FLAG_PIO
        raw_addr = addr.port
    else:
        raw_addr = addr.gpa
    value = 0
    if not isinstance(datamatch, NoDatamatchType):
        flags |= c.KVM_IOEVENTFD_FLAG_DATAMATCH
        value = datamatch
    return s.kvm_ioeventfd(datamatch=value, addr=raw_addr, len=length, fd=fd, flags=flags)


def msi_route(gsi: int, address: int, data: int) -> s.kvm_irq_routing_entry:
    """A routing entry: GSI `gsi` writes the message `data` to `address` (an MSI)."""
    entry = s.kvm_irq_routing_entry(gsi=gsi, type=c.KVM_IRQ_ROUTING_MSI)
    entry.u.msi.address_lo, entry.u.msi.address_hi = address & 0xFFFFFFFF, address >> 32
    entry.u.msi.data = data
    return entry


def irqchip_route(gsi: int, irqchip: int, pin: int) -> s.kvm_irq_routing_entry:
    """A routing entry: GSI `gsi` drives `pin` of interrupt controller `irqchip`."""
    entry = s.kvm_irq_routing_entry(gsi=gsi, type=c.KVM_IRQ_ROUTING_IRQCHIP)
    entry.u.irqchip.irqchip, entry.u.irqchip.pin = irqchip, pin
    return entry


class Vm:
    """A VM fd from `Kvm.create_vm`; errors are OSError with the kernel's errno."""

    def __init__(self, fd: int, vcpu_mmap_size: int) -> None:
        self.fd = fd
        self.vcpu_mmap_size = vcpu_mmap_size

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION on the VM fd (answers for this VM's type)."""
        return fcntl.ioctl(self.fd, c.KVM_CHECK_EXTENSION, cap)

    def set_user_memory_region(
        self, slot: int, guest_phys_addr: int, memory_size: int, userspace_addr: int, flags: int = 0
    ) -> None:
        """KVM_SET_USER_MEMORY_REGION: back guest RAM at `guest_phys_addr` with host memory."""
        region = s.kvm_userspace_memory_region(
            slot=slot,
            flags=flags,
            guest_phys_addr=guest_phys_addr,
            memory_size=memory_size,
            userspace_addr=userspace_addr,
        )
        fcntl.ioctl(self.fd, c.KVM_SET_USER_MEMORY_REGION, region)

    def set_tss_addr(self, addr: int) -> None:
        """KVM_SET_TSS_ADDR: 3 pages Intel VMX needs for real-mode emulation (AMD ignores)."""
        # The address is the unsigned long argument itself; fcntl.ioctl only passes a C int.
        if _libc.ioctl(self.fd, ctypes.c_ulong(c.KVM_SET_TSS_ADDR), ctypes.c_ulong(addr)) < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def set_identity_map_addr(self, addr: int) -> None:
        """KVM_SET_IDENTITY_MAP_ADDR: the page VMX uses for its unpaged-mode identity map."""
        fcntl.ioctl(self.fd, c.KVM_SET_IDENTITY_MAP_ADDR, ctypes.c_uint64(addr))

    def create_vcpu(self, vcpu_id: int) -> Vcpu:
        """KVM_CREATE_VCPU, with kvm_run mmap'ed."""
        fd = fcntl.ioctl(self.fd, c.KVM_CREATE_VCPU, vcpu_id)
        try:
            return Vcpu(fd, self.vcpu_mmap_size)
        except BaseException:
            os.close(fd)
            raise

    def register_ioevent(
        self, fd: int, addr: IoEventAddress, length: int, datamatch: Datamatch = NoDatamatch
    ) -> None:
        """KVM_IOEVENTFD assign: guest writes matching addr/len/datamatch signal eventfd `fd`."""
        fcntl.ioctl(self.fd, c.KVM_IOEVENTFD, ioeventfd_struct(fd, addr, length, datamatch))

    def unregister_ioevent(
        self, fd: int, addr: IoEventAddress, length: int, datamatch: Datamatch = NoDatamatch
    ) -> None:
        """KVM_IOEVENTFD deassign: the identical struct plus the DEASSIGN flag."""
        request = ioeventfd_struct(fd, addr, length, datamatch, deassign=True)
        fcntl.ioctl(self.fd, c.KVM_IOEVENTFD, request)

    def create_irq_chip(self) -> None:
        """KVM_CREATE_IRQCHIP: PIC, IOAPIC and a LAPIC per vCPU in the kernel; before any vCPU."""
        fcntl.ioctl(self.fd, c.KVM_CREATE_IRQCHIP, 0)

    def set_irq_line(self, irq: int, active: bool) -> None:
        """KVM_IRQ_LINE: drive GSI `irq` high or low (an edge needs both, as a device would)."""
        fcntl.ioctl(self.fd, c.KVM_IRQ_LINE, s.kvm_irq_level(irq=irq, level=int(active)))

    def set_gsi_routing(self, entries: list[s.kvm_irq_routing_entry]) -> None:
        """KVM_SET_GSI_ROUTING: `entries` become the VM's whole GSI routing table."""
        header = s.kvm_irq_routing(nr=len(entries))
        table = (s.kvm_irq_routing_entry * len(entries))(*entries)
        fcntl.ioctl(self.fd, c.KVM_SET_GSI_ROUTING, bytearray(header) + bytearray(table))

    def register_irqfd(self, fd: int, gsi: int) -> None:
        """KVM_IRQFD assign: each write to eventfd `fd` injects GSI `gsi` (an edge) in-kernel."""
        fcntl.ioctl(self.fd, c.KVM_IRQFD, s.kvm_irqfd(fd=fd, gsi=gsi))

    def unregister_irqfd(self, fd: int, gsi: int) -> None:
        """KVM_IRQFD deassign: the same fd and gsi plus the DEASSIGN flag."""
        request = s.kvm_irqfd(fd=fd, gsi=gsi, flags=c.KVM_IRQFD_FLAG_DEASSIGN)
        fcntl.ioctl(self.fd, c.KVM_IRQFD, request)

    def close(self) -> None:
        """Close the VM fd (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
