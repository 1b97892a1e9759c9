"""Registration rules: the kernel's errno for each, and the stricter rules before the kernel."""

from __future__ import annotations

import errno
import os

import pytest

from worker.guest.table import Ring
from worker.kvm import Mmio, NoDatamatch, Pio, Vm
from worker.machine import Machine
from worker.registry import AlreadyRegistered, RegistrationError

GPA = 0xD000_0000
W = None  # wildcard

# (first, second, collides): each is (space, addr, len, datamatch). Mirrors the kernel's
# ioeventfd_check_collision: same bus and address, and len 0 on either side, or the same len
# with a wildcard on either side or an equal datamatch.
COLLISIONS = [
    (("mmio", GPA, 0, W), ("mmio", GPA, 4, W), True),
    (("mmio", GPA, 4, 7), ("mmio", GPA, 0, W), True),
    (("pio", 0x10, 0, W), ("pio", 0x10, 1, 3), True),
    (("pio", 0x10, 2, W), ("pio", 0x10, 2, 5), True),
    (("pio", 0x10, 2, 5), ("pio", 0x10, 2, W), True),
    (("mmio", GPA, 8, 9), ("mmio", GPA, 8, 9), True),
    (("pio", 0x10, 2, W), ("pio", 0x10, 2, W), True),
    (("mmio", GPA, 4, 1), ("mmio", GPA, 4, 2), False),  # different datamatch
    (("mmio", GPA, 4, W), ("mmio", GPA, 2, W), False),  # different len, neither 0
    (("mmio", GPA, 4, W), ("mmio", GPA + 4, 4, W), False),  # different address
    (("pio", 0xFFFF, 0, W), ("mmio", GPA + 0xFFFF, 0, W), False),  # different bus
    (("pio", 0x10, 1, 1), ("pio", 0x10, 4, 1), False),
]


@pytest.mark.parametrize(("first", "second", "collides"), COLLISIONS)
def test_collisions_follow_the_kernel(machine: Machine, first, second, collides) -> None:
    machine.register(1, *first)
    if not collides:
        machine.register(2, *second)
        assert machine.registered() == {1, 2}
        return
    with pytest.raises(RegistrationError) as info:
        machine.register(2, *second)
    assert info.value.errno == errno.EEXIST
    assert errno.errorcode[info.value.errno] == "EEXIST"
    assert "registration 1" in str(info.value)  # names the registration in the way
    assert machine.registered() == {1}


def _bare_eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


def test_kernel_errnos_on_the_raw_vm(guest_vm) -> None:
    """The kernel itself (no policy above it) says EEXIST, ENOENT and EINVAL."""
    vm: Vm = guest_vm.vm
    a, b = _bare_eventfd(), _bare_eventfd()
    try:
        vm.register_ioevent(a, Pio(0x10), 2, 5)
        cases = [
            (lambda: vm.register_ioevent(b, Pio(0x10), 2), errno.EEXIST),
            (lambda: vm.unregister_ioevent(a, Pio(0x10), 2), errno.ENOENT),  # not identical
            (lambda: vm.unregister_ioevent(b, Pio(0x10), 2, 5), errno.ENOENT),  # other eventfd
            (lambda: vm.register_ioevent(b, Mmio(GPA), 3), errno.EINVAL),  # bad len
            (lambda: vm.register_ioevent(b, Mmio(GPA), 0, 1), errno.EINVAL),  # len 0 + datamatch
        ]
        for call, code in cases:
            with pytest.raises(OSError) as info:
                call()
            assert info.value.errno == code
        vm.unregister_ioevent(a, Pio(0x10), 2, 5)  # the identical struct deassigns
        vm.register_ioevent(b, Pio(0x10), 2, NoDatamatch)  # and frees the address
        vm.register_ioevent(a, Mmio(0x10), 2, NoDatamatch)  # same number, other bus: no EEXIST
    finally:
        os.close(a)
        os.close(b)


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        (("pio", 0x10, 3, None), "len must be one of 0, 1, 2, 4, 8"),
        (("mmio", GPA, 0, 1), "len 0"),
        (("pio", 0x10000, 1, None), "at most 0xffff"),
        (("pio", 0x10, 8, None), "PIO len 8 is impossible"),
        (("mmio", GPA, 1, 0x100), "wider than len 1"),
        (("pio", 0x10, 2, 0x10000), "wider than len 2"),
        (("pio", 0xF4, 1, None), "pass-done port"),
        (("mmio", (1 << 64) - 2, 4, None), "must not wrap"),
        (("disk", 0x10, 1, None), "'pio' or 'mmio'"),
        (("mmio", 0x1000, 4, None), "inside guest RAM"),
        (("mmio", 0x1F_FFFF, 0, None), "inside guest RAM"),
    ],
)
def test_stricter_rules_refuse_with_einval_and_name_the_rule(machine, args, rule) -> None:
    with pytest.raises(RegistrationError, match=rule) as info:
        machine.register(1, *args)
    assert info.value.errno == errno.EINVAL
    assert machine.registered() == set()


def test_largest_fitting_datamatch_and_high_mmio_are_accepted(machine: Machine) -> None:
    machine.register(1, "mmio", GPA, 8, (1 << 64) - 1)
    machine.register(2, "pio", 0xFFFF, 4, 0xFFFF_FFFF)
    machine.register(3, "mmio", 1 << 40, 4, None)  # beyond 4 GiB: valid for the kernel
    assert machine.registered() == {1, 2, 3}


def test_unregister_unknown_is_enoent_and_reusing_a_key_is_valueerror(machine) -> None:
    with pytest.raises(RegistrationError) as info:
        machine.unregister(42)
    assert info.value.errno == errno.ENOENT
    machine.register(42, "pio", 0x10, 1, None)
    with pytest.raises(ValueError, match="already registered"):
        machine.register(42, "pio", 0x20, 1, None)
    machine.unregister(42)
    with pytest.raises(RegistrationError) as again:
        machine.unregister(42)
    assert again.value.errno == errno.ENOENT


def test_reusing_a_key_is_already_registered_and_changes_nothing(machine: Machine) -> None:
    machine.register(9, "pio", 0x10, 1, None)
    with pytest.raises(AlreadyRegistered) as info:
        machine.register(9, "mmio", GPA, 4, None)
    assert info.value.key == 9 and machine.registered() == {9}
    machine.ring([Ring("pio", 0x10, 1, 1, 3), Ring("mmio", GPA, 4, 1, 2)])
    got = machine.collect()
    assert [(s.key, s.signals) for s in got.signals] == [(9, 3)]
    assert [(e.space, e.exits) for e in got.exits] == [("mmio", 2)]


def test_a_refused_registration_leaks_no_eventfd(machine: Machine) -> None:
    before = len(os.listdir("/proc/self/fd"))
    machine.register(1, "pio", 0x10, 0, None)
    for key in range(2, 12):
        with pytest.raises(RegistrationError):
            machine.register(key, "pio", 0x10, 1, None)
    machine.unregister(1)
    assert len(os.listdir("/proc/self/fd")) == before


def test_unregister_frees_the_address_for_a_new_registration(machine: Machine) -> None:
    machine.register(1, "mmio", GPA, 0, None)
    machine.unregister(1)
    machine.register(2, "mmio", GPA, 4, 1)
    assert machine.registered() == {2}
