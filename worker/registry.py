"""The ioeventfd registry: one eventfd per registration, the kernel's errno kept.

Rules stricter than the kernel (it accepts these, but they can never fire) are refused before
the ioctl with EINVAL and a message naming the rule. Unregistering re-issues the identical
struct with DEASSIGN; the eventfd is then read one last time and closed, so the final count is
kept for the next drain and no later signal can be attributed to the registration.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from typing import NamedTuple

from contract import rules
from worker.kvm import Mmio, NoDatamatch, Pio, Vm


class RegistrationError(OSError):
    """A registration or unregistration refused by the kernel or a stricter rule.

    `.errno` is the kernel's errno (errno.errorcode[e.errno] gives e.g. "EEXIST").
    """

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(code or errno.EIO, message)

    def __str__(self) -> str:
        return f"{rules.errno_name(self.errno)}: {self.strerror}"


class AlreadyRegistered(ValueError):
    """The key is assigned already: a replay (e.g. its verdict was lost), not a new request."""

    def __init__(self, key: int) -> None:
        super().__init__(f"registration {key} is already registered")
        self.key = key


class Registration(NamedTuple):
    """A live registration and its eventfd."""

    key: int
    space: str
    addr: int
    len: int
    datamatch: int | None
    efd: int

    def describe(self) -> str:
        """e.g. "pio 0x10 len 2 datamatch 0x5" for messages."""
        return rules.describe(self.space, self.addr, self.len, self.datamatch)

    def collides(self, other: Registration) -> bool:
        """The kernel's ioeventfd_check_collision, for naming the registration in the way."""
        return rules.collides(self, other)


class Drained(NamedTuple):
    """Counts read from every eventfd per live key, plus the leftovers of removed keys."""

    live: dict[int, int]
    removed: dict[int, int]


def check_rules(
    space: str, addr: int, length: int, datamatch: int | None, ram_size: int = 0
) -> None:
    """Refuse what the kernel would reject or accept uselessly, before calling it (EINVAL).

    The rules are contract.rules': the kernel's, plus the guest's pass-done port and guest RAM
    at [0, ram_size), where writes never exit, so an MMIO registration there could never fire.
    """
    problem = rules.registration_problem(space, addr, length, datamatch) or rules.guest_problem(
        space, addr, ram_size
    )
    if problem is not None:
        raise RegistrationError(errno.EINVAL, problem)


class Registry:
    """What is registered with the kernel, by key; thread-safe."""

    def __init__(self, vm: Vm, ram_size: int = 0) -> None:
        self.vm = vm
        self.ram_size = ram_size
        self._lock = threading.Lock()
        self._regs: dict[int, Registration] = {}
        self._removed: dict[int, int] = {}

    @staticmethod
    def _kvm_args(reg: Registration) -> tuple:
        addr = Pio(reg.addr) if reg.space == "pio" else Mmio(reg.addr)
        match = NoDatamatch if reg.datamatch is None else reg.datamatch
        return reg.efd, addr, reg.len, match

    def register(
        self, key: int, space: str, addr: int, length: int, datamatch: int | None
    ) -> Registration:
        """Assign an ioeventfd; RegistrationError (errno kept) if refused, AlreadyRegistered."""
        check_rules(space, addr, length, datamatch, self.ram_size)
        with self._lock:
            if key in self._regs:
                raise AlreadyRegistered(key)
            efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            reg = Registration(key, space, addr, length, datamatch, efd)
            try:
                self.vm.register_ioevent(*self._kvm_args(reg))
            except OSError as e:
                os.close(efd)
                raise RegistrationError(e.errno, self._explain(e.errno, reg)) from None
            self._regs[key] = reg  # a leftover of an earlier life of `key` stays for drain
            return reg

    def _explain(self, code: int | None, reg: Registration) -> str:
        if code == errno.EEXIST:
            other = next((r for r in self._regs.values() if r.collides(reg)), None)
            # No registration in the way: on the live VM only an answered doorbell's device
            # holds other ioeventfds.
            who = (
                f"registration {other.key} ({other.describe()})"
                if other
                else "an ioeventfd that is no registration (an answered doorbell's device)"
            )
            return rules.collision_sentence(reg.describe(), who)
        return f"the kernel refused {reg.describe()}: {os.strerror(code or errno.EIO)}"

    def unregister(self, key: int) -> None:
        """Deassign; the final count is kept for the next drain. ENOENT if key is unknown."""
        with self._lock:
            reg = self._regs.get(key)
            if reg is None:
                raise RegistrationError(errno.ENOENT, f"registration {key} is not registered")
            try:
                self.vm.unregister_ioevent(*self._kvm_args(reg))
            except OSError as e:
                raise RegistrationError(e.errno, self._explain(e.errno, reg)) from None
            # DEASSIGN waited for in-flight guest writes (SRCU), so this read is the last.
            count = _read_eventfd(reg.efd)
            os.close(reg.efd)
            del self._regs[key]
            self._removed[key] = self._removed.get(key, 0) + count

    def keys(self) -> set[int]:
        """Keys registered now."""
        with self._lock:
            return set(self._regs)

    def get(self, key: int) -> Registration | None:
        """The live registration for `key`, if any."""
        with self._lock:
            return self._regs.get(key)

    def drain(self) -> Drained:
        """Read (and reset) every eventfd counter; hand over the leftovers of removed keys."""
        with self._lock:
            live = {key: _read_eventfd(r.efd) for key, r in self._regs.items()}
            removed, self._removed = self._removed, {}
        return Drained(live, removed)

    def close(self) -> None:
        """Deassign everything (best effort: the VM may be going away) and close eventfds."""
        with self._lock:
            for reg in self._regs.values():
                # Best effort: closing the VM fd releases the assignment anyway.
                with contextlib.suppress(OSError):
                    self.vm.unregister_ioevent(*self._kvm_args(reg))
                os.close(reg.efd)
            self._regs.clear()


def _read_eventfd(fd: int) -> int:
    """The counter's value, reset to 0; EAGAIN (nothing signalled) is 0."""
    try:
        return os.eventfd_read(fd)
    except BlockingIOError:
        return 0
