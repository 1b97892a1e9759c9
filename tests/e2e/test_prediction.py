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
from pathlib import Path

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


def _bench(stack, vm: dict) -> None:
    """This host's bench of the two PIO paths, the prices the prediction uses."""
    body = {"vm_id": vm["id"], "writes": 50_000, "repeat": 3}
    body["paths"] = ["userspace-pio", "ioeventfd-pio"]
    status, run = stack.call("POST", "/api/benchmarks", body)
    assert status == 202, run

    def done() -> bool:
        state = stack.call("GET", f"/api/benchmarks/{run['id']}")[1]["state"]
        assert state != "failed"
        return state == "done"

    wait_for("the bench run", done, 180)


def _prediction(stack, vm: dict) -> dict:
    """The doorbell's /exits row once its whole window is the workload's steady rate."""

    def found() -> dict | None:
        rows = stack.call("GET", f"/api/vms/{vm['id']}/exits?since=-{WINDOW_S:.0f}s")[1]
        for row in rows:
            hot = (row.get("diagnosis") or {}).get("kind") == "hot_unregistered"
            steady = (row.get("userspace_hz") or 0) > 0.8 * RATE_HZ
            if row["addr"] == DOORBELL["addr"] and hot and steady:
                return row
        return None

    time.sleep(WINDOW_S)
    return wait_for("the hot doorbell's prediction at its steady rate", found, 30)


def test_registering_a_hot_doorbell_saves_what_the_diagnosis_predicted(stack, observer) -> None:
    vm = _vm(stack)
    _bench(stack, vm)
    bell = DOORBELL | {"value": 1, "rate_hz": RATE_HZ}
    status, reply = stack.call("PUT", f"/api/vms/{vm['id']}/workload", {"doorbells": [bell]})
    assert status == 200, reply
    row = _prediction(stack, vm)
    predicted = row["diagnosis"]["vcpu_share"]
    assert "bench run " in row["diagnosis"]["text"]
    stat = _vcpu_thread(vm["pid"])
    before = _vcpu_share(stat, WINDOW_S)
    reg = _register(stack, vm)
    after = _vcpu_share(stat, WINDOW_S)
    _deregister(stack, vm, reg)
    again = _vcpu_share(stat, WINDOW_S)  # before and again around after: drift cancels
    saved = (before + again) / 2 - after
    print(
        f"{row['diagnosis']['text']}; saved {saved:.3%} of a vCPU "
        f"({before:.3%}, {again:.3%} without; {after:.3%} with, {WINDOW_S:.0f} s each)"
    )
    # The bound. The bench prices with paced passes of the two paths taken in turn, so
    # drift on the host cancels in their difference (measured predicted/saved: docs/benchmarks.md)
    assert saved == pytest.approx(predicted, rel=0.25)
    stack.call("PUT", f"/api/vms/{vm['id']}/workload", {"doorbells": []})


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
