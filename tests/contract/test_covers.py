"""contract.rules.covers (the kernel's ioeventfd_in_range) and why_exits (which rule a write
beside a registration misses)."""

from __future__ import annotations

from typing import NamedTuple

from contract.rules import covers, why_exits


class Reg(NamedTuple):
    space: str
    addr: int
    len: int
    datamatch: int | None


def test_covers_follows_the_kernels_match_rules():
    assert covers(Reg("pio", 0x510, 4, 1), "pio", 0x510, 4, 1)
    assert not covers(Reg("pio", 0x510, 4, 1), "pio", 0x510, 4, 0)  # datamatch differs
    assert covers(Reg("pio", 0x510, 4, 1), "pio", 0x510, 4)  # some value would match
    assert not covers(Reg("pio", 0x510, 4, None), "pio", 0x510, 2, 0)  # width differs
    assert covers(Reg("pio", 0x510, 0, None), "pio", 0x510, 2, 7)  # width 0: any width, value
    assert not covers(Reg("mmio", 0x510, 4, None), "pio", 0x510, 4, 0)  # space differs
    assert not covers(Reg("pio", 0x511, 4, None), "pio", 0x510, 4, 0)


def test_why_exits_names_the_rule_or_nothing_when_a_registration_takes_every_write():
    assert why_exits([Reg("pio", 0x510, 4, 1)], "pio", 0x510, 4, [0, 2]).text == (
        "datamatch 0x1, guest wrote 0x0 or 0x2"
    )
    assert why_exits([Reg("pio", 0x510, 4, None)], "pio", 0x510, 2, [0]).rule == "width"
    space = why_exits([Reg("mmio", 0x510, 4, None)], "pio", 0x510, 4, [0])
    assert space is not None and space.text == "registered on mmio 0x510, guest writes pio"
    assert why_exits([Reg("pio", 0x510, 4, None)], "pio", 0x510, 4, [0]) is None
    assert why_exits([], "pio", 0x510, 4, [0]) is None
