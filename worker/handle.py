"""`MachineHandle`: what the worker's control side needs of a VM (`worker.machine.Machine`).

The reconciler, the control thread, `serve` and the load benchmark take this protocol, not the
class: they depend on what a VM does, and a test can hand them any object that does it.
"""

from __future__ import annotations

from typing import Any, Protocol

from contract.models import VmState
from worker.sampler import Collected
from worker.workload import Doorbell


class MachineHandle(Protocol):
    """A started VM: its state, its ioeventfd registrations, its workload and its counters."""

    @property
    def state(self) -> VmState:
        """RUNNING, STOPPED or FAILED."""
        ...

    @property
    def error(self) -> str | None:
        """Why the VM failed, once it has."""
        ...

    def info(self) -> dict[str, Any]:
        """Host, kernel and KVM facts for the VM's row."""
        ...

    def register(self, key: int, space: str, addr: int, length: int, datamatch: int | None) -> None:
        """Assign an ioeventfd: RegistrationError with the errno, or AlreadyRegistered."""
        ...

    def unregister(self, key: int) -> None:
        """Deassign `key` (RegistrationError ENOENT if unknown)."""
        ...

    def registered(self) -> set[int]:
        """Keys assigned in the kernel now."""
        ...

    def set_workload(self, doorbells: list[Doorbell]) -> None:
        """Replace what the guest rings (ValueError names the rule a doorbell breaks)."""
        ...

    def collect(self) -> Collected:
        """Signals per registration and exits per address since the previous collect."""
        ...
