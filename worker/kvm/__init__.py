"""ctypes bindings for /dev/kvm, shaped like rust-vmm/kvm-ioctls: `Kvm`, `Vm`, `Vcpu`."""

from worker.kvm.system import Kvm, KvmUnavailable
from worker.kvm.vcpu import Vcpu
from worker.kvm.vm import Datamatch, IoEventAddress, Mmio, NoDatamatch, NoDatamatchType, Pio, Vm

__all__ = [
    "Datamatch",
    "IoEventAddress",
    "Kvm",
    "KvmUnavailable",
    "Mmio",
    "NoDatamatch",
    "NoDatamatchType",
    "Pio",
    "Vcpu",
    "Vm",
]
