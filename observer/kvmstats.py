"""KVM's own per-VM figures from debugfs (/sys/kernel/debug/kvm/PID-FD/), where it offers them.

The totals kvm_stat shows (exits, io_exits, mmio_exits, halt_exits) and each vCPU's thread id.
A kernel in lockdown refuses the stat files (EPERM) while still listing them: then the totals are
skipped, said once, and everything else goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os

from observer.discovery import VmProcess

DEBUGFS = "/sys/kernel/debug"
TOTALS = ("exits", "io_exits", "mmio_exits", "halt_exits")

log = logging.getLogger("iosignal.observer")


def ensure_debugfs(root: str = DEBUGFS) -> bool:
    """Mount debugfs at `root` unless KVM's folder is there; False if it cannot be had."""
    if os.path.isdir(os.path.join(root, "kvm")):
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount(b"nodev", root.encode(), b"debugfs", 0, None)
    return os.path.isdir(os.path.join(root, "kvm"))


class KvmDebugfs:
    """Reads a VM's debugfs folder; `unavailable` says why totals cannot be read here."""

    def __init__(self, root: str = DEBUGFS) -> None:
        self.kvm = os.path.join(root, "kvm")
        self.present = ensure_debugfs(root)
        self.unavailable: str | None = None  # why totals cannot be read, once known
        if not self.present:
            self.unavailable = f"{self.kvm} is not there (debugfs not mountable or no KVM)"

    def vm_dir(self, vm: VmProcess) -> str | None:
        """The VM's folder: PID-FD of the thread that created it (the main thread, usually)."""
        for fd in vm.vm_fds:
            path = os.path.join(self.kvm, f"{vm.pid}-{fd}")
            if os.path.isdir(path):
                return path
        with contextlib.suppress(OSError):
            for name in os.listdir(self.kvm):
                tid, _, fd_name = name.partition("-")
                if (
                    fd_name.isdigit()
                    and int(fd_name) in vm.vm_fds
                    and os.path.isdir(f"/proc/{vm.pid}/task/{tid}")
                ):
                    return os.path.join(self.kvm, name)
        return None

    def vcpu_threads(self, vm: VmProcess) -> list[int]:
        """Thread ids running the VM's vCPUs (vcpuN/pid), in vCPU order; [] if unknown."""
        path = self.vm_dir(vm) if self.present else None
        if path is None:
            return []
        tids = []
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(path)):
                if name.startswith("vcpu") and name[4:].isdigit():
                    with open(os.path.join(path, name, "pid")) as f:
                        tids.append(int(f.read()))
        return tids

    def totals(self, vm: VmProcess) -> dict[str, int] | None:
        """exits, io_exits, mmio_exits, halt_exits summed over the VM's vCPUs; None if refused."""
        if self.unavailable is not None:
            return None
        path = self.vm_dir(vm)
        if path is None:
            return None
        out = {}
        for name in TOTALS:
            try:
                with open(os.path.join(path, name)) as f:
                    out[name] = int(f.read())
            except PermissionError:
                self.unavailable = (
                    f"the kernel refuses {path}/{name} (EPERM, as under kernel lockdown); "
                    "per-VM exit totals are skipped"
                )
                log.warning("%s", self.unavailable)
                return None
            except (OSError, ValueError):
                return None  # the VM went away meanwhile
        return out
