"""Every rule and limit of iosignal in one place: the kernel's ioeventfd rules, the guest's
doorbell rules and the workload limits. The app checks them before storing a request, the worker
before every KVM_IOEVENTFD and every workload, and the browser reads them from `GET /api/rules`.

The registration rules mirror virt/kvm/eventfd.c (kvm_assign_ioeventfd_idx,
ioeventfd_check_collision) plus stricter checks that make a registration able to fire at all (PIO
is 16-bit and at most 4 bytes wide; a datamatch wider than the access can never match).
"""

from __future__ import annotations

import errno
import math
from typing import Any, NamedTuple, Protocol

from contract.guest import (
    CONTROL_PORT,
    DEFAULT_MEM_SIZE,
    MAPPED_LIMIT,
    TABLE_ENTRIES,
    WRITE_WIDTHS,
)

U64_MAX = (1 << 64) - 1
PIO_MAX = 0xFFFF
SPACES = ("pio", "mmio")
VALID_LENS = (0, 1, 2, 4, 8)
WRITE_LENS = (1, 2, 4, 8)


# Workload limits: as many doorbells as the guest's table holds; the rates because each exit costs
# the host ~8 us of a core.
MAX_DOORBELLS = TABLE_ENTRIES
# A doorbell at rate 0 is silent: it stays in the workload (an answered one keeps its device and
# its ioeventfd) while the pacer rings it never, so a person can pause a row without losing it.
MIN_DOORBELL_RATE_HZ = 0.0
MAX_DOORBELL_RATE_HZ = 100_000.0
MAX_TOTAL_RATE_HZ = 200_000.0
# An answered doorbell's write waits for the device's interrupt (a round trip of ~40 us here),
# so at most this many a second leave the guest time for the rest of its workload.
MAX_ANSWERED_RATE_HZ = 10_000.0

# The live VM has KVM's in-kernel irqchip (an answered doorbell's interrupts need it): its PIC
# and IOAPIC handle these writes in the kernel, so a doorbell there would never reach a VMM.
IRQCHIP_PORTS = ((0x20, 0x21), (0xA0, 0xA1), (0x4D0, 0x4D1))  # PIC master, slave, ELCR
IRQCHIP_MMIO = ((0xFEC0_0000, 0xFEC0_00FF), (0xFEE0_0000, 0xFEE0_0FFF))  # IOAPIC, LAPIC

# The registrations a new one must not collide with: those the kernel holds or is about to hold
# (pending: not yet applied; removing: not yet deassigned). Failed and removed ones hold nothing.
LIVE_STATES = ("pending", "active", "removing")
COLLISION_RULE = (
    "same space and address, and a width of 0 on either side or the same width with "
    "a wildcard or equal datamatch"
)


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
    if space not in SPACES:
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
        return "PIO len 8 is impossible: a port write's len must be one of 1, 2, 4"
    if datamatch is not None and len_ and not 0 <= datamatch < 1 << (8 * len_):
        return f"datamatch 0x{datamatch:x} is wider than len {len_} bytes"
    return None


def guest_problem(space: str, addr: int, ram_size: int) -> str | None:
    """The rule an address breaks on iosignal's own guest (its control port, its RAM), or None."""
    if space == "pio" and addr == CONTROL_PORT:
        return f"PIO port {CONTROL_PORT:#x} is the guest's pass-done port, kept by iosignal"
    if space == "mmio" and addr < ram_size:
        return (
            f"MMIO addr {addr:#x} is inside guest RAM [0, {ram_size:#x}): writes there never "
            "exit, so it can never fire"
        )
    return None


def doorbell_problem(
    space: str, addr: int, len_: int, value: int, mem_size: int = DEFAULT_MEM_SIZE
) -> str | None:
    """The first rule a workload doorbell (a write the guest performs) breaks, or None."""
    if space not in SPACES:
        return f"space must be 'pio' or 'mmio', not {space!r}"
    if len_ not in WRITE_LENS:
        return "doorbell len must be one of 1, 2, 4, 8"
    problem = registration_problem(space, addr, len_, None)
    if problem:
        return problem
    if value >> (8 * len_):
        return f"value 0x{value:x} is wider than len {len_} bytes"
    irqchip = IRQCHIP_PORTS if space == "pio" else IRQCHIP_MMIO
    for first, last in irqchip:
        if addr <= last and addr + len_ - 1 >= first:
            return (
                f"{space.upper()} {first:#x}-{last:#x} belongs to KVM's in-kernel interrupt "
                "controller: writes there never reach a doorbell"
            )
    if space == "pio":
        return guest_problem(space, addr, 0)
    if addr < mem_size or addr + len_ > MAPPED_LIMIT:
        return (
            f"MMIO address must be outside guest RAM [0, {mem_size:#x}) and below 4 GiB "
            f"(got {addr:#x})"
        )
    return None


def number(value: float) -> str:
    """A rate as the browser's `String(number)` writes it (250, 0.5), so both say the same."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def rate_problem(rate_hz: float, answered: object = False) -> str | None:
    """The rule a doorbell's rate (MIN_DOORBELL_RATE_HZ: silent) or its `answered` flag breaks."""
    if not isinstance(answered, bool):
        return f"answered must be true or false (got {answered!r})"
    if not (math.isfinite(rate_hz) and MIN_DOORBELL_RATE_HZ <= rate_hz <= MAX_DOORBELL_RATE_HZ):
        return (
            f"rate_hz must be between {number(MIN_DOORBELL_RATE_HZ)} and "
            f"{number(MAX_DOORBELL_RATE_HZ)} (got {number(rate_hz)})"
        )
    if answered and rate_hz > MAX_ANSWERED_RATE_HZ:
        return (
            f"an answered doorbell's rate_hz must be at most {number(MAX_ANSWERED_RATE_HZ)}: each "
            f"write waits for the device's interrupt (got {number(rate_hz)})"
        )
    return None


