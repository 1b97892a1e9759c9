"""The whole chain for another VMM's doorbell bug: a real VMM process registers pio 0x510 len 4
with datamatch 0x1 while its guest writes 0x0 there, so every write exits; a real `iosignal
observe` (BPF on KVM's tracepoints and on the syscalls) hears the registration and the values;
the app flags the doorbell in the API and on the observed VM's Live page, in Chromium."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest
from dashboard_harness import observing
from playwright.sync_api import expect
from support import wait_for
from vmmproc import Vmm

# serial: a host-wide observer (its programs see every VM on the host)
pytestmark = [pytest.mark.browser, pytest.mark.kvm, pytest.mark.serial]

TICK_S = 0.2
PORT = 0x510
DATAMATCH = "registered but exits: datamatch 0x1, guest wrote 0x0"


@pytest.fixture
def observer(app_only) -> Iterator[subprocess.Popen]:
    """`iosignal observe` on the app's database, its programs attached before any VMM starts
    (a registration made before the observer is, rightly, unknown)."""
    env = {"IOSIGNAL_SAMPLE_INTERVAL_S": str(TICK_S), "IOSIGNAL_LOG_LEVEL": "info"}
    with observing(app_only, lambda log: "observing every KVM VM" in log.read_text(), env) as p:
        yield p


@pytest.fixture
def ringing(kvm_path, observer) -> Iterator[Vmm]:
    """The VMM, its guest writing 0x0 to the port registered with datamatch 0x1, on and on."""
    vmm = Vmm(PORT, datamatch={PORT: 0x1})
    done = threading.Event()

    def ring() -> None:
        while not done.is_set():
            vmm.ring("pio", PORT, 4, 200, value=0x0)

    thread = threading.Thread(target=ring, daemon=True)
    thread.start()
    yield vmm
    done.set()
    thread.join(10)
    vmm.kill()


def _exits(app_only, vm_id: int) -> dict | None:
    rows = app_only.call("GET", f"/api/vms/{vm_id}/exits?since=-2s")[1]
    return next((r for r in rows if r["addr"] == PORT and r["userspace"]), None)


def test_a_datamatch_the_guest_never_writes_is_flagged(app_only, ringing, page) -> None:
    def observed() -> dict | None:
        vms = app_only.call("GET", "/api/vms?kind=observed")[1]
        return next((v for v in vms if v["pid"] == ringing.pid), None)

    vm = wait_for("the observer to store the VMM's VM", observed, 30)
    regs = app_only.call("GET", f"/api/vms/{vm['id']}/ioeventfds")[1]
    [reg] = [r for r in regs if r["addr"] == PORT]
    assert (reg["source"], reg["space"], reg["len"], reg["datamatch"]) == ("observed", "pio", 4, 1)
    assert reg["state"] == "active" and reg["since"] is not None
    # The values are stored in the same transaction as the tick's samples: the first answer
    # that shows the port exiting already says why (well within two ticks).
    row = wait_for("the port's exits", lambda: _exits(app_only, vm["id"]), 30)
    assert row["registered"] is True and row["in_kernel"] == 0
    assert row["diagnosis"]["kind"] == "registered_but_exits"
    assert row["diagnosis"]["text"] == DATAMATCH
    page.goto(f"{app_only.url}/#/live?vm={vm['id']}")
    cell = page.locator(f"#exiting-table tr[data-key='pio:{PORT:#x}:4'] .diagnosis")
    expect(cell).to_have_text(DATAMATCH)
