"""The Host view and an observed VM's Live page in Chromium, against the real app and a worker on
/dev/kvm (the owned VM), beside an observed VMM whose ticks the observer's own writer stores
five times a second (as `iosignal observe` would, without attaching BPF)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from dashboard_harness import TickingVmm, screenshot
from playwright.sync_api import expect

from benchmarks.fleetsim import FleetShape, SimHost, history, host_name
from contract.db import make_engine
from contract.latency import slot_of
from contract.models import utcnow
from observer.discovery import VmKey, VmProcess
from observer.latency import Consumer
from observer.latencyreader import LatencyDelta
from observer.retention import roll_up
from observer.sampler import AddressSample, Tick
from observer.writer import ObservedWriter

pytestmark = [pytest.mark.browser, pytest.mark.kvm]

TICK_S = 0.2
QEMU = VmProcess(
    VmKey(4242, 777), utcnow() - timedelta(hours=1), "qemu-system-x86", "qemu -m 1G", 2, (9,)
)
# per tick: writes, userspace
COUNTS = {
    ("pio", 0x6000, 2): (1000, 0),
    ("pio", 0x510, 1): (200, 200),
    ("mmio", 0xFEB00000, 4): (400, 100),
}
SHARE = "81.3%"  # (1600 - 300) / 1600 in-kernel
# per tick, the notify port's kicks as the latency programs would hand them over: 200 kicks,
# 150 of which woke QEMU's IOThread, each answered by an interrupt 12 us after its kick
KICKS = LatencyDelta(
    4242, "pio", 0x6000, 2, Consumer(4250, "IO iothread0", 4242, "qemu-system-x86"),
    kicks=200, wakes=150, coalesced=0, answered=200, stale=0, vector=0x41,
    hists={"kick_to_irq": {slot_of(12_000): 200}, "kick_to_run": {slot_of(4_000): 150}},
)  # fmt: skip


class FakeVmm(TickingVmm):
    """Stores an observed VMM's ticks every TICK_S until stopped."""

    def __init__(self, database_url: str, host: str) -> None:
        super().__init__(database_url, host, TICK_S)

    def tick(self) -> None:
        samples = [AddressSample(QEMU.key, *a, w, u, 0) for a, (w, u) in COUNTS.items()]
        live = {QEMU.key: QEMU}
        tids = {QEMU.key: [4243, 4244]}
        latency = [(QEMU.key, KICKS)]
        self.writer.put(Tick(utcnow(), TICK_S, live, [], samples, tids, {}, latency=latency))
        self.writer.flush()


@pytest.fixture(scope="module")
def observed(stack):
    """The observed VM's id, ticking while the module's tests run."""
    [owned] = stack.call("GET", "/api/vms?kind=owned")[1]
    vmm = FakeVmm(stack.database_url, owned["host"])  # the same host as the worker
    vmm.tick()
    vmm.thread.start()
    [vm] = stack.call("GET", "/api/vms?kind=observed")[1]
    yield vm
    vmm.close()


def test_host_view_lists_the_owned_and_the_observed_vm(stack, observed, page):
    [owned] = stack.call("GET", "/api/vms?kind=owned")[1]
    page.goto(stack.url + "/#/hosts")
    expect(page.locator('nav a[data-page="hosts"]')).to_have_attribute("aria-current", "page")
    card = page.locator(f'section.host[data-host="{owned["host"]}"]')
    expect(card.locator("h2")).to_have_text(owned["host"])
    mine = card.locator(f'tr[data-vm-id="{owned["id"]}"]')
    theirs = card.locator(f'tr[data-vm-id="{observed["id"]}"]')
    expect(mine.locator(".badge")).to_have_text("owned")
    expect(mine.locator("td.state")).to_have_text("running")
    expect(theirs.locator(".badge")).to_have_text("observed")
    expect(theirs.locator("td.who")).to_have_text("qemu-system-x86 · pid 4242")
    expect(theirs.locator("td.state")).to_have_text("running")
    expect(theirs.locator("td.share")).to_have_text(SHARE)  # the same every tick: exact
    busiest = theirs.locator("ul.busiest li")
    expect(busiest).to_have_count(3)
    expect(busiest.first).to_contain_text("pio 0x6000/2")
    expect(busiest.first).to_contain_text("100% in-kernel")
    expect(busiest.nth(2)).to_contain_text("pio 0x510/1")
    expect(busiest.nth(2)).to_contain_text("0% in-kernel")
    # live: the refresh keeps the rates coming
    stamp = page.locator("#hosts-updated").text_content()
    expect(page.locator("#hosts-updated")).not_to_have_text(stamp or "", timeout=5000)
    screenshot(page, "hosts")

    # the kind shown is in the URL: a copied link reopens it
    page.locator("#hosts-kind").select_option("observed")
    assert "kind=observed" in page.url
    expect(mine).to_have_count(0)
    page.goto(page.url.replace("kind=observed", "kind=owned"))
    page.reload()
    expect(card.locator(f'tr[data-vm-id="{owned["id"]}"]')).to_be_visible()
    expect(card.locator(f'tr[data-vm-id="{observed["id"]}"]')).to_have_count(0)
    expect(page.locator("#copy-link")).to_be_visible()


