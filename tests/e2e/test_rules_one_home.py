"""A rule changed in its one place, contract/rules.py, changes the API's answer and the page's
check alike. Each test runs the real app twice: from the checkout, and from a copy of `contract`
whose rules.py has one line edited, imported before the checkout's (nothing is patched in a
running process). The page has no copy of the rule to forget: validate.js applies what
GET /api/rules serves, so both answers move together."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_harness import ROOT, Stack, add_offline_vm, insert, start_stack, stop
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

RATE_FLOOR = ("MIN_DOORBELL_RATE_HZ = 0.0", "MIN_DOORBELL_RATE_HZ = 1.0")
LIVE_STATES = (
    'LIVE_STATES = ("pending", "active", "removing")',
    'LIVE_STATES = ("pending", "active")',  # a removing registration no longer holds its address
)


def edited_contract(tmp: Path, old: str, new: str) -> Path:
    """A directory holding a copy of `contract` with `old` (a whole line of rules.py) made `new`."""
    packages = tmp / "packages"
    shutil.copytree(
        ROOT / "contract", packages / "contract", ignore=shutil.ignore_patterns("__pycache__")
    )
    rules = packages / "contract" / "rules.py"
    text = rules.read_text()
    assert text.count(f"\n{old}\n") == 1, f"contract/rules.py no longer says {old!r}"
    rules.write_text(text.replace(f"\n{old}\n", f"\n{new}\n"))
    return packages


@pytest.fixture
def rules_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The app alone: from the checkout (param None), or with one line of its rules edited."""
    edit = request.param
    s = start_stack(
        tmp_path, kvm_path=None, packages=edited_contract(tmp_path, *edit) if edit else None
    )
    yield s
    stop(s.procs)


@pytest.mark.parametrize(
    ("rules_app", "floor"), [(None, 0), (RATE_FLOOR, 1)], indirect=["rules_app"], ids=["0", "1"]
)
def test_the_rate_floor_moves_the_api_and_the_page(rules_app: Stack, page, floor: int) -> None:
    status, served = rules_app.call("GET", "/api/rules")
    assert status == 200 and served["min_doorbell_rate_hz"] == floor
    vm = add_offline_vm(rules_app)
    silent = {"space": "pio", "addr": "0x6000", "len": 2, "value": 1, "rate_hz": 0}
    refused = f"rate_hz must be between {floor} and 100000 (got 0)"

    status, body = rules_app.call("PUT", f"/api/vms/{vm}/workload", {"doorbells": [silent]})
    if floor:
        assert (status, body["detail"]) == (422, f"doorbells[0]: {refused}")
    else:
        assert status == 200 and body["doorbells"][0]["rate_hz"] == 0

    page.goto(rules_app.url + "/#/workload")
    page.get_by_role("button", name="Add doorbell").click()
    row = page.locator("#workload-table tbody tr").last
    row.locator("[name=addr]").fill("0x6004")
    row.locator("[name=rate_hz]").fill("0")
    page.get_by_role("button", name="Save workload").click()
    if floor:  # refused in the page, in the API's words; nothing saved
        expect(page.locator("form ul.errors")).to_have_text(f"doorbell 1: {refused}")
        assert rules_app.call("GET", f"/api/vms/{vm}/workload")[1]["version"] == 0
    else:  # the page sends it, the API keeps it: two silent doorbells
        expect(page.locator(".toast").filter(has_text="Workload saved")).to_be_visible()
        saved = rules_app.call("GET", f"/api/vms/{vm}/workload")[1]
        assert [d["rate_hz"] for d in saved["doorbells"]] == [0, 0]


@pytest.mark.parametrize(
    ("rules_app", "held"),
    [(None, True), (LIVE_STATES, False)],
    indirect=["rules_app"],
    ids=["removing-holds", "removing-frees"],
)
def test_the_collision_rule_moves_the_api_and_the_page(rules_app: Stack, page, held: bool) -> None:
    from contract.models import Ioeventfd, utcnow

    status, served = rules_app.call("GET", "/api/rules")
    assert status == 200 and ("removing" in served["live_states"]) is held
    vm = add_offline_vm(rules_app)
    now = utcnow()
    old = insert(
        rules_app,
        Ioeventfd,
        vm_id=vm,
        space="pio",
        addr=0x6000,
        len=2,
        state="removing",
        signals_total=0,
        created_at=now,
        updated_at=now,
    )
    page.goto(rules_app.url + "/#/registrations")
    # the page checks against the registrations it has loaded: wait for the removing one
    listed = page.locator("#reg-table tbody tr").filter(has_text="removing")
    expect(listed).to_have_count(1)
    form = page.locator("form.regform")
    form.locator("[name=addr]").fill("0x6000")
    form.locator("[name=len]").select_option("2")
    form.locator("[name=label]").fill("beside a removing one")
    form.locator("button[type=submit]").click()
    errors = page.locator("section.card.write ul.errors")
    if held:  # the page refuses with the server's sentence, and the server refuses it too
        clash = (
            f"pio 0x6000 len 2 datamatch any collides with registration {old} "
            "(pio 0x6000 len 2 datamatch any, removing)"
        )
        expect(errors).to_contain_text(clash)
        assert page.locator("#reg-table tbody tr").filter(has_text="beside").count() == 0
        body = {"space": "pio", "addr": 0x6000, "len": 2}
        status, answer = rules_app.call("POST", f"/api/vms/{vm}/ioeventfds", body)
        assert status == 409 and answer["errno"] == "EEXIST"
        assert answer["detail"] == errors.inner_text().strip()
    else:  # the page sends it and the server keeps it (pending: the worker is away)
        expect(page.locator(".toast")).to_contain_text("pending")
        row = page.locator("#reg-table tbody tr").filter(has_text="beside a removing one")
        expect(row.locator(".state")).to_have_text("pending")
        expect(errors).to_be_empty()
