"""The shared rule cases (tests/rules_cases.json) through the page's checks: static/js/validate.js
in Chromium with the real app's GET /api/rules. tests/contract/test_rules_cases.py runs the same
table through contract/rules.py, so the page and the server say the same of every case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CASES = json.loads((Path(__file__).parents[1] / "rules_cases.json").read_text())

# Runs in the page: the module the forms import, the rules the page fetches at start.
RUN = """async (cases) => {
  const { checkRegistration, checkWorkload } = await import("/js/validate.js");
  const rules = await (await fetch("/api/rules")).json();
  const ram = (c) => c.mem_size ?? rules.default_mem_size;
  const bell = (rate, i) => ({ space: "pio", addr: `0x${(0x6000 + 4 * i).toString(16)}`, len: 4,
    value: "0x1", rate_hz: rate });
  return {
    registrations: cases.registrations.map((c) => checkRegistration(
      { ...c.form, len: String(c.form.len), label: "" }, c.existing ?? [], rules, ram(c)).errors),
    doorbells: cases.doorbells.map((c) => checkWorkload([c.row], rules, ram(c)).errors),
    workloads: cases.workloads.map((c) => checkWorkload(c.rates.map(bell), rules, ram(c)).errors),
  };
}"""


def test_the_page_gives_every_case_the_tables_verdict(app_only, page) -> None:
    page.goto(app_only.url + "/")
    said = page.evaluate(RUN, CASES)
    want = {
        "registrations": [[c["problem"]] if c["problem"] else [] for c in CASES["registrations"]],
        "doorbells": [
            [f"doorbell 1: {c['problem']}"] if c["problem"] else [] for c in CASES["doorbells"]
        ],
        "workloads": [[c["problem"]] if c["problem"] else [] for c in CASES["workloads"]],
    }
    for kind, cases in want.items():
        for case, got, expected in zip(CASES[kind], said[kind], cases, strict=True):
            assert got == expected, case