SPLIT = """() => {
  const div = document.getElementById("chart-split");
  const trace = (t) => ({ name: t.name, y: Array.from(t.y), x: Array.from(t.x) });
  return div && div.data ? div.data.map(trace) : null;
}"""


def test_an_observed_vms_live_page_splits_writes_and_lists_the_exiting_doorbells(
    stack, observed, page
):
    page.goto(stack.url + "/#/hosts")
    page.locator(f'tr[data-vm-id="{observed["id"]}"] a').click()
    assert f"vm={observed['id']}" in page.url and "#/live" in page.url
    expect(page.locator("#stream-badge")).to_have_text("stream live")
    expect(page.locator("#worker-badge")).to_have_text("observed, running")
    expect(page.locator("#observed-note")).to_contain_text("qemu-system-x86 (pid 4242)")
    rows = page.locator("#exiting-table tbody tr")
    expect(rows).to_have_count(2)  # the console and the mixed doorbell; notify stays in-kernel
    expect(rows.first).to_have_attribute("data-key", "pio:0x510:1")
    expect(rows.first.locator(".share")).to_have_text("0%")
    expect(rows.nth(1)).to_have_attribute("data-key", "mmio:0xfeb00000:4")
    expect(rows.nth(1).locator(".share")).to_have_text("75%")
    expect(page.get_by_role("button", name="Register ioeventfd")).to_have_count(0)
    expect(page.locator("#split-note")).to_contain_text(f"{SHARE} in-kernel")
    # one tick's figures (the ten seconds before the first tick are averaged, so wait for one):
    # 1000 writes in 0.2 s, all in-kernel, is 5,000/s
    deadline = time.monotonic() + 10
    while (split := page.evaluate(SPLIT)) and time.monotonic() < deadline:
        if split[0]["x"] == pytest.approx([5000, 1500, 0], rel=1e-4):
            break
        page.wait_for_timeout(200)
    in_kernel, userspace = split
    assert (in_kernel["name"], userspace["name"]) == ("in-kernel", "userspace")
    assert in_kernel["y"] == ["pio 0x6000/2", "mmio 0xfeb00000/4", "pio 0x510/1"]
    assert in_kernel["x"] == pytest.approx([5000, 1500, 0], rel=1e-4)
    assert userspace["x"] == pytest.approx([0, 500, 1000], rel=1e-4)
    screenshot(page, "live-observed")
    # the pages that change a VM say why they do not, for this one
    refusing = {"registrations": "registers ioeventfds", "workload": "changes workloads"}
    for name, what in refusing.items():
        page.goto(f"{stack.url}/#/{name}?vm={observed['id']}")
        expect(page.locator("#observed-only")).to_contain_text("is observed, not owned")
        expect(page.locator("#observed-only")).to_contain_text(f"never {what}")


LATENCY = """() => {
  const div = document.getElementById("chart-latency");
  return div && div.data ? div.data.map((t) => ({ name: t.name, y: Array.from(t.y) })) : null;
}"""


def test_an_observed_vms_live_page_shows_its_doorbells_latency(stack, observed, page):
    page.goto(f"{stack.url}/#/live?vm={observed['id']}")
    consumer = page.locator("#latency-consumers li")
    expect(consumer).to_have_count(1)
    expect(consumer).to_contain_text("pio 0x6000/2")
    expect(consumer).to_contain_text("IO iothread0 (tid 4250, qemu-system-x86)")
    # 12 us lies in the bucket [11.264, 12.288) us: its middle is shown
    expect(consumer).to_contain_text("kick → interrupt p50 11.776 µs")
    traces = None
    deadline = time.monotonic() + 10
    while not traces and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        traces = page.evaluate(LATENCY)
    names = {t["name"] for t in traces or []}
    assert "pio 0x6000/2 kick → interrupt p50" in names, names
    assert "pio 0x6000/2 kick → consumer running p99" in names, names
    irq = next(t for t in traces or [] if t["name"] == "pio 0x6000/2 kick → interrupt p50")
    assert all(11.2 <= y <= 12.8 for y in irq["y"]), irq  # inside 12 us's bucket


