"""An owned VM's Live page beside the host's observer, in Chromium: the real app and worker on
/dev/kvm, and a real `iosignal observe` process (real BPF on KVM's tracepoints). Without an
observer the page's observer card is one line saying how to start one; with it, the card shows
the observer's split of the worker's writes and that it agrees with the worker's own counters,
and while the guest writes nothing, that the observer watches and sees no writes; and an observer
that misses writes (rows stored by the observer's own writer, as test_hosts does) is shown to
differ, by how much."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from dashboard_harness import observing, screenshot, stop
from playwright.sync_api import expect
from support import wait_for

from contract.db import make_engine
from contract.models import utcnow
from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, Tick
from observer.writer import ObservedWriter

# serial: a host-wide observer, and rates compared over wall-clock time
pytestmark = [pytest.mark.browser, pytest.mark.kvm, pytest.mark.serial]

TICK_S = 0.2  # the stack's sample interval
EVENTFD = {"space": "pio", "addr": 0x6000, "len": 2}  # registered: its writes stay in the kernel
EXITING = {"space": "pio", "addr": 0x6100, "len": 1}  # not registered: every write exits
RATES = {0x6000: 2000, 0x6100: 500}
HINT = "No observer is counting this VM's writes"
IDLE = "watches this VM and sees no writes from it"
SPLIT = """() => {
  const div = document.getElementById("chart-split");
  const bars = (t) => ({ name: t.name, y: Array.from(t.y), x: Array.from(t.x) });
  return div && div.data ? div.data.map(bars) : null;
}"""


def owned(stack) -> dict:
    [vm] = stack.call("GET", "/api/vms?kind=owned")[1]
    return vm


@pytest.fixture(scope="module")
def ringing(stack) -> dict:
    """The owned VM, ringing a registered and an unregistered doorbell."""
    vm = owned(stack)
    status, reg = stack.call("POST", f"/api/vms/{vm['id']}/ioeventfds", EVENTFD)
    assert status in (201, 202), reg

    def active():
        regs = stack.call("GET", f"/api/vms/{vm['id']}/ioeventfds")[1]
        return any(r["id"] == reg["id"] and r["state"] == "active" for r in regs)

    wait_for("the registration to be active", active, 30)
    ring(stack, vm)
    return vm


def ring(stack, vm: dict, rings: bool = True) -> None:
    """The guest rings both doorbells at their rates, or (rings=False) writes nothing at all."""
    bells = [b | {"value": 1, "rate_hz": RATES[b["addr"]]} for b in (EVENTFD, EXITING)]
    body = {"doorbells": bells if rings else []}
    status, reply = stack.call("PUT", f"/api/vms/{vm['id']}/workload", body)
    assert status == 200, reply


@pytest.fixture
def host_observer(stack, ringing) -> Iterator[subprocess.Popen]:
    """`iosignal observe` on the stack's database, once it has linked the worker's VM."""
    with observing(stack, lambda _log: owned(stack)["comm"]) as proc:
        yield proc


def test_without_an_observer_the_card_says_how_to_start_one(stack, ringing, page):
    page.goto(f"{stack.url}/#/live?vm={ringing['id']}")
    expect(page.locator("#stream-badge")).to_have_text("stream live")
    expect(page.locator("#hot-table tr[data-key='pio:0x6100:1']")).to_be_visible()  # ringing
    card = page.locator("#observer-card")
    expect(card.locator("h2")).to_have_text("As the host's observer sees it")
    expect(card.locator("#observer-status")).to_contain_text(HINT)
    expect(card.locator("#observer-status code")).to_have_text("sudo iosignal observe")
    # one line and nothing else: no chart, no tables
    expect(card.locator("#chart-split, #agreement-table, #exiting-table")).to_have_count(0)
    expect(card.locator("p:visible")).to_have_count(1)
    # and the rest of the page is the owned VM's as before
    expect(page.locator("#chart-signals, #chart-exits, #hot-doorbells")).to_have_count(3)


def _split(page, timeout: float = 20) -> dict:
    """The split chart's bars by address once both doorbells are drawn near their rates."""
    deadline = time.monotonic() + timeout
    bars = None
    while time.monotonic() < deadline:
        split = page.evaluate(SPLIT)
        if split:
            in_kernel, userspace = split
            both = zip(in_kernel["y"], in_kernel["x"], userspace["x"], strict=True)
            bars = {y: (k, u) for y, k, u in both}
            eventfd, exiting = bars.get("pio 0x6000/2"), bars.get("pio 0x6100/1")
            if eventfd and exiting and eventfd[0] > 1500 and exiting[1] > 350:
                return bars
        page.wait_for_timeout(200)
    pytest.fail(f"the split chart never showed both doorbells near their rates: {bars}")


