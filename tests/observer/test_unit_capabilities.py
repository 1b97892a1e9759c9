"""The observer's unit grants what it needs and no more, shown by running it: root with exactly
deploy/systemd's CapabilityBoundingSet finds another user's VM and counts its doorbell; with any
one of those capabilities taken away it either refuses to start or cannot find that VM."""

from __future__ import annotations

import grp
import shutil
import subprocess
import sys
import time

import pytest
from deployfiles import OBSERVER_UNIT, bounding_set, unit
from promserver import scrape, value
from support import free_port

PORT = 0x510
CAPS = sorted(bounding_set(unit(OBSERVER_UNIT)))


def watch(caps: list[str], pid: int, ring, log) -> tuple[int | None, float | None]:
    """Run the observer as root holding only `caps`; (its exit code if it stopped by itself,
    the writes it counted for `pid`'s doorbell after `ring()`)."""
    address = f"127.0.0.1:{free_port()}"
    keep = ",".join(f"+{c.removeprefix('CAP_').lower()}" for c in caps)
    cmd = [
        "setpriv", f"--bounding-set=-all,{keep}" if keep else "--bounding-set=-all",
        "--inh-caps=-all", sys.executable, "-m", "cli.main", "observe", "--no-database",
        "--metrics-address", address,
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while proc.poll() is None and scrape(address) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is not None:
            return proc.returncode, None
        ring()
        time.sleep(1.5)  # several ticks: a VM found at all is found by then
        seen = value(
            scrape(address) or {}, "iosignal_guest_writes_total", pid=str(pid), addr=hex(PORT)
        )
        return None, seen
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)


@pytest.fixture
def other_users_vmm(kvm_path: str):
    """A test VMM run by `nobody` through group kvm, without capabilities (as a worker runs)."""
    from vmmproc import Vmm

    assert shutil.which("setpriv"), "setpriv (util-linux) runs the VMM as another user"
    v = Vmm(PORT, user=(65534, grp.getgrnam("kvm").gr_gid))
    yield v
    v.kill()


def test_the_units_capabilities_are_needed_and_enough(tracefs, other_users_vmm, tmp_path) -> None:
    v = other_users_vmm
    rung = [0]

    def ring() -> None:
        v.ring("pio", PORT, 4, 100)
        rung[0] += 100

    with open(tmp_path / "all.log", "w") as log:
        code, seen = watch(CAPS, v.pid, ring, log)
    assert code is None and seen == rung[0], (tmp_path / "all.log").read_text()
    for missing in CAPS:
        with open(tmp_path / f"{missing}.log", "w") as log:
            code, seen = watch([c for c in CAPS if c != missing], v.pid, ring, log)
        said = (tmp_path / f"{missing}.log").read_text()
        assert code == 1 or seen is None, f"without {missing} it still found the VM: {said}"
