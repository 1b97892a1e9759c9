"""Dashboards, links and annotations against the real app and two workers on /dev/kvm: a dashboard
built from the page over two VMs reopens from its link in a new browser with the same panels and
data, zoom lives in the link, a copied History link restores its series and range, an annotation
added through REST shows on a live chart as text, and the demo starts and goes with one click."""

from __future__ import annotations

import re
import time

import pytest
from dashboard_harness import add_worker, screenshot
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.kvm]

# Points of every series trace of a chart (index 0 holds the annotation markers).
SERIES = """(id) => {
  const div = document.getElementById(id);
  return div && div.data ? div.data.slice(1).map((t) => ({ name: t.name, n: t.x.length })) : [];
}"""
MARKERS = """(id) => {
  const div = document.getElementById(id);
  return div && div.data ? Array.from(div.data[0].text || []) : [];
}"""


@pytest.fixture(scope="module")
def vms(stack):
    """Two VMs on one database, each ringing its own doorbell and with one registration."""
    first = stack.health()["vms"][0]["id"]
    second = add_worker(stack, "e2e-b")
    for vm, port in ((first, 0x6500), (second, 0x6600)):
        bells = [
            {"space": "pio", "addr": port, "len": 2, "value": 1, "rate_hz": 300},
            {"space": "pio", "addr": port + 4, "len": 2, "value": 1, "rate_hz": 200},
        ]
        assert stack.call("PUT", f"/api/vms/{vm}/workload", {"doorbells": bells})[0] == 200
        body = {"space": "pio", "addr": port + 4, "len": 2, "label": f"bell {port + 4:#x}"}
        assert stack.call("POST", f"/api/vms/{vm}/ioeventfds", body)[0] == 201
    return {"e2e": first, "e2e-b": second}


def series(page, chart: str):
    return page.evaluate(SERIES, chart)


def wait_series(page, chart: str, count: int, timeout: float = 30) -> list[dict]:
    """The series of `chart` once `count` of them have points."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen = series(page, chart)
        if len([s for s in seen if s["n"] > 0]) >= count:
            return seen
        page.wait_for_timeout(250)
    pytest.fail(f"{chart}: wanted {count} series with points, saw {seen}")


def add_panel(page, title: str, metric: str, picks: list[tuple[str, str]]) -> None:
    """Adds a panel from the editor: `picks` are (VM name, option label) pairs."""
    page.locator("#dash-editor").get_by_role("button", name="Add panel").click()
    dialog = page.locator("dialog.panel-dialog")
    dialog.locator("[name=title]").fill(title)
    dialog.locator("[name=metric]").select_option(metric)
    for vm_name, label in picks:
        dialog.get_by_label("VM").select_option(label=vm_name)
        dialog.get_by_label("Add a series").select_option(label=label)
        expect(dialog.locator(".chip").filter(has_text=label.split(" (")[0])).to_be_visible()
    dialog.get_by_role("button", name="Add panel").click()
    expect(dialog).to_be_hidden()


def drag_zoom(page, chart: str) -> None:
    """Drags across the middle of a chart's plot area, as a person zooms."""
    box = page.locator(f"#{chart} .nsewdrag").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.55, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.75, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=5)
    page.mouse.up()


def test_a_dashboard_built_on_the_page_reopens_from_its_link(stack, vms, page, browser):
    page.goto(stack.url + "/#/dashboards")
    page.locator("#new-dashboard [name=name]").fill("Two VMs")
    page.get_by_role("button", name="New dashboard").click()
    expect(page).to_have_url(f"{stack.url}/d/two-vms?edit=1&vm={vms['e2e']}")
    editor = page.locator("#dash-editor")
    editor.locator("[name=since]").select_option("-5m")
    add_panel(page, "Exits on both", "exits", [("e2e", "pio 0x6500/2"), ("e2e-b", "pio 0x6600/2")])
    add_panel(
        page,
        "Signals on both",
        "signals",
        [("e2e", "bell 0x6504 (pio 0x6504/2)"), ("e2e-b", "bell 0x6604 (pio 0x6604/2)")],
    )
    expect(editor.locator("#panel-list tbody tr")).to_have_count(2)
    wait_series(page, "panel-1", 2)  # the draft draws before it is saved
    editor.get_by_role("button", name="Save dashboard").click()
    expect(page.locator(".toast").filter(has_text='Saved "Two VMs"')).to_be_visible()
    expect(editor).to_be_hidden()
    built = {chart: wait_series(page, chart, 2) for chart in ("panel-0", "panel-1")}
    # Live: the range ends at now, so the stream adds points between reloads.
    before = sum(s["n"] for s in built["panel-0"])
    page.wait_for_function(
        f"() => document.getElementById('panel-0').data.slice(1)"
        f".reduce((n, t) => n + t.x.length, 0) > {before}"
    )
    screenshot(page, "dashboard-two-vms")

    other = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        fresh = other.new_page()
        fresh.set_default_timeout(15_000)
        fresh.goto(f"{stack.url}/d/two-vms")
        expect(fresh.locator("main h1")).to_contain_text("Two VMs")
        expect(fresh.locator(".panel h2")).to_have_text(["Exits on both", "Signals on both"])
        for chart, drawn in built.items():
            again = wait_series(fresh, chart, 2)
            assert [s["name"] for s in again] == [s["name"] for s in drawn]
        names = [s["name"] for s in built["panel-0"]]
        assert names == ["e2e: pio 0x6500 len 2", "e2e-b: pio 0x6600 len 2"]
    finally:
        other.close()


def test_a_zoom_re_ranges_every_panel_and_lives_in_the_link(stack, vms, page, browser):
    page.goto(f"{stack.url}/d/two-vms")
    wait_series(page, "panel-0", 2)
    drag_zoom(page, "panel-0")
    expect(page).to_have_url(re.compile(r"[?&]until=\d{4}-"))
    expect(page.locator("#dash-status")).to_contain_text("zoomed")
    ranges = "() => [0, 1].map((i) => document.getElementById('panel-' + i)._fullLayout.xaxis.range)"
    zoomed = page.evaluate(ranges)
    assert zoomed[0] == zoomed[1]  # one zoom re-ranged both panels
    link = page.url

    other = browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        fresh = other.new_page()
        fresh.goto(link)
        wait_series(fresh, "panel-1", 1)
        assert fresh.evaluate(ranges) == zoomed
        expect(fresh.locator("#dash-range")).to_have_value("")  # shows "zoomed"
        fresh.get_by_role("button", name="Back to live").click()
        expect(fresh).not_to_have_url(re.compile("until="))
    finally:
        other.close()
