"""The kernel's ioeventfd rules: the app checks them before storing a request, the worker's
registry before every KVM_IOEVENTFD.

The rules mirror virt/kvm/eventfd.c (kvm_assign_ioeventfd_idx, ioeventfd_check_collision) plus
the worker's stricter checks that make a registration able to fire at all (PIO is 16-bit and at
most 4 bytes wide; a datamatch wider than the access can never match).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

U64_MAX = (1 << 64) - 1
PIO_MAX = 0xFFFF
VALID_LENS = (0, 1, 2, 4, 8)
WRITE_LENS = (1, 2, 4, 8)


def parse_u64(value: int | str, name: str) -> int:
    """An int, or a "0x..." / decimal string, checked to fit in an unsigned 64-bit value."""
    if isinstance(value, bool):
        raise ValueError(f'{name} must be an integer or a "0x..." string')
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            number = int(text, 16) if text.startswith("0x") else int(text, 10)
        except ValueError:
            raise ValueError(f'{name} must be an integer or a "0x..." string') from None
    else:
        number = int(value)
    if not 0 <= number <= U64_MAX:
        raise ValueError(f"{name} must be between 0 and 0xffffffffffffffff")
    return number


def registration_problem(space: str, addr: int, len_: int, datamatch: int | None) -> str | None:
    """The first rule a registration breaks, as a sentence, or None if it is acceptable."""
    if space not in ("pio", "mmio"):
        return f"space must be 'pio' or 'mmio', not {space!r}"
    if len_ not in VALID_LENS:
        return "len must be one of 0, 1, 2, 4, 8"
    if len_ == 0 and datamatch is not None:
        return "len 0 (any width) cannot be combined with datamatch"
    if not 0 <= addr <= U64_MAX:
        return "addr must be between 0 and 0xffffffffffffffff"
    if addr + len_ > U64_MAX + 1:
        return "addr + len must not wrap past the end of the address space"
    if space == "pio" and addr > PIO_MAX:
        return "PIO addr must be at most 0xffff"
    if space == "pio" and len_ == 8:
        return "PIO len 8 is impossible: port writes are at most 4 bytes"
    if datamatch is not None and len_ and not 0 <= datamatch < 1 << (8 * len_):
        return f"datamatch 0x{datamatch:x} is wider than len {len_} bytes"
    return None


def doorbell_problem(space: str, addr: int, len_: int, value: int) -> str | None:
    """The first rule a workload doorbell (a guest write) breaks, or None."""
    if len_ not in WRITE_LENS:
        return "doorbell len must be one of 1, 2, 4, 8"
    problem = registration_problem(space, addr, len_, None)
    if problem:
        return problem
    if value >> (8 * len_):
        return f"value 0x{value:x} is wider than len {len_} bytes"
    return None


class RegistrationLike(Protocol):
    """What the collision rule reads from a registration."""

    space: str
    addr: int
    len: int
    datamatch: int | None


R = TypeVar("R", bound=RegistrationLike)


def collides(a: RegistrationLike, b: RegistrationLike) -> bool:
    """The kernel's ioeventfd_check_collision: would registering `b` beside `a` give EEXIST."""
    if a.space != b.space or a.addr != b.addr:
        return False
    if a.len == 0 or b.len == 0:
        return True
    if a.len != b.len:
        return False
    return a.datamatch is None or b.datamatch is None or a.datamatch == b.datamatch


def first_collision(new: RegistrationLike, existing: Iterable[R]) -> R | None:
    """The first of `existing` that `new` collides with, or None."""
    return next((old for old in existing if collides(old, new)), None)


# Workload limits: the guest is paced by the worker, and each exit costs the host ~8 us of a core.
MAX_DOORBELLS = 16
MAX_DOORBELL_RATE_HZ = 100_000.0
MAX_TOTAL_RATE_HZ = 200_000.0