# A small fleet beside the stack's VMs: 3 hosts x 40 VMs x 4 doorbells, 30 s of ticks written
# by each host's own ObservedWriter 20 minutes ago and rolled up, so over the last hour (the
# minute tier) every fleet VM's figures stay put while the test reads them.
FLEET = FleetShape(hosts=3, vms=40, doorbells=4)
FLEET_PAGE = "#/hosts?since=-1h"


@pytest.fixture(scope="module")
def fleet(stack):
    """The simulated hosts' names, their history written."""
    end = utcnow().replace(microsecond=0) - timedelta(minutes=20)
    engine = make_engine(stack.database_url)
    for i in range(FLEET.hosts):
        host = SimHost(i, FLEET, end - timedelta(minutes=2))
        writer = ObservedWriter(engine, host.name, started_at=end - timedelta(seconds=90))
        for tick in history(host, 30, end):
            writer.put(tick)
        assert writer.flush()
        roll_up(engine, host.name, end + timedelta(minutes=1))
    engine.dispose()
    return [host_name(i) for i in range(FLEET.hosts)]


def shown_ids(page) -> list[int]:
    return [
        int(i)
        for i in page.locator("tr[data-vm-id]").evaluate_all(
            "rows => rows.map(r => r.dataset.vmId)"
        )
    ]


def api_ids(stack, **params) -> list[int]:
    query = "&".join(f"{k}={v}" for k, v in ({"since": "-1h"} | params).items())
    return [vm["id"] for vm in stack.call("GET", f"/api/hosts?{query}")[1]["vms"]]


def test_the_host_view_of_a_fleet_pages_sorts_and_searches_in_the_url(stack, fleet, page):
    total = stack.call("GET", "/api/hosts?since=-1h")[1]["total"]
    assert total >= FLEET.hosts * FLEET.vms
    page.goto(f"{stack.url}/{FLEET_PAGE}")
    # the first screen: 50 VMs by host, a card per host, the position among them all
    expect(page.locator("tr[data-vm-id]")).to_have_count(50)
    expect(page.locator("#hosts-page")).to_have_text(f"1\u201350 of {total} VMs · page 1 of 3")
    assert shown_ids(page) == api_ids(stack)
    expect(page.locator("#hosts-prev")).to_be_disabled()
    screenshot(page, "hosts-fleet")

    # paging: the next 50, and the page is in the link
    page.locator("#hosts-next").click()
    expect(page.locator("#hosts-page")).to_contain_text(f"51\u2013100 of {total} VMs · page 2")
    assert "page=2" in page.url
    assert shown_ids(page) == api_ids(stack, page=2)

    # sorting by writes/s: one table in that order, back to page 1
    page.locator("#hosts-sort").select_option("writes")
    expect(page.locator("section.host-sorted h2")).to_have_text("By writes/s, highest first")
    assert "sort=writes" in page.url and "page=" not in page.url
    expect(page.locator("#hosts-page")).to_contain_text("page 1 of")
    fleet_first = api_ids(stack, sort="writes", q="fleet-")
    expect(page.locator("tr[data-vm-id]").first).to_be_visible()

    # searching: the fleet's VMs by writes/s (every one figured, so the order is exact)
    page.locator("#hosts-q").fill("fleet-")
    expect(page.locator("#hosts-page")).to_contain_text(f"of {FLEET.hosts * FLEET.vms} VMs")
    assert "q=fleet-" in page.url
    assert shown_ids(page) == fleet_first
    page.locator("#hosts-order").select_option("asc")
    expect(page.locator("section.host-sorted h2")).to_have_text("By writes/s, lowest first")
    expect(page.locator("tr[data-vm-id]").first).to_have_attribute(
        "data-vm-id", str(api_ids(stack, sort="writes", order="asc", q="fleet-")[0])
    )
    # by a pid: each host's VM of that pid; by a host: its VMs alone
    page.locator("#hosts-q").fill("10007")
    expect(page.locator("tr[data-vm-id]")).to_have_count(FLEET.hosts)
    expect(page.locator("td.who").first).to_contain_text("pid 10007")
    page.locator("#hosts-q").fill(fleet[1])
    expect(page.locator("#hosts-page")).to_contain_text(f"of {FLEET.vms} VMs")
    hosts = page.locator("td.host-name").all_text_contents()
    assert set(hosts) == {fleet[1]}

    # the whole state is the link: a teammate opening it sees the same page
    link = page.url
    for part in (f"q={fleet[1]}", "sort=writes", "order=asc", "since=-1h"):
        assert part in link
    page.goto("about:blank")
    page.goto(link)
    expect(page.locator("#hosts-q")).to_have_value(fleet[1])
    expect(page.locator("#hosts-sort")).to_have_value("writes")
    expect(page.locator("tr[data-vm-id]")).to_have_count(FLEET.vms)
    assert shown_ids(page) == api_ids(stack, sort="writes", order="asc", q=fleet[1])
