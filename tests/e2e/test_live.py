"""The dashboard against the real app and a worker running the guest on /dev/kvm: live charts move,
a hot doorbell registered from the page turns exits into signals, a benchmark draws its bars."""

from __future__ import annotations

import time

import pytest
from dashboard_harness import ARTIFACTS, screenshot
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.kvm]

TRACE = """([id, needle]) => {
  const div = document.getElementById(id);
  const tr = div && div.data && div.data.find((t) => t.name.includes(needle));
  return tr ? { n: tr.y.length, y: Array.from(tr.y) } : null;
}"""


def vm_id(stack) -> int:
    return stack.health()["vms"][0]["id"]


def ring(stack, doorbells: list[dict]) -> None:
    """Sets the guest's workload through the API."""
    status, body = stack.call("PUT", f"/api/vms/{vm_id(stack)}/workload", {"doorbells": doorbells})
    assert status == 200, body


def trace(page, chart: str, needle: str) -> dict | None:
    """Points of the first series of `chart` whose legend name contains `needle`."""
    return page.evaluate(TRACE, [chart, needle])


def wait_trace(page, chart: str, needle: str, ok, what: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = trace(page, chart, needle)
        if seen and ok(seen):
            return seen
        page.wait_for_timeout(200)
    pytest.fail(f"timed out waiting for {what}; last seen {seen and seen['y'][-8:]}")


def test_live_chart_gains_points(stack, page):
    page.goto(stack.url + "/#/live")
    expect(page.locator("#stream-badge")).to_have_text("stream live")
    expect(page.locator("#worker-badge")).to_have_text("worker alive")
    started = time.monotonic()
    ring(stack, [{"space": "pio", "addr": 0x6100, "len": 1, "value": 1, "rate_hz": 500}])
    wait_trace(page, "chart-exits", "pio 0x6100/1", lambda t: t["y"][-1] > 0, "a first point")
    # A figure, not an assertion: how long from the workload PUT to the line on the page.
    latency = time.monotonic() - started
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "live-latency.txt").write_text(f"{latency:.2f} s\n")
    print(f"ring -> live chart: {latency:.2f} s (sample interval 0.2 s, 200 ms polling)")
    first = wait_trace(page, "chart-exits", "pio 0x6100/1", lambda t: t["n"] >= 3, "exit points")
    later = wait_trace(
        page, "chart-exits", "pio 0x6100/1", lambda t: t["n"] >= first["n"] + 5, "more points"
    )
    assert max(later["y"]) > 100  # 500 Hz asked; the line is well off zero
    expect(page.locator('#hot-table tr[data-key="pio:0x6100:1"]')).to_be_visible()
    screenshot(page, "live")
    page.set_viewport_size({"width": 2560, "height": 1440})
    page.wait_for_timeout(500)
    screenshot(page, "live-wide")


