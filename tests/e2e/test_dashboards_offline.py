"""Dashboards against the real app with no worker: a fresh install opens on Overview and offers
the demo without starting it, a viewer sees no edit controls, a panel naming what does not exist
says so and names stay text, export then import round-trips, benchmark regressions are flagged."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from dashboard_harness import add_offline_vm, add_token, insert, screenshot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

EDIT_CONTROLS = ["Edit", "Delete", "Add note", "Start demo workload"]


def test_a_fresh_install_opens_on_overview_and_offers_the_demo(app_only, page):
    add_offline_vm(app_only)
    page.goto(app_only.url + "/")
    expect(page).to_have_url(f"{app_only.url}/d/overview?vm=1")
    expect(page.locator("main h1")).to_contain_text("Overview")
    expect(page.locator(".panel h2")).to_have_count(4)
    card = page.locator("#demo-card")
    expect(card).to_contain_text("Start the demo workload on offline")
    expect(card.get_by_role("button", name="Start demo workload")).to_be_visible()
    page.wait_for_timeout(2500)  # a health poll or two: nothing starts it behind our back
    assert app_only.call("GET", "/api/demo")[1]["active"] is False
    expect(page.locator("#demo-badge")).to_be_hidden()
    screenshot(page, "overview-first-run")


def test_a_viewer_sees_no_edit_controls(app_only, page):
    add_offline_vm(app_only)
    viewer = add_token(app_only, "v", "viewer")
    page.add_init_script(f"localStorage.setItem('iosignal.token', {json.dumps(viewer)})")
    page.goto(app_only.url + "/d/overview")
    expect(page.locator("#role-badge")).to_have_text("token: viewer")
    expect(page.locator(".panel h2")).to_have_count(4)
    expect(page.get_by_role("button", name="Export JSON")).to_be_visible()
    expect(page.get_by_role("button", name="Copy link")).to_be_visible()
    for name in EDIT_CONTROLS:
        expect(page.get_by_role("button", name=name, exact=True)).to_be_hidden()
    page.goto(app_only.url + "/#/dashboards")
    expect(page.locator("#dashboards-table tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name="New dashboard")).to_be_hidden()
    expect(page.locator("#import-file")).to_be_hidden()
    expect(page.get_by_role("button", name="Delete")).to_be_hidden()
    screenshot(page, "viewer-dashboards")


def test_missing_series_say_so_and_names_stay_text(app_only, page):
    add_offline_vm(app_only)
    name = '<img src=x onerror="window.pwned=1">Ops'
    body = {
        "name": name,
        "slug": "ops",
        "panels": [
            {"title": "<i>gone</i>", "metric": "signals", "series": [{"ioeventfd_id": 4242}]},
            {
                "title": "elsewhere",
                "metric": "exits",
                "series": [{"vm_id": 99, "space": "pio", "addr": "0x6000", "len": 2}],
            },
        ],
    }
    status, created = app_only.call("POST", "/api/dashboards", body)
    assert status == 201, created
    page.goto(app_only.url + "/d/ops")
    panels = page.locator(".panel")
    expect(panels.nth(0).locator(".empty")).to_contain_text("registration 4242 does not exist")
    expect(panels.nth(1).locator(".empty")).to_contain_text("VM 99 does not exist")
    expect(panels.nth(0).locator("h2")).to_have_text("<i>gone</i>")
    expect(page.locator("main h1")).to_contain_text(name)
    assert page.locator("main img, main i").count() == 0
    assert page.evaluate("window.pwned") is None
    screenshot(page, "dashboard-missing")


def test_export_then_import_a_dashboard(app_only, page, tmp_path):
    add_offline_vm(app_only)
    page.goto(app_only.url + "/#/dashboards")
    row = page.locator('#dashboards-table tr[data-slug="overview"]')
    with page.expect_download() as info:
        row.get_by_role("button", name="Export JSON").click()
    exported = tmp_path / "overview.json"
    info.value.save_as(exported)
    assert info.value.suggested_filename == "overview.json"
    spec = json.loads(exported.read_text())
    assert spec["slug"] == "overview" and len(spec["panels"]) == 4

    # The same slug is taken: the page asks for another and imports under it.
    page.console_watch.allow("status of 409")
    page.once("dialog", lambda d: d.accept("overview-copy"))
    page.locator("#import-file").set_input_files(exported)
    expect(page).to_have_url(f"{app_only.url}/d/overview-copy?vm=1")
    expect(page.locator(".panel h2")).to_have_text([p["title"] for p in spec["panels"]])
    _, listed = app_only.call("GET", "/api/dashboards")
    assert sorted(d["slug"] for d in listed) == ["overview", "overview-copy"]


def _run(stack, at, host: str, iops: float) -> int:
    """A finished run of ioeventfd-pio on `host` at `at`, as that host's worker records it."""
    from contract.models import BenchmarkResult, BenchmarkRun

    run = insert(
        stack,
        BenchmarkRun,
        state="done",
        progress=1.0,
        writes=1000,
        repeat=1,
        paths=["ioeventfd-pio"],
        host=host,
        kernel="6.1.0",
        cpu_model="Test CPU",
        kvm_module="kvm_intel",
        kvm_nested=True,
        created_at=at,
        started_at=at,
        finished_at=at + timedelta(seconds=5),
    )
    rtt = 1e6 / iops
    insert(
        stack,
        BenchmarkResult,
        run_id=run,
        path="ioeventfd-pio",
        writes=1000,
        iops=iops,
        rtt_us=rtt,
        rtt_us_min=rtt,
        rtt_us_max=rtt,
        guest_rtt_us=rtt,
    )
    return run


def test_a_benchmark_regression_is_flagged(app_only, page):
    from contract.models import utcnow

    now = utcnow()
    _run(app_only, now - timedelta(hours=3), "alpha", 500_000)
    slower = _run(app_only, now - timedelta(hours=2), "alpha", 400_000)  # 20 % below
    _run(app_only, now - timedelta(hours=1), "beta", 300_000)  # another host: no previous run
    page.goto(app_only.url + "/#/benchmarks")
    table = page.locator("#regressions")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator(f'tr[data-run="{slower}"]')).to_contain_text("\u221220.0%")
    expect(page.locator(f'#runs-table tr[data-id="{slower}"] .regressed')).to_have_text(
        "ioeventfd-pio \u221220.0%"
    )
    flagged = page.evaluate(
        "() => document.getElementById('chart-trends').data.find((t) => t.name === 'regression').y"
    )
    assert flagged == [400_000]
    names = page.evaluate("() => document.getElementById('chart-trends').data.map((t) => t.name)")
    assert "ioeventfd-pio · alpha · 6.1.0 · kvm_intel (nested)" in names
    screenshot(page, "benchmark-trends")

    page.locator("#regression-share").fill("25")
    page.locator("#regression-share").dispatch_event("change")
    expect(page.locator("#regressions-wrap")).to_contain_text("No regression above 25.0%")
    expect(page).to_have_url(f"{app_only.url}/#/benchmarks?share=25")
    expect(page.locator(f'#runs-table tr[data-id="{slower}"] .regressed')).to_have_text("")
