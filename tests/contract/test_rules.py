"""The one rules module: what the guest can ring, and what GET /api/rules tells the browser."""

from __future__ import annotations

import pytest

from contract import rules
from contract.guest import CONTROL_PORT, DEFAULT_MEM_SIZE
from contract.rules import doorbell_problem


@pytest.mark.parametrize(
    ("space", "addr", "length", "value", "rule"),
    [
        ("pio", 0x10, 8, 0, "len must be one of 1, 2, 4"),
        ("mmio", 0xD000_0000, 0, 0, "len must be one of 1, 2, 4, 8"),
        ("pio", 0x10000, 1, 0, "at most 0xffff"),
        ("pio", CONTROL_PORT, 1, 0, "pass-done"),
        ("mmio", 0x1000, 4, 0, "outside guest RAM"),
        ("mmio", 4 << 30, 4, 0, "below 4 GiB"),
        ("pio", 0x10, 1, 0x100, "wider than len 1"),
        ("bus", 0x10, 1, 0, "'pio' or 'mmio'"),
        ("pio", 0x20, 1, 0, "in-kernel interrupt controller"),  # the PIC
        ("pio", 0x4CF, 2, 0, "in-kernel interrupt controller"),  # reaches the ELCR's first port
        ("mmio", 0xFEC0_0010, 4, 0, "in-kernel interrupt controller"),  # the IOAPIC
        ("mmio", 0xFEE0_00B0, 4, 0, "in-kernel interrupt controller"),  # the LAPIC
    ],
)
def test_writes_the_guest_cannot_do_are_refused(space, addr, length, value, rule) -> None:
    assert rule in (doorbell_problem(space, addr, length, value, DEFAULT_MEM_SIZE) or "")


def test_around_the_irqchip_doorbells_are_fine() -> None:
    assert doorbell_problem("pio", 0x22, 1, 0) is None
    assert doorbell_problem("mmio", 0xFEC0_0100, 4, 0) is None
    assert doorbell_problem("mmio", 0xFEE0_1000, 4, 0) is None


def test_an_answered_doorbell_waits_for_each_answer_so_its_rate_is_lower() -> None:
    assert rules.rate_problem(rules.MAX_ANSWERED_RATE_HZ, True) is None
    assert rules.rate_problem(rules.MAX_ANSWERED_RATE_HZ + 1) is None  # not answered: fine
    problem = rules.rate_problem(rules.MAX_ANSWERED_RATE_HZ + 1, True)
    assert "answered doorbell's rate_hz must be at most 10000" in (problem or "")
    assert "answered must be true or false" in (rules.rate_problem(1.0, "yes") or "")
    assert rules.as_dict()["max_answered_rate_hz"] == rules.MAX_ANSWERED_RATE_HZ


def test_workload_limits_count_and_total_rate() -> None:
    assert rules.MAX_DOORBELLS == 2046  # the guest table's capacity
    assert rules.workload_problem([1.0] * rules.MAX_DOORBELLS) is None
    too_many = rules.workload_problem([1.0] * (rules.MAX_DOORBELLS + 1))
    assert f"at most {rules.MAX_DOORBELLS} doorbells" in too_many
    assert "add up to at most" in rules.workload_problem([90_000.0] * 3)
    assert rules.rate_problem(0.0) is None  # silent: the pacer drops it
    assert "rate_hz" in rules.rate_problem(rules.MAX_DOORBELL_RATE_HZ + 1)
    assert "rate_hz" in rules.rate_problem(float("nan"))


def test_the_collision_sentence_names_both_and_the_errno() -> None:
    new = rules.describe("pio", 0x6000, 4, None)
    sentence = rules.collision_sentence(new, "registration 3")
    assert sentence.startswith("pio 0x6000 len 4 datamatch any collides with registration 3")
    assert sentence.endswith("EEXIST")
    assert rules.errno_name(17) == "EEXIST" and rules.errno_name(None) == "EIO"
