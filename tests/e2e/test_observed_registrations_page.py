"""An observed VM's registrations and diagnoses in Chromium, against the real app: the observer's
own writer stores a VMM that registered pio 0x510 len 4 datamatch 0x1 while its guest writes 0x0
there (every write exits), as `iosignal observe` would without attaching BPF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dashboard_harness import TickingVmm
from playwright.sync_api import expect

from contract.models import utcnow
from observer.discovery import VmKey, VmProcess
from observer.sampler import AddressSample, ExitValue, Registration, Tick

pytestmark = [pytest.mark.browser]

TICK_S = 0.2
QEMU = VmProcess(VmKey(4545, 779), utcnow() - timedelta(hours=1), "qemu-system-x86", "qemu", 1, ())
DATAMATCH = "registered but exits: datamatch 0x1, guest wrote 0x0"


class RegisteringVmm(TickingVmm):
    """Ticks every TICK_S: the first carries the VMM's KVM_IOEVENTFD call."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, "e2ehost", TICK_S, started_at=utcnow())
        self.calls = [
            Registration(
                QEMU.key, utcnow(), "ioeventfd", False, "pio", 0x510, 4, 1, 7, None, 1, None
            )
        ]

    def tick(self) -> None:
        at = utcnow()
        sample = AddressSample(QEMU.key, "pio", 0x510, 4, 100, 100, 0)
        value = ExitValue(QEMU.key, "pio", 0x510, 4, 0x0, 100)
        calls, self.calls = self.calls, []
        self.writer.put(Tick(at, TICK_S, {QEMU.key: QEMU}, [], [sample], {}, {}, [value], calls))
        self.writer.flush()


@pytest.fixture
def vmm(app_only):
    """The observed VM, ticking while the test runs."""
    vmm = RegisteringVmm(app_only.database_url)
    vmm.tick()
    vmm.thread.start()
    yield app_only.call("GET", "/api/vms?kind=observed")[1][0]
    vmm.close()


def test_live_page_shows_why_a_registered_doorbell_exits_and_the_list_is_read_only(
    app_only, vmm, page
):
    page.goto(f"{app_only.url}/#/live?vm={vmm['id']}")
    row = page.locator("#exiting-table tr[data-key]").first
    expect(row.locator("td").first).to_have_text("pio 0x510/4")
    expect(row.locator(".diagnosis")).to_have_text(DATAMATCH)
    page.goto(f"{app_only.url}/#/registrations?vm={vmm['id']}")
    expect(page.locator("#observed-only")).to_contain_text("never registers ioeventfds")
    reg = page.locator("#observed-reg-table tbody tr")
    expect(reg).to_have_count(1)
    expect(reg.locator("td").nth(1)).to_have_text("pio 0x510 len 4")
    expect(reg.locator("td").nth(2)).to_have_text("0x1")
    expect(reg.locator(".state")).to_have_text("active")
    expect(page.locator("#observed-known-since")).to_contain_text("Known since")
    expect(page.locator("#observed-registrations button")).to_have_count(0)  # read-only
    page.goto(f"{app_only.url}/#/hosts?since=-1m")
    cell = page.locator(f'tr[data-vm-id="{vmm["id"]}"] td.diagnosis')
    expect(cell).to_contain_text(DATAMATCH)