def _counts(row, what: str, timeout: float = 20) -> tuple[int, int, int]:
    """(observer, worker, slack) of the agreement cell's title, once the window has grown to
    twenty ticks' worth of writes (it starts at the observer's first tick)."""
    edge = r"\(one tick's edge: (\d+)\)"
    deadline = time.monotonic() + timeout
    title = None
    while time.monotonic() < deadline:
        title = row.locator(".agreement").get_attribute("title") or ""
        found = re.search(rf"{what}: observer (\d+), worker (\d+) {edge}", title)
        assert found, title
        observer, worker, slack = map(int, found.groups())
        if observer >= 20 * slack > 0:
            print(title)
            return observer, worker, slack
        time.sleep(0.5)
    pytest.fail(f"the agreement window never grew: {title}")


def test_with_the_observer_the_card_shows_its_figures_and_that_they_agree(
    stack, ringing, host_observer, page
):
    page.goto(f"{stack.url}/#/live?vm={ringing['id']}")
    expect(page.locator("#stream-badge")).to_have_text("stream live")
    card = page.locator("#observer-card")
    expect(card.locator("#observer-status")).to_contain_text("counts this VM's writes")
    bars = _split(page)
    # the registered doorbell's writes stay in the kernel, the other's exit (over the last second:
    # a write whose exit the observer reads a tick later leaves a few in-kernel/s at a tick's edge)
    print("split chart:", bars)
    assert bars["pio 0x6000/2"][1] == 0 and bars["pio 0x6100/1"][0] < 0.05 * RATES[0x6100]
    assert bars["pio 0x6000/2"][0] == pytest.approx(RATES[0x6000], rel=0.25)
    assert bars["pio 0x6100/1"][1] == pytest.approx(RATES[0x6100], rel=0.25)
    exiting = card.locator("#exiting-table tbody tr")
    expect(exiting.first).to_have_attribute("data-key", "pio:0x6100:1")
    expect(exiting.first.locator(".share")).to_have_text("0%")
    expect(card.locator("#exiting-table tr[data-key='pio:0x6000:2']")).to_have_count(0)

    # per doorbell the worker counts: the observer's figure beside the worker's, and the verdict
    eventfd = card.locator("#agreement-table tr[data-key='pio:0x6000']")
    exits = card.locator("#agreement-table tr[data-key='pio:0x6100']")
    expect(eventfd.locator(".agreement")).to_have_text("agrees", timeout=20_000)
    expect(exits.locator(".agreement")).to_have_text("agrees", timeout=20_000)
    # the seconds the figures cover: they grow from the observer's first tick to the window's
    # ten seconds (0.2 s ticks: ten seconds are more than thirty ticks)
    expect(card.locator("#agreement-span")).to_have_text("10 s", timeout=20_000)
    for row, side, what in ((eventfd, 0, "in-kernel"), (exits, 2, "userspace")):
        figures = [row.locator("td.num").nth(i).text_content() for i in (side, side + 1)]
        assert all(f and re.fullmatch(r"[\d.]+k?/s", f) and f[0] != "0" for f in figures), figures
        # the exact counts behind the verdict, once the window holds seconds of the observer's
        # ticks: apart by no more than the writes of one tick at its edges
        observer, worker, slack = _counts(row, what)
        assert abs(observer - worker) <= slack, (what, observer, worker, slack)
    # the guest's pass-done port exits every pass but is no doorbell: the worker never counts it
    expect(card.locator("#exiting-table tr[data-key='pio:0xf4:1']")).to_be_visible()
    expect(card.locator("#agreement-table tr[data-key='pio:0xf4']")).to_have_count(0)
    expect(card.locator("#agreement-table .agreement.differs")).to_have_count(0)
    screenshot(page, "live-owned-observer")

    # the guest goes quiet: the observer still watches it and says it sees no writes
    ring(stack, ringing, rings=False)
    try:
        expect(card.locator("#observer-status")).to_contain_text(IDLE, timeout=15_000)
        expect(card.locator("#agreement-table")).to_be_hidden()
        expect(card.locator("#observer-status code")).to_have_count(0)  # no "start one" hint
    finally:
        ring(stack, ringing)
    expect(card.locator("#observer-status")).to_contain_text("counts this VM's writes")

    # the observer stops: the card says so again and the rest of the page goes on
    stop([host_observer])
    expect(card.locator("#observer-status")).to_contain_text(HINT, timeout=15_000)
    expect(card.locator("#agreement-table")).to_be_hidden()