def test_registering_a_hot_doorbell_turns_its_exits_into_signals(stack, page):
    ring(stack, [{"space": "pio", "addr": 0x6200, "len": 2, "value": 7, "rate_hz": 1000}])
    page.goto(stack.url + "/#/live")
    row = page.locator('#hot-table tr[data-key="pio:0x6200:2"]')
    expect(row).to_be_visible()
    wait_trace(page, "chart-exits", "pio 0x6200/2", lambda t: t["y"][-1] > 500, "exits at ~1 kHz")

    row.get_by_role("button", name="Register ioeventfd").click()
    dialog = page.locator("dialog.register-dialog")
    expect(dialog.locator("[name=space]")).to_have_value("pio")
    expect(dialog.locator("[name=addr]")).to_have_value("0x6200")
    expect(dialog.locator("[name=len]")).to_have_value("2")
    dialog.locator("[name=label]").fill("e2e doorbell")
    dialog.locator("button[type=submit]").click()
    expect(page.locator(".toast").filter(has_text="e2e doorbell")).to_contain_text("active")

    # The signal line rises to the ringing rate and the exit line falls to zero.
    wait_trace(page, "chart-signals", "e2e doorbell", lambda t: t["y"][-1] > 500, "signals")
    wait_trace(
        page, "chart-exits", "pio 0x6200/2", lambda t: t["y"][-3:] == [0, 0, 0], "exits to fall"
    )
    expect(row).to_be_hidden()
    screenshot(page, "live-after-register")

    # Deleted (through the API, as another user might): the writes exit to userspace again.
    vm = vm_id(stack)
    _, regs = stack.call("GET", f"/api/vms/{vm}/ioeventfds")
    reg = next(r for r in regs if r["label"] == "e2e doorbell")
    assert stack.call("DELETE", f"/api/vms/{vm}/ioeventfds/{reg['id']}")[0] == 204
    expect(page.locator("#chart-signals .legend")).to_contain_text("removed")
    wait_trace(page, "chart-exits", "pio 0x6200/2", lambda t: t["y"][-1] > 500, "exits again")
    expect(row).to_be_visible()


def test_history_charts_a_registrations_rates(stack, page):
    vm = vm_id(stack)
    ring(stack, [{"space": "mmio", "addr": 0xD0001000, "len": 4, "value": 1, "rate_hz": 200}])
    status, reg = stack.call(
        "POST",
        f"/api/vms/{vm}/ioeventfds",
        {"space": "mmio", "addr": "0xd0001000", "len": 4, "label": "history mmio"},
    )
    assert status == 201, reg
    time.sleep(2)  # a few sampling ticks of signals to chart
    page.goto(stack.url + "/#/history")
    # History compares several series now: choosing one adds it to the chart.
    page.locator("#history-reg").select_option(f"signals:r{reg['id']}")
    wait_trace(page, "chart-history", "history mmio", lambda t: max(t["y"]) > 50, "history")
    page.locator("#history-range").select_option("-5m")  # raw samples at this tick rate
    expect(page.locator("#history-note")).to_contain_text("raw samples")
    wait_trace(page, "chart-history", "history mmio", lambda t: t["n"] > 5, "raw history")
    screenshot(page, "history")
    page.locator("#history-range").select_option("-24h")
    expect(page.locator("#history-note")).to_contain_text("per-minute rollups")
    wait_trace(page, "chart-history", "history mmio", lambda t: t["n"] > 0, "24 h history")
    screenshot(page, "history-24h")


def test_registrations_page_registers_and_deletes_with_confirmation(stack, page):
    page.goto(stack.url + "/#/registrations")
    form = page.locator("form.regform")
    form.locator("[name=space]").select_option("mmio")
    form.locator("[name=addr]").fill("0xd0002000")
    form.locator("[name=len]").select_option("4")
    form.locator("[name=datamatch]").fill("0x2a")
    form.locator("[name=label]").fill("matched")
    form.locator("button[type=submit]").click()
    row = page.locator("#reg-table tbody tr").filter(has_text="matched")
    expect(row.locator(".state")).to_have_text("active")
    expect(row).to_contain_text("0x2a")
    screenshot(page, "registrations")
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_be_hidden()  # removed: gone from the current list


def test_workload_editor_checks_and_saves(stack, page):
    page.goto(stack.url + "/#/workload")
    page.get_by_role("button", name="Add doorbell").click()
    last = page.locator("#workload-table tbody tr").last
    last.locator("[name=addr]").fill("0x6400")
    last.locator("[name=rate_hz]").fill("-5")
    page.get_by_role("button", name="Save workload").click()
    expect(page.locator("form ul.errors")).to_contain_text("rate_hz must be between 0 and")
    last.locator("[name=rate_hz]").fill("250")
    page.get_by_role("button", name="Save workload").click()
    expect(page.locator("form ul.errors")).to_be_empty()
    expect(page.locator(".toast").filter(has_text="Workload saved")).to_be_visible()
    _, wl = stack.call("GET", f"/api/vms/{vm_id(stack)}/workload")
    added = {"space": "pio", "addr": 0x6400, "len": 2, "value": 1, "rate_hz": 250.0}
    assert added in wl["doorbells"]
    screenshot(page, "workload")


