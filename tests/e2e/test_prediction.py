"""The diagnosis's prediction, checked on the worker's own VM (issue 18): a hot unregistered
doorbell's "an ioeventfd would save X% of a vCPU" (its userspace exits/s, as the host's observer
counts them, x this host's bench cost of an exit over an ioeventfd signal) against what
registering it really saves, from the vCPU thread's CPU time before and after. The real app and
worker, a real `iosignal observe`, a real bench run: nothing stands in."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from dashboard_harness import observing
from support import wait_for

# serial: a host-wide observer, and vCPU time measured before and after
pytestmark = [pytest.mark.kvm, pytest.mark.serial]

DOORBELL = {"space": "pio", "addr": 0x6200, "len": 2}
RATE_HZ = 20_000  # ~20% of a vCPU in exits: well above what the pacing itself costs
WINDOW_S = 8.0


def _vm(stack) -> dict:
    [vm] = stack.call("GET", "/api/vms?kind=owned")[1]
    return vm


def _vcpu_thread(pid: int) -> Path:
    """/proc/PID/task/TID/stat of the worker's vCPU thread (named iosignal-vcpu)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        if (task / "comm").read_text().strip() == "iosignal-vcpu":
            return task / "stat"
    raise AssertionError(f"no iosignal-vcpu thread in worker {pid}")


def _cpu_s(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _vcpu_share(stat: Path, seconds: float) -> float:
    """The vCPU thread's CPU time over `seconds` of wall clock, as a share of one CPU."""
    cpu, wall = _cpu_s(stat), time.monotonic()
    time.sleep(seconds)
    return (_cpu_s(stat) - cpu) / (time.monotonic() - wall)


@pytest.fixture
def observer(stack) -> Iterator[subprocess.Popen]:
    with observing(stack, lambda _log: _vm(stack)["comm"]) as proc:  # it linked the VM
        yield proc


def _bench(stack, vm: dict) -> int:
    """This host's bench of the two PIO paths, the prices the prediction uses; its run id."""
    body = {"vm_id": vm["id"], "writes": 50_000, "repeat": 3}
    body["paths"] = ["userspace-pio", "ioeventfd-pio"]
    status, run = stack.call("POST", "/api/benchmarks", body)
    assert status == 202, run

    def done() -> bool:
        state = stack.call("GET", f"/api/benchmarks/{run['id']}")[1]["state"]
        assert state != "failed"
        return state == "done"

    wait_for("the bench run", done, 180)
    return run["id"]


def _row(stack, vm: dict, since: str, until: str | None = None) -> dict | None:
    """The doorbell's /exits row, diagnosed hot and unregistered at the workload's steady rate."""
    query = urlencode({"since": since} | ({"until": until} if until else {}))
    for row in stack.call("GET", f"/api/vms/{vm['id']}/exits?{query}")[1]:
        hot = (row.get("diagnosis") or {}).get("kind") == "hot_unregistered"
        steady = (row.get("userspace_hz") or 0) > 0.8 * RATE_HZ
        if row["addr"] == DOORBELL["addr"] and hot and steady:
            return row
    return None


def _prediction(stack, vm: dict) -> tuple[dict, tuple[str, str]]:
    """The doorbell's /exits row once its whole window is the workload's steady rate, and that
    window (ISO since, until) to ask again."""
    time.sleep(WINDOW_S)

    def found() -> tuple[dict, tuple[str, str]] | None:
        until = datetime.now(UTC)
        window = ((until - timedelta(seconds=WINDOW_S)).isoformat(), until.isoformat())
        row = _row(stack, vm, *window)
        return (row, window) if row is not None else None

    return wait_for("the hot doorbell's prediction at its steady rate", found, 30)


def test_registering_a_hot_doorbell_saves_what_the_diagnosis_predicted(stack, observer) -> None:
    vm = _vm(stack)
    first = _bench(stack, vm)
    bell = DOORBELL | {"value": 1, "rate_hz": RATE_HZ}
    status, reply = stack.call("PUT", f"/api/vms/{vm['id']}/workload", {"doorbells": [bell]})
    assert status == 200, reply
    row, window = _prediction(stack, vm)
    assert (
        row["diagnosis"]["bench_run"] == first and f"bench run {first}" in row["diagnosis"]["text"]
    )
    stat = _vcpu_thread(vm["pid"])
    before = _vcpu_share(stat, WINDOW_S)
    reg = _register(stack, vm)
    after = _vcpu_share(stat, WINDOW_S)
    _deregister(stack, vm, reg)
    again = _vcpu_share(stat, WINDOW_S)  # before and again around after: drift cancels
    saved = (before + again) / 2 - after
    # The same window's prediction again, priced by a bench run after the measurement (the VM
    # idle again, as for the first): the host's state drifts over a minute here, by about +-15%
    # in a bench's price, and a price taken on each side of the measurement cancels it, as
    # `before` and `again` do for the saving.
    stack.call("PUT", f"/api/vms/{vm['id']}/workload", {"doorbells": []})
    second = _bench(stack, vm)
    repriced = _row(stack, vm, *window)
    assert repriced is not None and repriced["diagnosis"]["bench_run"] == second
    shares = [r["diagnosis"]["vcpu_share"] for r in (row, repriced)]
    predicted = sum(shares) / 2
    print(
        f"{row['diagnosis']['text']}; after: {100 * shares[1]:.3g}%; saved {saved:.3%} of a "
        f"vCPU ({before:.3%}, {again:.3%} without; {after:.3%} with, {WINDOW_S:.0f} s each)"
    )
    # The bound. The bench prices with paced passes of the two paths taken in turn, so
    # drift on the host cancels in their difference (measured predicted/saved: docs/benchmarks.md)
    assert saved == pytest.approx(predicted, rel=0.25)


def _state(stack, vm: dict, reg_id: int) -> str | None:
    regs = stack.call("GET", f"/api/vms/{vm['id']}/ioeventfds")[1]
    return next((r["state"] for r in regs if r["id"] == reg_id), None)


def _register(stack, vm: dict) -> dict:
    status, reg = stack.call("POST", f"/api/vms/{vm['id']}/ioeventfds", DOORBELL)
    assert status in (201, 202), reg
    wait_for("the registration to be active", lambda: _state(stack, vm, reg["id"]) == "active")
    time.sleep(1.0)  # the guest's passes since
    return reg


def _deregister(stack, vm: dict, reg: dict) -> None:
    stack.call("DELETE", f"/api/vms/{vm['id']}/ioeventfds/{reg['id']}")
    wait_for("the registration to be gone", lambda: _state(stack, vm, reg["id"]) != "active")
    time.sleep(1.0)
