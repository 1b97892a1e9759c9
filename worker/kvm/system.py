"""`Kvm`: the /dev/kvm system file descriptor, one method per ioctl."""

from __future__ import annotations

import errno
import fcntl
import os

from worker.kvm import constants as c
from worker.kvm.vm import Vm


class KvmUnavailable(RuntimeError):
    """/dev/kvm cannot be used; the message says what to fix."""


class Kvm:
    """The KVM system fd. `Kvm.open()` checks API version and capabilities once, at start."""

    REQUIRED = ("KVM_CAP_USER_MEMORY", "KVM_CAP_IOEVENTFD")

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls, path: str = "/dev/kvm") -> Kvm:
        """Open `path`, check API version 12 and the capabilities iosignal needs."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise KvmUnavailable(
                f"{path} does not exist: run on Linux with KVM enabled "
                "(load kvm_intel or kvm_amd; in a VM, enable nested virtualization)"
            ) from None
        except PermissionError:
            raise KvmUnavailable(
                f"{path} is not accessible: add the user to group kvm "
                f"(sudo usermod -aG kvm $USER, then log in again)"
            ) from None
        kvm = cls(fd)
        try:
            kvm._check()
        except OSError as e:
            kvm.close()
            name = errno.errorcode.get(e.errno or 0, str(e.errno))
            raise KvmUnavailable(f"{path} is not a KVM device: KVM ioctls fail with {name}") from e
        except BaseException:
            kvm.close()
            raise
        return kvm

    def _check(self) -> None:
        version = self.get_api_version()
        if version != c.KVM_API_VERSION:
            raise KvmUnavailable(f"KVM API version is {version}, iosignal needs 12")
        for name in self.REQUIRED:
            if self.check_extension(c.CAPABILITIES[name]) <= 0:
                raise KvmUnavailable(f"this kernel's KVM lacks {name}; iosignal needs it")

    def get_api_version(self) -> int:
        """KVM_GET_API_VERSION: 12 on every kernel since 2.6.22."""
        return fcntl.ioctl(self.fd, c.KVM_GET_API_VERSION, 0)

    def check_extension(self, cap: int) -> int:
        """KVM_CHECK_EXTENSION: 0 when absent, else a positive (capability-specific) value."""
        return fcntl.ioctl(self.fd, c.KVM_CHECK_EXTENSION, cap)

    def capabilities(self) -> dict[str, int]:
        """Every capability named in constants.CAPABILITIES, with its value here."""
        return {name: self.check_extension(cap) for name, cap in c.CAPABILITIES.items()}

    def get_vcpu_mmap_size(self) -> int:
        """KVM_GET_VCPU_MMAP_SIZE: bytes to mmap from a vCPU fd (kvm_run and friends)."""
        return fcntl.ioctl(self.fd, c.KVM_GET_VCPU_MMAP_SIZE, 0)

    def create_vm(self) -> Vm:
        """KVM_CREATE_VM with the default machine type."""
        while True:
            try:
                fd = fcntl.ioctl(self.fd, c.KVM_CREATE_VM, 0)
                break
            except InterruptedError:  # documented: may fail with EINTR, just retry
                continue
        return Vm(fd, self.get_vcpu_mmap_size())

    def close(self) -> None:
        """Close the system fd (idempotent)."""
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError as e:  # already closed elsewhere is fine when closing
                if e.errno != errno.EBADF:
                    raise
            self.fd = -1