def test_benchmark_runs_to_completion_and_draws_bars(stack, page):
    page.goto(stack.url + "/#/benchmarks")
    page.locator("[name=writes]").fill("2000")
    page.locator("[name=repeat]").fill("1")
    page.get_by_role("button", name="Start benchmark").click()
    expect(page.locator("#bench-progress")).to_be_visible()
    expect(page.locator("#bench-state")).to_contain_text("done", timeout=180_000)
    # "done" shows first; the runs list and chart follow once the results are fetched.
    bars = page.wait_for_function("""() => {
        const runs = document.getElementById('chart-bench').data
            .filter((t) => t.name.startsWith('#'));
        return runs.length && runs.map((t) => ({x: t.x, y: Array.from(t.y)}));
    }""").json_value()
    assert len(bars) == 1
    assert "ioeventfd-pio" in bars[0]["x"] and "userspace-pio" in bars[0]["x"]
    assert all(y > 0 for y in bars[0]["y"])
    # Bars are drawn, not just data: one SVG bar per path plus the 2009 reference.
    assert page.locator("#chart-bench .bars path").count() >= len(bars[0]["x"]) + 3
    expect(page.locator("table.bench-results")).to_contain_text("ioeventfd-pio")
    screenshot(page, "benchmarks")


def test_an_answered_doorbell_shows_kicks_and_interrupts_live(stack, page):
    ring(stack, [])
    page.goto(stack.url + "/#/workload")
    page.get_by_role("button", name="Add doorbell").click()
    row = page.locator("#workload-table tbody tr").last
    row.locator("[name=addr]").fill("0x6300")
    row.locator("[name=rate_hz]").fill("20000")
    row.locator("[name=answered]").check()
    page.get_by_role("button", name="Save workload").click()
    # The browser checks the answered rate limit before the API sees it.
    expect(page.locator("ul.errors")).to_contain_text("answered doorbell's rate_hz must be at most")
    row.locator("[name=rate_hz]").fill("300")
    page.get_by_role("button", name="Save workload").click()
    expect(page.locator(".toast").filter(has_text="Workload saved")).to_be_visible()
    _, workload = stack.call("GET", f"/api/vms/{vm_id(stack)}/workload")
    assert workload["doorbells"][-1]["answered"] is True

    page.goto(stack.url + "/#/live")
    table_row = page.locator('#answers-table tr[data-key="pio:0x6300:2"]')
    expect(table_row).to_be_visible(timeout=20_000)
    kicks = wait_trace(
        page, "chart-answers", "pio 0x6300/2 kicks/s", lambda t: t["n"] >= 5, "kicks/s points"
    )
    interrupts = trace(page, "chart-answers", "pio 0x6300/2 interrupts/s")
    assert interrupts is not None and max(kicks["y"]) > 100  # 300 Hz asked
    # Every kick answered: the lines agree tick for tick, but for a kick the device had read
    # and not yet answered when the tick was taken (one kick in a 0.2 s tick: 5/s).
    n = min(kicks["n"], interrupts["n"])
    pairs = list(zip(kicks["y"][:n], interrupts["y"][:n], strict=True))
    assert all(abs(k - i) <= 5.01 for k, i in pairs), pairs
    assert abs(sum(k - i for k, i in pairs)) <= 5.01
    expect(page.locator("#answers-note")).to_contain_text("1 answered doorbell")
    screenshot(page, "live-answered")
    _, vm = stack.call("GET", f"/api/vms/{vm_id(stack)}")
    assert vm["state"] == "running" and not vm["error"]
    ring(stack, [])
