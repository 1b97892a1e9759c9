"""The shared rule cases (tests/rules_cases.json) through contract/rules.py: the browser's
checks (static/js/validate.js) run the same table in tests/e2e/test_rules_cases_in_page.py, so the
two give each case the same verdict, word for word."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from contract import rules
from contract.guest import DEFAULT_MEM_SIZE

CASES = json.loads((Path(__file__).parents[1] / "rules_cases.json").read_text())


class Reg(NamedTuple):
    space: str
    addr: int
    len: int
    datamatch: int | None


def registration_verdict(case: dict[str, Any]) -> str | None:
    """What the app says of a registration form beside `existing`: the first rule it breaks."""
    form = case["form"]
    try:
        addr = rules.parse_u64(form["addr"], "addr")
        raw = form["datamatch"]
        datamatch = None if raw is None else rules.parse_u64(raw, "datamatch")
    except ValueError as e:
        return str(e)
    new = Reg(form["space"], addr, form["len"], datamatch)
    problem = rules.registration_problem(*new) or rules.guest_problem(
        new.space, addr, case.get("mem_size") or DEFAULT_MEM_SIZE
    )
    if problem:
        return problem
    for old in case.get("existing", []):
        held = Reg(old["space"], old["addr"], old["len"], old["datamatch"])
        if old["state"] in rules.LIVE_STATES and rules.collides(held, new):
            return rules.collision_sentence(
                rules.describe(*new),
                f"registration {old['id']} ({rules.describe(*held)}, {old['state']})",
            )
    return None


def doorbell_verdict(case: dict[str, Any]) -> str | None:
    """What the app says of one workload doorbell: the first rule it breaks."""
    row = case["row"]
    addr, value = rules.parse_u64(row["addr"], "addr"), rules.parse_u64(row["value"], "value")
    mem_size = case.get("mem_size") or DEFAULT_MEM_SIZE
    return rules.doorbell_problem(
        row["space"], addr, row["len"], value, mem_size
    ) or rules.rate_problem(float(row["rate_hz"]), row.get("answered", False))


@pytest.mark.parametrize("case", CASES["registrations"], ids=lambda c: str(c["form"]))
def test_registration_cases(case: dict[str, Any]) -> None:
    assert registration_verdict(case) == case["problem"]


@pytest.mark.parametrize("case", CASES["doorbells"], ids=lambda c: str(c["row"]))
def test_doorbell_cases(case: dict[str, Any]) -> None:
    assert doorbell_verdict(case) == case["problem"]


@pytest.mark.parametrize("case", CASES["workloads"], ids=lambda c: str(c["rates"]))
def test_workload_cases(case: dict[str, Any]) -> None:
    assert rules.workload_problem([float(r) for r in case["rates"]]) == case["problem"]


def test_the_table_reaches_every_rule_the_page_checks() -> None:
    """Each kind of verdict is in the table at least once, accepted cases too."""
    said = [c["problem"] or "" for c in CASES["registrations"] + CASES["doorbells"]]
    for words in (
        "collides",
        "pass-done",
        "inside guest RAM",
        "rate_hz must be between",
        "answered doorbell",
        "interrupt controller",
        "wider than",
        "must not wrap",
    ):
        assert any(words in s for s in said), words
    assert None in [c["problem"] for c in CASES["registrations"]]