def workload_problem(rates: list[float]) -> str | None:
    """The rule a whole workload (its doorbells' rates) breaks, or None."""
    if len(rates) > MAX_DOORBELLS:
        return f"a workload has at most {MAX_DOORBELLS} doorbells (got {len(rates)})"
    if sum(rates) > MAX_TOTAL_RATE_HZ:
        return f"the doorbells' rate_hz must add up to at most {number(MAX_TOTAL_RATE_HZ)}"
    return None


class RegistrationLike(Protocol):
    """What the collision rule reads from a registration (read-only: a NamedTuple will do)."""

    @property
    def space(self) -> str: ...
    @property
    def addr(self) -> int: ...
    @property
    def len(self) -> int: ...
    @property
    def datamatch(self) -> int | None: ...


def collides(a: RegistrationLike, b: RegistrationLike) -> bool:
    """The kernel's ioeventfd_check_collision: would registering `b` beside `a` give EEXIST.

    The app asks the same question in SQL (`app.api.registrations.owned.collision_clause`),
    tested against this function over every pair of a grid of registrations.
    """
    if a.space != b.space or a.addr != b.addr:
        return False
    if a.len == 0 or b.len == 0:
        return True
    if a.len != b.len:
        return False
    return a.datamatch is None or b.datamatch is None or a.datamatch == b.datamatch


def covers(
    reg: RegistrationLike, space: str, addr: int, len_: int, value: int | None = None
) -> bool:
    """The kernel's ioeventfd_in_range: does a write of `len_` bytes at space/addr signal `reg`
    instead of exiting. `value` None asks whether some value would (the datamatch unchecked).

    Width 0 takes a write of any width and value; otherwise the width must be equal, and a
    datamatch must equal the value written.
    """
    if reg.space != space or reg.addr != addr:
        return False
    if reg.len == 0:
        return True
    if reg.len != len_:
        return False
    return value is None or reg.datamatch is None or reg.datamatch == value


def _hexes(values: list[int]) -> str:
    return " or ".join(f"0x{v:x}" for v in sorted(set(values)))


class Miss(NamedTuple):
    """Which of the kernel's match rules a write broke (datamatch, width, space), as a sentence."""

    rule: str
    text: str


def why_exits(
    regs: list[RegistrationLike], space: str, addr: int, len_: int, values: list[int]
) -> Miss | None:
    """Why writes to space/addr of `len_` bytes (of `values`, those seen exiting) still exit
    although `regs` are registered at that address, by the kernel's rules; None when a
    registration takes every one of them (the rules do not explain the exits)."""
    near = [r for r in regs if r.addr == addr]
    written: list[int | None] = list(values) or [None]  # unknown values: does any match
    if any(all(covers(r, space, addr, len_, v) for v in written) for r in near):
        return None
    same_width = [r for r in near if r.space == space and r.len == len_]
    if same_width:
        wrote = f"guest wrote {_hexes(values)}" if values else "the values it wrote are unknown"
        matches = [r.datamatch for r in same_width if r.datamatch is not None]
        return Miss("datamatch", f"datamatch {_hexes(matches)}, {wrote}")
    same_space = [r for r in near if r.space == space]
    if same_space:
        widths = " or ".join(str(w) for w in sorted({r.len for r in same_space}))
        return Miss("width", f"registered len {widths}, guest writes len {len_}")
    if near:
        return Miss("space", f"registered on {near[0].space} 0x{addr:x}, guest writes {space}")
    return None


def describe(space: str, addr: int, len_: int, datamatch: int | None) -> str:
    """`pio 0x6000 len 4 datamatch any`: how a person names a registration."""
    match = "any" if datamatch is None else f"0x{datamatch:x}"
    return f"{space} 0x{addr:x} len {len_} datamatch {match}"


def collision_sentence(new: str, old: str) -> str:
    """Why the kernel refuses `new` beside `old` (both as `describe` names them)."""
    return f"{new} collides with {old}: {COLLISION_RULE}; the kernel refuses this with EEXIST"


def errno_name(code: int | None) -> str:
    """The kernel's name for an errno, e.g. "EEXIST" (EIO when there is none)."""
    return errno.errorcode.get(code or 0, "EIO")


def as_dict() -> dict[str, Any]:
    """Every rule's numbers, for `GET /api/rules` (the browser checks forms with them)."""
    return {
        "spaces": list(SPACES),
        "registration_lens": list(VALID_LENS),
        "write_lens": {space: list(lens) for space, lens in WRITE_WIDTHS.items()},
        "pio_max": PIO_MAX,
        "u64_max": str(U64_MAX),
        "control_port": CONTROL_PORT,
        "default_mem_size": DEFAULT_MEM_SIZE,
        "mapped_limit": MAPPED_LIMIT,
        "max_doorbells": MAX_DOORBELLS,
        "min_doorbell_rate_hz": MIN_DOORBELL_RATE_HZ,
        "max_doorbell_rate_hz": MAX_DOORBELL_RATE_HZ,
        "max_total_rate_hz": MAX_TOTAL_RATE_HZ,
        "max_answered_rate_hz": MAX_ANSWERED_RATE_HZ,
        "irqchip": {
            "pio": [list(r) for r in IRQCHIP_PORTS],
            "mmio": [list(r) for r in IRQCHIP_MMIO],
        },
        "collision_rule": COLLISION_RULE,
        "live_states": list(LIVE_STATES),
    }