class ShortObserver:
    """Stores the worker's VM's rows as an observer would (its own writer, no BPF) every TICK_S,
    seeing only `share` of the registered doorbell's writes: one that misses some."""

    def __init__(self, stack, vm: dict, share: float) -> None:
        self.engine = make_engine(stack.database_url)
        self.writer = ObservedWriter(self.engine, vm["host"])
        started = datetime.fromisoformat(vm["started_at"]) - timedelta(seconds=1)
        self.vm = VmProcess(VmKey(vm["pid"], 1), started, "python3", "iosignal worker", 1, ())
        per_tick = {a: round(r * TICK_S) for a, r in RATES.items()}
        self.counts = {
            ("pio", 0x6000, 2): (round(per_tick[0x6000] * share), 0),
            ("pio", 0x6100, 1): (per_tick[0x6100], per_tick[0x6100]),
        }
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        deadline = time.monotonic()
        while not self.stop.wait(max(0.0, (deadline := deadline + TICK_S) - time.monotonic())):
            samples = [AddressSample(self.vm.key, *a, w, u, 0) for a, (w, u) in self.counts.items()]
            live = {self.vm.key: self.vm}
            self.writer.put(Tick(utcnow(), TICK_S, live, [], samples, {self.vm.key: []}, {}))
            self.writer.flush()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.engine.dispose()


def test_a_difference_from_the_workers_counters_is_shown_with_its_size(stack, ringing, page):
    observer = ShortObserver(stack, owned(stack), share=0.75)
    try:
        page.goto(f"{stack.url}/#/live?vm={ringing['id']}")
        card = page.locator("#observer-card")
        expect(card.locator("#observer-status")).to_contain_text("counts this VM's writes")
        verdict = card.locator("#agreement-table tr[data-key='pio:0x6000'] .agreement")
        expect(verdict).to_have_class(re.compile(r"\bdiffers\b"), timeout=20_000)
        # a quarter of 2,000 writes/s missed: about -500/s, -25% (430-569, 22-28%: the two
        # writers' ticks drift against the window's edges; CI saw -494 to -499, a loaded
        # machine -448, -22.4%)
        less = "\u2212"  # the page's minus sign
        missed = rf"^differs: in-kernel {less}(4[3-9]\d|5[0-6]\d)/s \({less}2[2-8]\.\d%\)$"
        expect(verdict).to_have_text(re.compile(missed))
        screenshot(page, "live-owned-observer-differs")
    finally:
        observer.close()
